//! Real etcd servers for tests: start single members or clusters of real `etcd` processes on
//! loopback, with optional TLS and auth, and make them fail on purpose.
//!
//! ```no_run
//! use std::time::Duration;
//! use etcdv3_testkit::{EtcdCluster, TlsMode};
//!
//! # async fn demo() -> Result<(), etcdv3_testkit::Error> {
//! // One member, fast timings: healthy in about 0.1 s.
//! let single = EtcdCluster::single().await?;
//! println!("etcd {} at {}", single.etcd_version(), single.endpoint(0));
//!
//! // Three members; kill the leader, watch a new one take over, bring the old one back.
//! let cluster = EtcdCluster::builder().members(3).start().await?;
//! let old = cluster.leader().await?;
//! cluster.kill(old).await?;
//! // ... poll cluster.leader() until it names another member ...
//! cluster.restart(old).await?;
//! cluster.wait_healthy(Duration::from_secs(10)).await?;
//!
//! // Each member's Prometheus metrics, e.g. how many Range calls member 1 has served.
//! let text = cluster.metrics(1).await?;
//! assert!(text.contains("etcd_server_has_leader 1"));
//! let ranges = cluster
//!     .metric(1, r#"grpc_server_handled_total{grpc_method="Range"}"#)
//!     .await?
//!     .unwrap_or(0.0);
//! println!("m1 served {ranges} Range calls");
//!
//! // Mutual TLS and auth (user root, role root, auth enabled).
//! let secure = EtcdCluster::builder()
//!     .tls(TlsMode::MutualTls)
//!     .auth("rootpw")
//!     .arg("--auth-token-ttl=2")
//!     .start()
//!     .await?;
//! let files = secure.tls().expect("built with TLS");
//! println!("CA at {}", files.ca_cert.display());
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! * **Binary.** The `etcd` from the `etcd-bin-vendored` crate (3.6.15), unless the
//!   environment variable `ETCDV3_ETCD_BIN` or [`EtcdClusterBuilder::etcd_bin`] names another.
//!   `--logger=zap` is added for 3.4 servers; every member runs with `--log-level=info`.
//! * **Files.** Each cluster gets a fresh temp dir under `$ETCDV3_TEST_TMPDIR`, else under
//!   `/dev/shm` when writable (fsync is cheap there), else the system temp dir. It holds
//!   `mN.etcd` (data dirs), `mN.log` (each member's stdout and stderr) and `tls/`.
//! * **Ports.** Each member has a client, a peer and a metrics port, all free ephemeral
//!   ports on 127.0.0.1, picked by binding port 0 and releasing it. If another process grabs
//!   one before etcd binds it, the start is retried with new ports (3 attempts in all).
//! * **Metrics.** Every member serves `/metrics` on a plain-HTTP URL of its own
//!   (`--listen-metrics-urls`), also in TLS clusters: [`EtcdCluster::metrics`] returns the
//!   text, [`EtcdCluster::metric`] sums the samples of one metric (optionally with some
//!   labels), [`EtcdCluster::metrics_url`] names the URL. Counters are per member.
//! * **Readiness.** `start()` first waits for each client and metrics port to accept TCP
//!   connections (so no gRPC reconnect backoff is paid), then polls every 20 ms with a
//!   linearizable Range on key `health` until every member answers, or fails after the ready
//!   timeout (30 s by default) with each waiting member's log tail. A member that exits
//!   during start fails it at once, with its log tail.
//! * **Timings.** A single member runs with `--heartbeat-interval=10 --election-timeout=100`;
//!   clusters with etcd's defaults (100/1000 ms), since fast timings cause spurious elections
//!   on a loaded machine.
//! * **Cleanup.** Dropping [`EtcdCluster`] SIGKILLs and reaps every member and removes the
//!   temp dir, also during a panic; a panicking drop first prints the last 60 lines of each
//!   member's log to stderr. A test process killed with SIGKILL cannot clean up: its members
//!   keep running until killed by hand (`kill_on_drop` only covers a process handle dropped
//!   without the cluster's own cleanup).
//! * **Joining members.** [`EtcdCluster::add_member`] plans one more member (index `len()`,
//!   fresh ports, the cluster's settings) and returns its peer URL; once the test added it
//!   with MemberAdd (as a voter or a learner), [`EtcdCluster::start_member`] starts it with
//!   `--initial-cluster-state=existing` and the `--initial-cluster` the test gives, waits for
//!   a serializable Range and learns its ID. Health checks accept a learner's serializable
//!   answer. A removed member shuts itself down: [`EtcdCluster::wait_exit`] waits for that.
//! * **Auth.** With [`EtcdClusterBuilder::auth`], the testkit's own health probes
//!   authenticate as root. Without it, a Range rejected by the auth check (for example after
//!   a test enabled auth itself) still counts as an answer, since etcd checks permissions
//!   after the read.
//!
//! # Feature flags
//!
//! None. TLS support (rustls with ring, through tonic's `tls-ring`) and certificate
//! generation (`rcgen`) are always on.
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `cluster.rs` | [`EtcdCluster`], [`EtcdClusterBuilder`]: the set of members, start and its retries, readiness, leader, auth setup, drop |
//! | `member.rs` | one member: its config (ports, flags, `--initial-cluster-state` new or existing, TLS) and its process (spawn, join, kill, stop, pause, resume, restart, log tail) |
//! | `binary.rs` | finding the etcd binary ([`ETCD_BIN_ENV`]) and its version |
//! | `metrics.rs` | `GET /metrics` over plain HTTP and summing samples |
//! | `rpc.rs` | the few raw gRPC calls the testkit makes (probes, status, auth setup) |
//! | `tls.rs` | [`TlsMode`], [`TlsFiles`]: test certificates |
//! | `proxy.rs` | [`FaultProxy`] |
//! | `error.rs` | [`Error`], [`ErrorKind`] |

mod binary;
mod cluster;
mod error;
mod member;
mod metrics;
mod proxy;
mod rpc;
mod tls;

pub use binary::ETCD_BIN_ENV;
pub use cluster::{EtcdCluster, EtcdClusterBuilder, TMPDIR_ENV};
pub use error::{Error, ErrorKind};
pub use proxy::{FaultProxy, ProxyMode};
pub use tls::{TlsFiles, TlsMode};
