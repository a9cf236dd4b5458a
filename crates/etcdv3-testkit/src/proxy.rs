//! A TCP proxy on loopback that injects network faults between a client and one etcd member.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forward bytes both ways (after the configured latency).
    Forward,
    /// Keep connections open but silently drop every byte, both ways: a network partition
    /// that TCP does not notice.
    Blackhole,
    /// Hold bytes until the mode changes back to `Forward`, then deliver them: a stall.
    Pause,
    /// Reset every new connection as soon as it is accepted.
    Refuse,
}

#[derive(Debug)]
struct Shared {
    mode: watch::Sender<ProxyMode>,
    /// Bumped by [`FaultProxy::reset_connections`]; connections from an older generation end.
    generation: watch::Sender<u64>,
    latency_us: AtomicU64,
    accepted: AtomicUsize,
}

/// A fault-injecting TCP proxy in front of one address, listening on `127.0.0.1`.
///
/// Point a client at [`endpoint`](FaultProxy::endpoint) instead of the member's own URL, then
/// cut, stall or delay its traffic. Dropping the proxy closes its listener and every
/// connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use etcdv3_testkit::{EtcdCluster, FaultProxy};
///
/// let cluster = EtcdCluster::single().await?;
/// let proxy = FaultProxy::start(&cluster.endpoint(0)).await?;
/// // connect a client to proxy.endpoint() ...
/// proxy.blackhole();          // requests now hang
/// proxy.forward();            // and flow again
/// proxy.reset_connections();  // every open connection gets a TCP reset
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target`, given as `host:port` or as a URL like
    /// `http://127.0.0.1:2379`.
    pub async fn start(target: &str) -> std::io::Result<FaultProxy> {
        let target = target
            .split_once("://")
            .map_or(target, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: watch::Sender::new(ProxyMode::Forward),
            generation: watch::Sender::new(0),
            latency_us: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, target, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy as an `http://` endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.shared.mode.borrow()
    }

    /// Sets the mode.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.shared.mode.send_replace(mode);
    }

    /// Forwards traffic again (releasing anything held by [`pause`](Self::pause)).
    pub fn forward(&self) {
        self.set_mode(ProxyMode::Forward);
    }

    /// Drops all traffic silently, keeping connections open.
    pub fn blackhole(&self) {
        self.set_mode(ProxyMode::Blackhole);
    }

    /// Holds all traffic until [`forward`](Self::forward).
    pub fn pause(&self) {
        self.set_mode(ProxyMode::Pause);
    }

    /// Resets new connections at once.
    pub fn refuse(&self) {
        self.set_mode(ProxyMode::Refuse);
    }

    /// Delays every chunk of forwarded data by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(us, Ordering::Relaxed);
    }

    /// Closes every open connection with a TCP reset; new connections are unaffected.
    pub fn reset_connections(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Ends every connection task too.
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(listener: TcpListener, target: String, shared: Arc<Shared>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors or similar: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = inbound.set_zero_linger();
        if *shared.mode.borrow() == ProxyMode::Refuse {
            drop(inbound);
            continue;
        }
        let target = target.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = outbound.set_zero_linger();
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let mut generation = shared.generation.subscribe();
            generation.borrow_and_update();
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            let up = pump(in_read, out_write, shared.clone());
            let down = pump(out_read, in_write, shared.clone());
            tokio::select! {
                _ = async { tokio::join!(up, down) } => {}
                _ = generation.changed() => {}
            }
            // Dropping both halves of both sockets (zero linger) sends the resets.
        });
    }
}

/// Copies one direction, applying the current mode to every chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
) {
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                ProxyMode::Pause => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                ProxyMode::Blackhole => break,
                ProxyMode::Forward | ProxyMode::Refuse => {
                    let us = shared.latency_us.load(Ordering::Relaxed);
                    if us > 0 {
                        tokio::time::sleep(Duration::from_micros(us)).await;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}
