//! gRPC streams (watch, lease keep-alive, snapshot, observe) on one HTTP/2 stream: requests
//! are written from the owner's task as length-prefixed messages, answers are read and
//! decoded as they come. No task sits between the owner and the connection.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::connection::InFlight;
use super::grpc::{HEADER_LEN, check_size, check_trailers, decode, encode};
use super::shutdown::Shutdown;
use super::status::lost;
use crate::error::{Error, Result};

/// An open gRPC stream to one endpoint, sending `Req` and receiving `Resp`.
///
/// [`message`](Self::message) is cancel-safe: what it has read is kept in the stream, so it can
/// be raced against other work in a `select!`.
pub(crate) struct GrpcStream<Req, Resp> {
    send: Option<h2::SendStream<Bytes>>,
    recv: h2::RecvStream,
    buf: BytesMut,
    ended: bool,
    max_send: usize,
    max_recv: usize,
    endpoint: Arc<str>,
    shutdown: Shutdown,
    _in_flight: InFlight,
    _messages: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> std::fmt::Debug for GrpcStream<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcStream")
            .field("endpoint", &self.endpoint)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The parts of an opened HTTP/2 stream that a [`GrpcStream`] is made of.
pub(crate) struct Parts {
    /// `None` when the request has already ended.
    pub(crate) send: Option<h2::SendStream<Bytes>>,
    pub(crate) recv: h2::RecvStream,
    pub(crate) in_flight: InFlight,
    pub(crate) endpoint: Arc<str>,
    pub(crate) max_send: usize,
    pub(crate) max_recv: usize,
    pub(crate) shutdown: Shutdown,
}

impl<Req, Resp> GrpcStream<Req, Resp>
where
    Req: prost::Message,
    Resp: prost::Message + Default,
{
    pub(crate) fn new(p: Parts) -> Self {
        GrpcStream {
            send: p.send,
            recv: p.recv,
            buf: BytesMut::new(),
            ended: false,
            max_send: p.max_send,
            max_recv: p.max_recv,
            endpoint: p.endpoint,
            shutdown: p.shutdown,
            _in_flight: p.in_flight,
            _messages: PhantomData,
        }
    }

    /// The endpoint the stream is open to.
    pub(crate) fn endpoint(&self) -> &Arc<str> {
        &self.endpoint
    }

    /// Queues one request on the stream. Fails when the request is over the send limit, when
    /// the request has ended (an RPC whose client does not stream), or when the stream is
    /// broken.
    pub(crate) fn send(&mut self, msg: &Req) -> Result<()> {
        let body = encode(msg, self.max_send)?;
        let send = self
            .send
            .as_mut()
            .ok_or_else(|| Error::invalid("the stream's sending side is closed"))?;
        send.send_data(body, false)
            .map_err(|e| self.finish(lost(e)))
    }

    /// The next answer; `None` once the server ended the stream cleanly.
    pub(crate) async fn message(&mut self) -> Result<Option<Resp>> {
        loop {
            if let Some(bytes) = self.next_frame()? {
                return decode(bytes).map(Some);
            }
            if self.ended {
                return Ok(None);
            }
            match self.recv.data().await {
                Some(Ok(chunk)) => {
                    let _ = self.recv.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                    check_size(&self.buf, self.max_recv)?;
                }
                Some(Err(e)) => return Err(self.finish(lost(e))),
                None => {
                    let trailers = self
                        .recv
                        .trailers()
                        .await
                        .map_err(|e| self.finish(lost(e)))?;
                    self.ended = true;
                    check_trailers(trailers.as_ref()).map_err(|e| self.finish(e))?;
                    if !self.buf.is_empty() {
                        return Err(Error::protocol("the stream ended inside a message"));
                    }
                }
            }
        }
    }

    /// Takes one whole length-prefixed message out of the buffer, if there is one.
    fn next_frame(&mut self) -> Result<Option<Bytes>> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(Error::protocol(
                "the server sent a compressed message (not requested)",
            ));
        }
        let mut frame = self.buf.split_to(HEADER_LEN + len).freeze();
        frame.advance(HEADER_LEN);
        Ok(Some(frame))
    }

    /// Names the endpoint; a stream broken by [`Client::close`](crate::Client::close) ends
    /// with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
    fn finish(&self, err: Error) -> Error {
        let err = if self.shutdown.is_closed() {
            Error::closed()
        } else {
            err
        };
        err.with_endpoint(&*self.endpoint)
    }
}
