//! [`EtcdCluster`]: a set of [`Member`]s on loopback, started together, probed for
//! readiness and leadership, and cleaned up on drop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::binary::EtcdBinary;
use crate::error::{Error, ErrorKind};
use crate::member::{InitialState, Member, MemberConfig, MemberPorts, MemberTls};
use crate::metrics::{self, Selector};
use crate::rpc;
use crate::tls::{TlsFiles, TlsMode};

/// Environment variable naming the parent directory for cluster temp dirs.
pub const TMPDIR_ENV: &str = "ETCDV3_TEST_TMPDIR";

const POLL_INTERVAL: Duration = Duration::from_millis(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 3;

/// A set of real etcd member processes on 127.0.0.1, each with its own client, peer and
/// metrics port, data dir and log file under a fresh temp dir.
///
/// Dropping the cluster SIGKILLs and reaps every member process and removes the temp dir,
/// also when a test panics. When the drop happens during a panic, the last lines of each
/// member's log are printed to stderr first.
///
/// Member indexes run from `0` to `len() - 1`; member `i` is named `m{i}`. Methods that take
/// an index panic (plain accessors) or return [`ErrorKind::NoSuchMember`] (fallible
/// methods) when it is out of range.
pub struct EtcdCluster {
    members: Vec<Member>,
    binary: EtcdBinary,
    tls: Option<TlsFiles>,
    client_tls: Option<ClientTlsConfig>,
    /// Root password, set once auth is enabled.
    auth: Option<String>,
    ready_timeout: Duration,
    /// Declared last: removed after the members (dropped first) are dead.
    dir: TempDir,
}

impl fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("version", &self.binary.version())
            .field("endpoints", &self.endpoints())
            .field("dir", &self.dir.path())
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

/// Builder for [`EtcdCluster`]; see [`EtcdCluster::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct EtcdClusterBuilder {
    members: usize,
    heartbeat: Option<Duration>,
    election: Option<Duration>,
    bin: Option<PathBuf>,
    args: Vec<String>,
    tls: TlsMode,
    root_password: Option<String>,
    ready_timeout: Duration,
    unix_socket: bool,
    plaintext_too: bool,
    progress_interval: Option<Duration>,
    jwt_ttl: Option<Duration>,
}

impl Default for EtcdClusterBuilder {
    fn default() -> Self {
        EtcdClusterBuilder {
            members: 1,
            heartbeat: None,
            election: None,
            bin: None,
            args: Vec::new(),
            tls: TlsMode::None,
            root_password: None,
            ready_timeout: Duration::from_secs(30),
            unix_socket: false,
            plaintext_too: false,
            progress_interval: None,
            jwt_ttl: None,
        }
    }
}

impl EtcdClusterBuilder {
    /// Number of members. Default: 1. Must be at least 1; `start()` reports 0.
    pub fn members(mut self, n: usize) -> Self {
        self.members = n;
        self
    }

