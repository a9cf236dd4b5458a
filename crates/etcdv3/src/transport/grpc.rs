//! Unary gRPC calls straight on an HTTP/2 stream.
//!
//! A unary request is one length-prefixed protobuf message. It is written from the caller's
//! task as the stream's headers plus one data frame that ends the stream, with no request-body
//! task and no separate end-of-stream frame; the answer is read back as one message plus the
//! `grpc-status` trailer. Streams (watch, keep-alive ...) use the same framing, in
//! [`super::stream`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::connection::Http2Service;
use super::status::{from_status, lost};
use crate::error::{Error, ErrorKind, GrpcCode, Result};

pub(crate) const HEADER_LEN: usize = 5;

/// Encodes a request as a gRPC message: a 5-byte prefix (uncompressed, length) and the
/// protobuf bytes. Done once per call; every attempt sends the same bytes. Fails with
/// [`ErrorKind::RequestTooLarge`] when the message is over `max_send`.
pub(crate) fn encode(msg: &impl prost::Message, max_send: usize) -> Result<Bytes> {
    let len = msg.encoded_len();
    if len > max_send {
        return Err(Error::request_too_large(len, max_send));
    }
    let mut buf = BytesMut::with_capacity(HEADER_LEN + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).map_err(|_| Error::request_too_large(len, u32::MAX as usize))?);
    msg.encode(&mut buf)
        .map_err(|e| Error::protocol(format!("encoding the request failed: {e}")))?;
    Ok(buf.freeze())
}

/// Sends the encoded request `body` to `path` and decodes the answer. `headers` carries the
/// call's metadata.
/// Errors: an etcd or gRPC status decoded by [`from_status`], transport failures as
/// [`ErrorKind::Unavailable`] (the request may have reached the server), an oversized answer
/// as [`ErrorKind::ResponseTooLarge`].
pub(crate) async fn unary<Resp>(
    service: Http2Service,
    path: &'static str,
    body: Bytes,
    headers: http::HeaderMap,
    max_recv: usize,
) -> Result<Resp>
where
    Resp: prost::Message + Default,
{
    let (response, mut send, _in_flight) = service.open(path, headers).await.map_err(|e| {
        super::status::connect_failed("the connection closed before the request was sent", e)
    })?;
    // Headers and the whole message, ending the stream: one write for the connection task.
    let sent = send.send_data(body, true);
    // If the stream broke, the response says why better than the send error does.
    let response = response.await.map_err(lost)?;
    sent.map_err(lost)?;
    let (parts, mut body) = response.into_parts();
    check_response(&parts)?;

    // The common answer is one data frame: keep it as it came, copying only when it is split.
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(lost)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if single.is_none() && joined.is_empty() {
            single = Some(chunk);
        } else {
            if let Some(first) = single.take() {
                joined.extend_from_slice(&first);
            }
            joined.extend_from_slice(&chunk);
        }
        check_size(single.as_deref().unwrap_or(&joined), max_recv)?;
    }
    let trailers = body.trailers().await.map_err(lost)?;
    check_trailers(trailers.as_ref())?;
    let mut bytes = single.unwrap_or_else(|| joined.freeze());
    if bytes.len() < HEADER_LEN {
        return Err(Error::protocol("the answer has no message"));
    }
    let compressed = bytes.get_u8();
    let len = bytes.get_u32() as usize;
    if compressed != 0 {
        return Err(Error::protocol(
            "the server sent a compressed message (not requested)",
        ));
    }
    if bytes.len() != len {
        return Err(Error::protocol(format!(
            "the answer's message is {} bytes, its header says {len}",
            bytes.len()
        )));
    }
    decode(bytes)
}

/// Decodes one message.
pub(crate) fn decode<M: prost::Message + Default>(bytes: Bytes) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::protocol(format!("decoding the answer failed: {e}")))
}

/// Checks the response headers: HTTP 200, and no error status ("trailers-only": errors
/// usually come as a status in the headers and no body).
pub(crate) fn check_response(parts: &http::response::Parts) -> Result<()> {
    if parts.status != http::StatusCode::OK {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("HTTP status {} from the server", parts.status),
        )
        .sent());
    }
    match grpc_status(&parts.headers) {
        Some((code, message)) => Err(from_status(code, &message)),
        None => Ok(()),
    }
}

/// Checks the trailers that end a response: an error status, or none at all (the stream was
/// cut).
pub(crate) fn check_trailers(trailers: Option<&http::HeaderMap>) -> Result<()> {
    match trailers {
        None => Err(Error::new(
            ErrorKind::Unavailable,
            "connection lost: the answer ended without a gRPC status",
        )
        .sent()),
        Some(t) => match grpc_status(t) {
            Some((code, message)) => Err(from_status(code, &message)),
            None => Ok(()),
        },
    }
}

/// Fails once the length prefix announces a message over the receive limit.
pub(crate) fn check_size(received: &[u8], max_recv: usize) -> Result<()> {
    if received.len() < HEADER_LEN {
        return Ok(());
    }
    let len = u32::from_be_bytes([received[1], received[2], received[3], received[4]]) as usize;
    if len > max_recv {
        return Err(Error::response_too_large(
            &format!("{len} bytes"),
            &format!("{max_recv} bytes"),
        ));
    }
    Ok(())
}

/// The error status in `grpc-status`/`grpc-message`, if any (0 is success).
fn grpc_status(headers: &http::HeaderMap) -> Option<(GrpcCode, String)> {
    let code = headers.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(2);
    if code == 0 {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some((GrpcCode::from_i32(code), message))
}

/// `grpc-message` is percent-encoded.
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode(b"etcdserver: no leader"),
            "etcdserver: no leader"
        );
        assert_eq!(percent_decode(b"a%20b%25c"), "a b%c");
        assert_eq!(percent_decode(b"bad%zz"), "bad%zz");
        assert_eq!(percent_decode(b"end%2"), "end%2");
        assert_eq!(percent_decode(b"%"), "%");
    }

    #[test]
    fn status_from_trailers() {
        let mut h = http::HeaderMap::new();
        assert!(grpc_status(&h).is_none());
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(grpc_status(&h).is_none());
        h.insert("grpc-status", HeaderValue::from_static("11"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("etcdserver: mvcc: required revision is a future revision"),
        );
        let (code, message) = grpc_status(&h).unwrap();
        assert_eq!(code, GrpcCode::OutOfRange);
        assert_eq!(
            crate::Code::from_message(&message),
            Some(crate::Code::FutureRev)
        );
    }

    #[test]
    fn size_check_reads_the_length_prefix() {
        assert!(
            check_size(&[0, 0, 0], 10).is_ok(),
            "prefix not complete yet"
        );
        let err = check_size(&[0, 0, 0, 0, 11], 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResponseTooLarge);
        assert!(err.to_string().contains("limit of 10 bytes"), "{err}");
        assert!(check_size(&[0, 0, 0, 0, 11, 1, 2], 11).is_ok());
    }
}