    /// `--heartbeat-interval`. Default: 10 ms for a single member, 100 ms (etcd's default)
    /// for two or more. Fast timings are only safe for a single member: a loaded machine
    /// causes spurious elections in a cluster.
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat = Some(d);
        self
    }

    /// `--election-timeout`. Default: 10 × the heartbeat interval (100 ms for a single
    /// member, 1000 ms for a cluster). etcd requires at least 5 × the heartbeat interval.
    pub fn election_timeout(mut self, d: Duration) -> Self {
        self.election = Some(d);
        self
    }

    /// The etcd binary. Default: the path in the environment variable `ETCDV3_ETCD_BIN` when
    /// set, else the binary of the `etcd-bin-vendored` crate.
    pub fn etcd_bin(mut self, p: impl Into<PathBuf>) -> Self {
        self.bin = Some(p.into());
        self
    }

    /// An extra server flag for every member, e.g. `"--max-request-bytes=1024"` or
    /// `"--auth-token-ttl=2"`. Default: none. Flags are passed in the order given, after the
    /// testkit's own flags.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// How often etcd sends progress notifications to idle watches that asked for them (10
    /// min by default). The flag is `--watch-progress-notify-interval` from etcd 3.6 and
    /// `--experimental-watch-progress-notify-interval` before; the right one is passed for the
    /// binary's version.
    pub fn watch_progress_notify_interval(mut self, d: Duration) -> Self {
        self.progress_interval = Some(d);
        self
    }

    /// With TLS, also serve clients in plaintext on a second port of each member
    /// ([`EtcdCluster::plaintext_endpoint`]), for clients that mix `http://` and `https://`
    /// endpoints. Default: off.
    pub fn plaintext_too(mut self, on: bool) -> Self {
        self.plaintext_too = on;
        self
    }

    /// Issue JWT auth tokens (`--auth-token=jwt`, ES256, with a key pair generated for the
    /// cluster) that expire after `ttl`, instead of etcd's default simple tokens. Only matters
    /// with [`auth`](Self::auth). Default: simple tokens.
    pub fn jwt(mut self, ttl: Duration) -> Self {
        self.jwt_ttl = Some(ttl);
        self
    }

    /// Serve TLS. Default: [`TlsMode::None`]. Certificates are generated per cluster and
    /// available from [`EtcdCluster::tls`]. Peers use mutual TLS whenever TLS is on.
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Also serves clients on a unix domain socket per member, next to its data dir; see
    /// [`EtcdCluster::unix_endpoint`]. Default: off. Plain (no TLS) members only, and etcd 3.5
    /// or newer: `start()` reports an invalid configuration for 3.4.
    pub fn unix_socket(mut self, on: bool) -> Self {
        self.unix_socket = on;
        self
    }

    /// Enable auth once the cluster is healthy: add user `root` with this password, add role
    /// `root`, grant it to `root`, then enable auth. Default: auth off. With
    /// [`TlsMode::MutualTls`] the setup calls use the CN=root client certificate.
    pub fn auth(mut self, root_password: impl Into<String>) -> Self {
        self.root_password = Some(root_password.into());
        self
    }

    /// How long `start()` (and [`EtcdCluster::restart`]) wait for members to answer.
    /// Default: 30 s.
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }

    /// The extra flags, with those whose name depends on the etcd version.
    fn member_args(&self, binary: &EtcdBinary, dir: &Path) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(ttl) = self.jwt_ttl {
            args.push(format!(
                "--auth-token=jwt,pub-key={},priv-key={},sign-method=ES256,ttl={}ms",
                dir.join(JWT_PUBLIC_KEY).display(),
                dir.join(JWT_PRIVATE_KEY).display(),
                ttl.as_millis()
            ));
        }
        if let Some(d) = self.progress_interval {
            let experimental =
                binary.version().starts_with("3.4.") || binary.version().starts_with("3.5.");
            let prefix = if experimental { "experimental-" } else { "" };
            args.push(format!(
                "--{prefix}watch-progress-notify-interval={}ms",
                d.as_millis()
            ));
        }
        args.extend(self.args.iter().cloned());
        args
    }

    /// Starts the members and waits until every one answers a linearizable Range (and, with
    /// [`auth`](Self::auth), until auth is enabled and the cluster is healthy again).
    ///
    /// If a member cannot bind its ports because another process took them in the meantime,
    /// the whole start is retried with new ports, up to 3 attempts. Any other member exit
    /// fails at once with the tail of its log.
    pub async fn start(self) -> Result<EtcdCluster, Error> {
        if self.members == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a cluster needs at least one member",
            ));
        }
        let binary = EtcdBinary::locate(self.bin.clone()).await?;
        if self.unix_socket && binary.is_pre_3_5() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "etcd {} cannot serve clients on a unix socket (3.5 or newer can)",
                    binary.version()
                ),
            ));
        }
        let dir = make_temp_dir()?;
        if self.jwt_ttl.is_some() {
            write_jwt_keys(dir.path())?;
        }
        let tls = match self.tls {
            TlsMode::None => None,
            TlsMode::Server | TlsMode::MutualTls => {
                Some(TlsFiles::generate(&dir.path().join("tls"))?)
            }
        };
        let client_tls = tls.as_ref().map(|files| {
            let config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(files.ca_cert_pem()));
            if self.tls == TlsMode::MutualTls {
                config.identity(Identity::from_pem(
                    files.client_cert_pem(),
                    files.client_key_pem(),
                ))
            } else {
                config
            }
        });

        let mut cluster = EtcdCluster {
            members: Vec::new(),
            binary,
            tls,
            client_tls,
            auth: None,
            ready_timeout: self.ready_timeout,
            dir,
        };

        let mut attempt = 1;
        loop {
            let configs = self.plan(&cluster)?;
            match cluster.spawn_all(configs).await {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::PortInUse && attempt < START_ATTEMPTS => {
                    for m in cluster.members.drain(..) {
                        // Members that already exited have nothing to kill.
                        let _ = m.kill().await;
                        m.remove_data_dir();
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }

        cluster.learn_member_ids().await?;
        if let Some(password) = &self.root_password {
            cluster.enable_auth(password).await?;
            cluster.auth = Some(password.clone());
            cluster.wait_healthy(self.ready_timeout).await?;
        }
        Ok(cluster)
    }

    /// Timings in ms: (heartbeat, election).
    fn timings(&self) -> (u128, u128) {
        let (default_hb, default_el) = if self.members == 1 {
            (10, 100)
        } else {
            (100, 1000)
        };
        let hb = self.heartbeat.map_or(default_hb, |d| d.as_millis().max(1));
        let el = match (self.election, self.heartbeat) {
            (Some(d), _) => d.as_millis().max(1),
            (None, Some(_)) => hb * 10,
            (None, None) => default_el,
        };
        (hb, el)
    }

    /// Picks fresh ports and a fresh cluster token, and configures every member to found a
    /// new cluster together.
    fn plan(&self, cluster: &EtcdCluster) -> Result<Vec<MemberConfig>, Error> {
        let cluster_token = format!("etcdv3-testkit-{:016x}", rand::random::<u64>());
        let (heartbeat_ms, election_ms) = self.timings();
        let mut configs: Vec<MemberConfig> = MemberPorts::pick(self.members)?
            .into_iter()
            .enumerate()
            .map(|(index, ports)| MemberConfig {
                index,
                bin: cluster.binary.path().to_path_buf(),
                dir: cluster.dir.path().to_path_buf(),
                ports,
                tls: MemberTls::new(cluster.tls.as_ref(), self.tls),
                initial_cluster: String::new(),
                initial_state: InitialState::New,
                cluster_token: cluster_token.clone(),
                heartbeat_ms,
                election_ms,
                unix_socket: self.unix_socket && self.tls == TlsMode::None,
                plaintext_too: self.plaintext_too,
                zap_logger: cluster.binary.is_pre_3_5(),
                extra_args: self.member_args(&cluster.binary, cluster.dir.path()),
            })
            .collect();
        let initial_cluster = configs
            .iter()
            .map(MemberConfig::initial_cluster_entry)
            .collect::<Vec<_>>()
            .join(",");
        for config in &mut configs {
            config.initial_cluster.clone_from(&initial_cluster);
        }
        Ok(configs)
    }
}

impl EtcdCluster {
    /// A builder with the defaults: one member, no TLS, no auth, 30 s ready timeout.
    pub fn builder() -> EtcdClusterBuilder {
        EtcdClusterBuilder::default()
    }

    /// Starts a single member with the defaults (`builder().members(1).start()`).
    pub async fn single() -> Result<EtcdCluster, Error> {
        EtcdCluster::builder().members(1).start().await
    }

    /// The client URLs in member order: `http://127.0.0.1:PORT`, or `https://` with TLS.
    /// Members planned with [`add_member`](Self::add_member) are included, also before they
    /// start.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// The client URL of member `i`. Panics if `i >= len()`.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// Number of members (running or not), members planned with
    /// [`add_member`](Self::add_member) included.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The etcd server version, e.g. `"3.6.15"`, from `etcd --version`.
    pub fn etcd_version(&self) -> &str {
        self.binary.version()
    }

    /// The etcd binary the members run.
    pub fn etcd_bin(&self) -> &Path {
        self.binary.path()
    }

    /// The certificate files, when the cluster was built with TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The member's raft ID, learned from Maintenance.Status at start.
    /// `None` if `i` is out of range.
    pub fn member_id(&self, i: usize) -> Option<u64> {
        self.members.get(i).and_then(Member::id)
    }

    /// The URL other members reach member `i` on (`http://127.0.0.1:PORT`, or `https://`
    /// with TLS). Panics if `i >= len()`.
    pub fn peer_url(&self, i: usize) -> String {
        self.members[i].peer_url()
    }

    /// Member `i`'s name, `m{i}` (its `--name`). Panics if `i >= len()`.
    pub fn member_name(&self, i: usize) -> String {
        self.members[i].name()
    }

    /// Plans one more member, to join this running cluster: picks free ports for it and
    /// returns its index (`len()` before the call; it is named `m{index}`) and its peer URL.
    /// Nothing runs yet. Add it to the cluster with MemberAdd (as a voter or a learner) with
    /// that peer URL, then [`start_member`](Self::start_member) it.
    ///
    /// The member has the cluster's settings (binary, timings, TLS, extra flags) and its own
    /// data dir and log in the cluster's temp dir. From now on it counts in
    /// [`len`](Self::len) and [`endpoints`](Self::endpoints); it is stopped with the others
    /// on drop.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), etcdv3_testkit::Error> {
    /// let mut cluster = etcdv3_testkit::EtcdCluster::builder().members(3).start().await?;
    /// let (i, peer_url) = cluster.add_member()?;
    /// // ... MemberAddAsLearner([peer_url]) through a client, which answers the membership:
    /// let initial_cluster = format!(
    ///     "m0={},m1={},m2={},m3={peer_url}",
    ///     cluster.peer_url(0),
    ///     cluster.peer_url(1),
    ///     cluster.peer_url(2)
    /// );
    /// cluster.start_member(i, &initial_cluster).await?;
    /// println!("m{i} has ID {:x}", cluster.member_id(i).expect("learned at start"));
    /// # Ok(()) }
    /// ```
    pub fn add_member(&mut self) -> Result<(usize, String), Error> {
        let index = self.members.len();
        let ports = MemberPorts::pick(1)?.remove(0);
        let config = MemberConfig {
            index,
            ports,
            initial_cluster: String::new(),
            ..self.members[0].config().clone()
        };
        let member = Member::planned(config);
        let peer_url = member.peer_url();
        self.members.push(member);
        Ok((index, peer_url))
    }

    /// Starts member `i`, planned with [`add_member`](Self::add_member) and already added to
    /// the cluster with MemberAdd, with `--initial-cluster-state=existing` and
    /// `initial_cluster` as its `--initial-cluster`: `name=peer-url` for every peer URL of
    /// every member, this one named [`member_name(i)`](Self::member_name) (what
    /// `etcdctl member add` prints; members not started yet have an empty name).
    ///
    /// Waits (up to the builder's ready timeout) until it answers a serializable Range, which
    /// a learner does too, then learns its ID ([`member_id`](Self::member_id)). Fails with
    /// [`ErrorKind::NoSuchMember`] for a bad index, [`ErrorKind::AlreadyRunning`] if it was
    /// started before (use [`restart`](Self::restart)), and with
    /// [`ErrorKind::MemberExited`] and its log tail when etcd refuses to join (not added
    /// first, or `initial_cluster` does not match the membership). Its ports cannot change
    /// any more, so a port taken meanwhile is reported as [`ErrorKind::PortInUse`].
    pub async fn start_member(&mut self, i: usize, initial_cluster: &str) -> Result<(), Error> {
        self.member(i)?;
        self.members[i].join(initial_cluster)?;
        self.wait_ready(&[i], Instant::now() + self.ready_timeout, true)
            .await?;
        self.learn_member_id(i).await
    }

    /// Waits until member `i`'s process exits on its own, as etcd does once the member was
    /// removed from the cluster, and reaps it; it then counts as stopped. Fails with
    /// [`ErrorKind::NotRunning`] if it has no process, and with [`ErrorKind::Timeout`] (with
    /// its log tail) if it still runs after `timeout`.
    pub async fn wait_exit(&self, i: usize, timeout: Duration) -> Result<(), Error> {
        let m = self.member(i)?;
        let deadline = Instant::now() + timeout;
        loop {
            if m.check_exited().is_some() {
                return Ok(());
            }
            if !m.is_running() {
                return Err(
                    Error::new(ErrorKind::NotRunning, "wait_exit: member is not running").member(i),
                );
            }
            if Instant::now() >= deadline {
                return Err(m.with_log_tail(
                    Error::new(
                        ErrorKind::Timeout,
                        format!("wait_exit: still running after {timeout:?}"),
                    )
                    .member(i),
                ));
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// The OS process ID of member `i`, while it runs (also while paused). `None` when it
    /// is stopped or killed, or if `i` is out of range.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members.get(i)?.pid()
    }

    /// The member's log file (its stdout and stderr). Panics if `i >= len()`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.members[i].log_path()
    }

    /// The member's data dir. Panics if `i >= len()`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.members[i].data_dir()
    }

    /// Member `i`'s unix socket endpoint (`unix:///path`), when built with
    /// [`EtcdClusterBuilder::unix_socket`].
    pub fn unix_endpoint(&self, i: usize) -> Option<String> {
        self.members.get(i)?.unix_url()
    }

    /// Member `i`'s plaintext client endpoint, `http://127.0.0.1:PORT`, in a TLS cluster
    /// built with [`EtcdClusterBuilder::plaintext_too`]; `None` otherwise.
    pub fn plaintext_endpoint(&self, i: usize) -> Option<String> {
        self.members.get(i)?.plaintext_url()
    }

    /// Member `i`'s metrics URL, `http://127.0.0.1:PORT` (plain HTTP also in TLS clusters),
    /// which serves `/metrics` and `/health`; see [`metrics`](Self::metrics). Panics if
    /// `i >= len()`.
    pub fn metrics_url(&self, i: usize) -> String {
        self.members[i].metrics_url()
    }

    /// The cluster's temp dir, which holds data dirs, logs and TLS files.
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// True when member `i` has a process (running or paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(Member::is_running)
    }

    /// The last `lines` lines of member `i`'s log. Panics if `i >= len()`.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.members[i].log_tail(lines)
    }

    /// SIGKILLs member `i` and reaps it. Fails with [`ErrorKind::NotRunning`] if it has no
    /// process.
    pub async fn kill(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.kill().await
    }

    /// Stops member `i` gracefully: SIGTERM (and SIGCONT if paused), wait up to 5 s for it
    /// to exit, then SIGKILL. Fails with [`ErrorKind::NotRunning`] if it has no process.
    pub async fn stop(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.stop().await
    }

    /// Starts a stopped or killed member again with the same data dir, ports and flags, and
    /// waits (up to the builder's ready timeout) until its client port accepts connections
    /// and it answers a serializable Range. Fails with [`ErrorKind::AlreadyRunning`] if it
    /// still has a process (a member that exited on its own counts as stopped).
    pub async fn restart(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.respawn()?;
        self.wait_ready(&[i], Instant::now() + self.ready_timeout, true)
            .await
    }

    /// Freezes member `i` with SIGSTOP: its ports stay open but nothing answers. Returns
    /// once every thread of the process is stopped (on Linux, per `/proc`), so a request
    /// sent afterwards cannot be served in the moment before the stop takes effect.
    pub fn pause(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.pause()
    }

    /// Continues a paused member with SIGCONT.
    pub fn resume(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.resume()
    }

    /// Member `i`'s Prometheus metrics: the text exposition format (`# HELP` and `# TYPE`
    /// comments, then one `name{labels} value` line per sample) that etcd serves on
    /// `GET /metrics`, exactly as served.
    ///
    /// Fetched with plain HTTP from the member's [`metrics_url`](Self::metrics_url), so it
    /// works the same in every [`TlsMode`]. The counters are the member's own: requests
    /// served by other members do not show up. Fails with [`ErrorKind::NotRunning`] if the
    /// member has no process, [`ErrorKind::Timeout`] if it does not answer within 5 s (a
    /// paused member), and [`ErrorKind::Rpc`] for a failed or non-200 answer.
    pub async fn metrics(&self, i: usize) -> Result<String, Error> {
        let m = self.member(i)?;
        if !m.is_running() {
            return Err(
                Error::new(ErrorKind::NotRunning, "metrics: member is not running").member(i),
            );
        }
        metrics::fetch(m.metrics_port(), METRICS_TIMEOUT)
            .await
            .map_err(|e| e.member(i))
    }

    /// The sum of member `i`'s samples that match `selector`, from [`metrics`](Self::metrics);
    /// `None` when no sample matches.
    ///
    /// The selector is a metric name, optionally with labels in the exposition syntax:
    /// `etcd_debugging_mvcc_watcher_total`, or
    /// `grpc_server_handled_total{grpc_method="Range"}`. A sample matches when its name is
    /// exactly the selector's and its labels include every label of the selector (in any
    /// order; other labels may differ), so the last example adds up Range calls of every
    /// `grpc_code`. For a histogram, select `name_count` or `name_sum`. Fails with
    /// [`ErrorKind::InvalidConfig`] for a selector that does not parse, and as
    /// [`metrics`](Self::metrics) does.
    pub async fn metric(&self, i: usize, selector: &str) -> Result<Option<f64>, Error> {
        let parsed = Selector::parse(selector).map_err(|reason| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("metric selector {selector:?}: {reason}"),
            )
        })?;
        let text = self.metrics(i).await?;
        parsed.sum(&text).map_err(|reason| {
            Error::new(ErrorKind::Rpc, format!("reading /metrics: {reason}")).member(i)
        })
    }

    /// Waits until every running member answers a linearizable Range. Paused, stopped and
    /// killed members are skipped. Fails with [`ErrorKind::Timeout`] (with log tails) after
    /// `timeout`, at once if a running member exits, and with [`ErrorKind::NotRunning`] if
    /// no member runs.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), Error> {
        let running = self.serving_members();
        if running.is_empty() {
            return Err(Error::new(
                ErrorKind::NotRunning,
                "wait_healthy: no member is running",
            ));
        }
        self.wait_ready(&running, Instant::now() + timeout, false)
            .await
    }

    /// The index of the current leader: the running (not paused) member whose
    /// Maintenance.Status says it leads, preferring the highest raft term. Fails with
    /// [`ErrorKind::NoLeader`] when no member claims leadership (e.g. during an election).
    pub async fn leader(&self) -> Result<usize, Error> {
        let running = self.serving_members();
        if running.is_empty() {
            return Err(Error::new(
                ErrorKind::NotRunning,
                "leader: no member is running",
            ));
        }
        let statuses = join_all(running.iter().map(|&i| async move {
            let url = self.members[i].client_url();
            let result = async {
                let channel = rpc::connect(&url, self.client_tls.as_ref(), PROBE_TIMEOUT)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                rpc::status(channel)
                    .await
                    .map_err(|s| format!("Status: {s}"))
            }
            .await;
            (i, result)
        }))
        .await;
        let mut best: Option<(usize, u64)> = None;
        let mut seen = Vec::new();
        for (i, result) in statuses {
            match result {
                Ok(status) => {
                    let id = status.header.as_ref().map_or(0, |h| h.member_id);
                    let term = status.raft_term;
                    seen.push(format!(
                        "m{i}: id {id:x} leader {:x} term {term}",
                        status.leader
                    ));
                    if status.leader != 0
                        && status.leader == id
                        && best.is_none_or(|(_, t)| term > t)
                    {
                        best = Some((i, term));
                    }
                }
                Err(e) => seen.push(format!("m{i}: {e}")),
            }
        }
        best.map(|(i, _)| i).ok_or_else(|| {
            Error::new(
                ErrorKind::NoLeader,
                format!("no running member claims leadership ({})", seen.join("; ")),
            )
        })
    }

    // ---- internals ----

    fn member(&self, i: usize) -> Result<&Member, Error> {
        self.members.get(i).ok_or_else(|| {
            Error::new(
                ErrorKind::NoSuchMember,
                format!("no member {i}: the cluster has {}", self.members.len()),
            )
        })
    }

    /// Members with a process that is not paused.
    fn serving_members(&self) -> Vec<usize> {
        self.members
            .iter()
            .filter(|m| m.is_serving())
            .map(Member::index)
            .collect()
    }

    /// Spawns a member for each config, then waits until every member answers a
    /// linearizable Range.
    async fn spawn_all(&mut self, configs: Vec<MemberConfig>) -> Result<(), Error> {
        for config in configs {
            self.members.push(Member::spawn(config)?);
        }
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.wait_ready(&all, Instant::now() + self.ready_timeout, false)
            .await
    }

    /// Waits until each member in `which` accepts TCP connections on its client and metrics
    /// ports and answers a Range, failing at once if one exits.
    async fn wait_ready(
        &self,
        which: &[usize],
        deadline: Instant,
        serializable: bool,
    ) -> Result<(), Error> {
        let mut listening = vec![false; self.members.len()];
        let mut ready = vec![false; self.members.len()];
        let mut last_reason = vec![String::from("not probed yet"); self.members.len()];
        loop {
            for &i in which {
                let m = &self.members[i];
                if let Some(status) = m.check_exited() {
                    return Err(m.exited_error(status));
                }
            }
            let pending: Vec<usize> = which.iter().copied().filter(|&i| !ready[i]).collect();
            let probe_timeout = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(50), PROBE_TIMEOUT);
            let results = join_all(pending.iter().map(|&i| {
                let was_listening = listening[i];
                async move {
                    let m = &self.members[i];
                    if !was_listening {
                        for (what, port) in
                            [("client", m.client_port()), ("metrics", m.metrics_port())]
                        {
                            let connected = timeout(
                                Duration::from_millis(200),
                                TcpStream::connect(("127.0.0.1", port)),
                            )
                            .await;
                            if !matches!(connected, Ok(Ok(_))) {
                                return (
                                    i,
                                    false,
                                    Err(format!("{what} port {port} not accepting yet")),
                                );
                            }
                        }
                    }
                    (i, true, self.probe(m, serializable, probe_timeout).await)
                }
            }))
            .await;
            for (i, is_listening, result) in results {
                listening[i] = is_listening;
                match result {
                    Ok(()) => ready[i] = true,
                    Err(reason) => last_reason[i] = reason,
                }
            }
            if which.iter().all(|&i| ready[i]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let waiting: Vec<usize> = which.iter().copied().filter(|&i| !ready[i]).collect();
                let detail = waiting
                    .iter()
                    .map(|&i| format!("m{i}: {}", last_reason[i]))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut err = Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "members not answering a {} Range in time ({detail})",
                        if serializable {
                            "serializable"
                        } else {
                            "linearizable"
                        }
                    ),
                );
                if let [only] = waiting[..] {
                    err = err.member(only);
                }
                for &i in &waiting {
                    err = self.members[i].with_log_tail(err);
                }
                return Err(err);
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// One Range on member `m`; `Err` carries why it is not ready.
    async fn probe(&self, m: &Member, serializable: bool, limit: Duration) -> Result<(), String> {
        let attempt = async {
            let channel = rpc::connect(&m.client_url(), self.client_tls.as_ref(), limit)
                .await
                .map_err(|e| format!("connect: {}", error_chain(&e)))?;
            let token = match &self.auth {
                Some(password) => match Self::token(m, channel.clone(), password).await {
                    Ok(token) => Some(token),
                    // A learner refuses Authenticate; a serializable Range refused by the auth
                    // check still proves it serves reads.
                    Err(status) if rpc::is_learner_rejection(&status) => {
                        return match rpc::range(channel, true, None).await {
                            Err(status) if !rpc::is_auth_rejection(&status) => {
                                Err(format!("Range: {status}"))
                            }
                            _ => Ok(()),
                        };
                    }
                    Err(status) => return Err(format!("Authenticate: {status}")),
                },
                None => None,
            };
            let mut answer = rpc::range(channel.clone(), serializable, token.as_deref()).await;
            // A learner serves only serializable reads; answering one is all it can do.
            if matches!(&answer, Err(status) if rpc::is_learner_rejection(status)) {
                answer = rpc::range(channel, true, token.as_deref()).await;
            }
            match answer {
                Ok(()) => Ok(()),
                // Without our own credentials, an auth rejection still proves the member
                // served the read: etcd checks permissions after the read index.
                Err(status) if self.auth.is_none() && rpc::is_auth_rejection(&status) => Ok(()),
                Err(status) => {
                    if status.code() == tonic::Code::Unauthenticated {
                        m.set_token(None);
                    }
                    Err(format!("Range: {status}"))
                }
            }
        };
        match timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {limit:?}")),
        }
    }

    /// The member's cached root auth token, authenticating when there is none.
    async fn token(
        m: &Member,
        channel: tonic::transport::Channel,
        password: &str,
    ) -> Result<String, tonic::Status> {
        if let Some(token) = m.token() {
            return Ok(token);
        }
        let token = rpc::authenticate(channel, "root", password).await?;
        m.set_token(Some(token.clone()));
        Ok(token)
    }

    async fn learn_member_ids(&mut self) -> Result<(), Error> {
        for i in 0..self.members.len() {
            self.learn_member_id(i).await?;
        }
        Ok(())
    }

    /// Asks member `i` for its raft ID (Maintenance.Status, which learners serve too).
    async fn learn_member_id(&mut self, i: usize) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_timeout;
        let url = self.members[i].client_url();
        loop {
            let result = async {
                let channel = rpc::connect(&url, self.client_tls.as_ref(), PROBE_TIMEOUT)
                    .await
                    .map_err(|e| format!("connect: {}", error_chain(&e)))?;
                rpc::status(channel)
                    .await
                    .map_err(|s| format!("Status: {s}"))
            }
            .await;
            match result {
                Ok(status) => {
                    let Some(header) = status.header else {
                        return Err(
                            Error::new(ErrorKind::Rpc, "Status answered without a header")
                                .member(i),
                        );
                    };
                    self.members[i].set_id(header.member_id);
                    return Ok(());
                }
                Err(reason) if Instant::now() >= deadline => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("learning the member ID failed ({reason})"),
                    )
                    .member(i));
                }
                Err(_) => sleep(POLL_INTERVAL).await,
            }
        }
    }

    async fn enable_auth(&self, password: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_timeout;
        let url = self.members[0].client_url();
        for step in rpc::AuthStep::ALL {
            loop {
                let result = async {
                    let channel =
                        rpc::connect(&url, self.client_tls.as_ref(), Duration::from_secs(5))
                            .await
                            .map_err(|e| (true, format!("connect: {}", error_chain(&e))))?;
                    step.run(channel, password)
                        .await
                        .map_err(|s| (rpc::is_transient(&s), format!("{s}")))
                }
                .await;
                match result {
                    Ok(()) => break,
                    Err((true, _)) if Instant::now() < deadline => sleep(POLL_INTERVAL).await,
                    Err((_, reason)) => {
                        return Err(Error::new(
                            ErrorKind::Rpc,
                            format!("auth setup: {} failed ({reason})", step.describe()),
                        )
                        .member(0));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        // Each member would also kill its process when dropped; killing them all here first
        // means the log tails below are complete.
        for m in &self.members {
            m.kill_now();
        }
        if std::thread::panicking() {
            for m in &self.members {
                m.print_log_tail();
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A fresh temp dir under `$ETCDV3_TEST_TMPDIR`, else `/dev/shm` (cheap fsync), else the
/// system temp dir.
fn make_temp_dir() -> Result<TempDir, Error> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("etcdv3-testkit-");
        b
    };
    if let Some(parent) = std::env::var_os(TMPDIR_ENV).filter(|v| !v.is_empty()) {
        let parent = PathBuf::from(parent);
        return builder.tempdir_in(&parent).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "creating a temp dir in {} ({TMPDIR_ENV}) failed",
                    parent.display()
                ),
            )
            .source(e)
        });
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = builder.tempdir_in(shm)
    {
        return Ok(dir);
    }
    builder
        .tempdir()
        .map_err(|e| Error::new(ErrorKind::Io, "creating a temp dir failed").source(e))
}

/// Where the JWT signing keys of a cluster are, in its temp dir.
const JWT_PRIVATE_KEY: &str = "jwt-es256.key";
const JWT_PUBLIC_KEY: &str = "jwt-es256.pub";

/// Writes a fresh ES256 key pair for JWT tokens into `dir`.
fn write_jwt_keys(dir: &Path) -> Result<(), Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("generating the JWT key pair: {e}"),
        )
    })?;
    let write = |name: &str, pem: String| {
        std::fs::write(dir.join(name), pem).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("writing the JWT key {name}: {e}"),
            )
        })
    };
    write(JWT_PRIVATE_KEY, key.serialize_pem())?;
    write(JWT_PUBLIC_KEY, key.public_key_pem())
}
