//! [`EtcdCluster`]: real etcd member processes on loopback.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::{Error, ErrorKind};
use crate::rpc;
use crate::tls::{TlsFiles, TlsMode};

/// Environment variable naming the etcd binary to use instead of the vendored one.
pub const ETCD_BIN_ENV: &str = "ETCDV3_ETCD_BIN";
/// Environment variable naming the parent directory for cluster temp dirs.
pub const TMPDIR_ENV: &str = "ETCDV3_TEST_TMPDIR";

const LOG_TAIL_LINES: usize = 60;
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const STOP_GRACE: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 3;

/// A set of real etcd member processes on 127.0.0.1, each with its own client and peer
/// port, data dir and log file under a fresh temp dir.
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
    bin: PathBuf,
    version: String,
    tls: Option<TlsFiles>,
    client_tls: Option<ClientTlsConfig>,
    /// Root password, set once auth is enabled.
    auth: Option<String>,
    tokens: Mutex<Vec<Option<String>>>,
    ready_timeout: Duration,
    dir: TempDir,
}

/// The `--listen-client-urls` entry for a member's unix socket. etcd names the socket file
/// after the URL's `host:port` (3.4 accepts no path there), relative to its working directory,
/// which is the cluster's temp dir.
fn unix_listen_url(member: &str) -> String {
    format!("unix://{member}.sock:0")
}

/// The client endpoint for that socket.
fn unix_url(dir: &Path, member: &str) -> String {
    format!("unix://{}/{member}.sock:0", dir.display())
}

struct Member {
    name: String,
    client_url: String,
    client_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    args: Vec<String>,
    id: Option<u64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    child: Option<Child>,
    paused: bool,
}

impl fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("version", &self.version)
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
        // Absolute, since members run in the cluster's temp dir.
        let bin = resolve_bin(self.bin.clone())?;
        let bin = if bin.components().count() > 1 && bin.is_relative() {
            std::path::absolute(&bin).unwrap_or(bin)
        } else {
            bin
        };
        let version = etcd_version(&bin).await?;
        if self.unix_socket && (version.starts_with("3.4.") || version.starts_with("3.3.")) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("etcd {version} cannot serve clients on a unix socket (3.5 or newer can)"),
            ));
        }
        let dir = make_temp_dir()?;
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
            bin,
            version,
            tls,
            client_tls,
            auth: None,
            tokens: Mutex::new(vec![None; self.members]),
            ready_timeout: self.ready_timeout,
            dir,
        };

        let mut attempt = 1;
        loop {
            cluster.members = self.plan(&cluster)?;
            let all: Vec<usize> = (0..cluster.members.len()).collect();
            let spawned = all.iter().try_for_each(|&i| cluster.spawn(i, true));
            let result = match spawned {
                Ok(()) => {
                    cluster
                        .wait_ready(&all, Instant::now() + self.ready_timeout, false)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::PortInUse && attempt < START_ATTEMPTS => {
                    cluster.kill_all().await;
                    for m in &cluster.members {
                        // Best effort: the next attempt uses fresh member dirs anyway.
                        let _ = fs::remove_dir_all(&m.data_dir);
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

    /// Picks ports and builds each member's command line.
    fn plan(&self, cluster: &EtcdCluster) -> Result<Vec<Member>, Error> {
        let n = self.members;
        let ports = free_ports(2 * n)?;
        let scheme = if cluster.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let peer_url = |i: usize| format!("{scheme}://127.0.0.1:{}", ports[2 * i + 1]);
        let initial_cluster = (0..n)
            .map(|i| format!("m{i}={}", peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("etcdv3-testkit-{:016x}", rand::random::<u64>());
        let (hb, el) = self.timings();
        let is_34 = cluster.version.starts_with("3.4.") || cluster.version.starts_with("3.3.");

        let members = (0..n)
            .map(|i| {
                let name = format!("m{i}");
                let client_port = ports[2 * i];
                let client_url = format!("{scheme}://127.0.0.1:{client_port}");
                let data_dir = cluster.dir.path().join(format!("{name}.etcd"));
                let log_path = cluster.dir.path().join(format!("{name}.log"));
                let mut args = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", data_dir.display()),
                    format!(
                        "--listen-client-urls={client_url}{}",
                        if self.unix_socket && self.tls == TlsMode::None {
                            format!(",{}", unix_listen_url(&name))
                        } else {
                            String::new()
                        }
                    ),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={}", peer_url(i)),
                    format!("--initial-advertise-peer-urls={}", peer_url(i)),
                    format!("--initial-cluster={initial_cluster}"),
                    "--initial-cluster-state=new".to_owned(),
                    format!("--initial-cluster-token={token}"),
                    format!("--heartbeat-interval={hb}"),
                    format!("--election-timeout={el}"),
                    "--log-level=info".to_owned(),
                ];
                if is_34 {
                    args.push("--logger=zap".to_owned());
                }
                if let Some(files) = &cluster.tls {
                    args.push(format!("--cert-file={}", files.server_cert.display()));
                    args.push(format!("--key-file={}", files.server_key.display()));
                    if self.tls == TlsMode::MutualTls {
                        args.push(format!("--trusted-ca-file={}", files.ca_cert.display()));
                        args.push("--client-cert-auth".to_owned());
                    }
                    args.push(format!("--peer-cert-file={}", files.server_cert.display()));
                    args.push(format!("--peer-key-file={}", files.server_key.display()));
                    args.push(format!(
                        "--peer-trusted-ca-file={}",
                        files.ca_cert.display()
                    ));
                    args.push("--peer-client-cert-auth".to_owned());
                }
                args.extend(self.args.iter().cloned());
                Member {
                    name,
                    client_url,
                    client_port,
                    data_dir,
                    log_path,
                    args,
                    id: None,
                    state: Mutex::new(State::default()),
                }
            })
            .collect();
        Ok(members)
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
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The client URL of member `i`. Panics if `i >= len()`.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url.clone()
    }

    /// Number of members (running or not).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The etcd server version, e.g. `"3.6.15"`, from `etcd --version`.
    pub fn etcd_version(&self) -> &str {
        &self.version
    }

    /// The etcd binary the members run.
    pub fn etcd_bin(&self) -> &Path {
        &self.bin
    }

    /// The certificate files, when the cluster was built with TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The member's raft ID, learned from Maintenance.Status at start.
    /// `None` if `i` is out of range.
    pub fn member_id(&self, i: usize) -> Option<u64> {
        self.members.get(i).and_then(|m| m.id)
    }

    /// The OS process ID of member `i`, while it runs (also while paused). `None` when it
    /// is stopped or killed, or if `i` is out of range.
    pub fn pid(&self, i: usize) -> Option<u32> {
        let m = self.members.get(i)?;
        lock(&m.state).child.as_ref().and_then(Child::id)
    }

    /// The member's log file (its stdout and stderr). Panics if `i >= len()`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.members[i].log_path.clone()
    }

    /// The member's data dir. Panics if `i >= len()`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.members[i].data_dir.clone()
    }

    /// Member `i`'s unix socket endpoint (`unix:///path`), when built with
    /// [`EtcdClusterBuilder::unix_socket`].
    pub fn unix_endpoint(&self, i: usize) -> Option<String> {
        let name = &self.members.get(i)?.name;
        let url = unix_url(self.dir.path(), name);
        let listen = unix_listen_url(name);
        self.members[i]
            .args
            .iter()
            .any(|a| a.starts_with("--listen-client-urls=") && a.contains(&listen))
            .then_some(url)
    }

    /// The cluster's temp dir, which holds data dirs, logs and TLS files.
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// True when member `i` has a process (running or paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.members
            .get(i)
            .is_some_and(|m| lock(&m.state).child.is_some())
    }

    /// The last `lines` lines of member `i`'s log. Panics if `i >= len()`.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        read_tail(&self.members[i].log_path, lines)
    }

    /// SIGKILLs member `i` and reaps it. Fails with [`ErrorKind::NotRunning`] if it has no
    /// process.
    pub async fn kill(&self, i: usize) -> Result<(), Error> {
        let mut child = self.take_child(i)?;
        child.start_kill().map_err(|e| {
            Error::new(ErrorKind::Signal, "SIGKILL failed")
                .member(i)
                .source(e)
        })?;
        child.wait().await.map_err(|e| {
            Error::new(ErrorKind::Signal, "reaping failed")
                .member(i)
                .source(e)
        })?;
        Ok(())
    }

    /// Stops member `i` gracefully: SIGTERM (and SIGCONT if paused), wait up to 5 s for it
    /// to exit, then SIGKILL. Fails with [`ErrorKind::NotRunning`] if it has no process.
    pub async fn stop(&self, i: usize) -> Result<(), Error> {
        let was_paused = {
            let m = self.member(i)?;
            lock(&m.state).paused
        };
        let mut child = self.take_child(i)?;
        if let Some(pid) = child.id() {
            signal(i, pid, Signal::SIGTERM)?;
            if was_paused {
                signal(i, pid, Signal::SIGCONT)?;
            }
        }
        if timeout(STOP_GRACE, child.wait()).await.is_err() {
            child.start_kill().map_err(|e| {
                Error::new(ErrorKind::Signal, "SIGKILL failed")
                    .member(i)
                    .source(e)
            })?;
            child.wait().await.map_err(|e| {
                Error::new(ErrorKind::Signal, "reaping failed")
                    .member(i)
                    .source(e)
            })?;
        }
        Ok(())
    }

    /// Starts a stopped or killed member again with the same data dir, ports and flags, and
    /// waits (up to the builder's ready timeout) until its client port accepts connections
    /// and it answers a serializable Range. Fails with [`ErrorKind::AlreadyRunning`] if it
    /// still has a process (a member that exited on its own counts as stopped).
    pub async fn restart(&self, i: usize) -> Result<(), Error> {
        {
            let m = self.member(i)?;
            // A member that crashed on its own is reaped here and may be restarted.
            let _ = self.check_exited(i);
            if lock(&m.state).child.is_some() {
                return Err(
                    Error::new(ErrorKind::AlreadyRunning, "restart: member is running").member(i),
                );
            }
        }
        self.spawn(i, false)?;
        self.wait_ready(&[i], Instant::now() + self.ready_timeout, true)
            .await
    }

    /// Freezes member `i` with SIGSTOP: its ports stay open but nothing answers. Returns
    /// once every thread of the process is stopped (on Linux, per `/proc`), so a request
    /// sent afterwards cannot be served in the moment before the stop takes effect.
    pub fn pause(&self, i: usize) -> Result<(), Error> {
        self.signal_running(i, Signal::SIGSTOP, true)?;
        let Some(pid) = self.pid(i) else {
            return Ok(());
        };
        let give_up = std::time::Instant::now() + Duration::from_secs(2);
        while !all_threads_stopped(pid) {
            if std::time::Instant::now() >= give_up {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("pid {pid} not stopped 2 s after SIGSTOP"),
                )
                .member(i));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Continues a paused member with SIGCONT.
    pub fn resume(&self, i: usize) -> Result<(), Error> {
        self.signal_running(i, Signal::SIGCONT, false)
    }

    /// Waits until every running member answers a linearizable Range. Paused, stopped and
    /// killed members are skipped. Fails with [`ErrorKind::Timeout`] (with log tails) after
    /// `timeout`, at once if a running member exits, and with [`ErrorKind::NotRunning`] if
    /// no member runs.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), Error> {
        let running = self.running_members();
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
        let running = self.running_members();
        if running.is_empty() {
            return Err(Error::new(
                ErrorKind::NotRunning,
                "leader: no member is running",
            ));
        }
        let statuses = join_all(running.iter().map(|&i| async move {
            let m = &self.members[i];
            let result = async {
                let channel = rpc::connect(&m.client_url, self.client_tls.as_ref(), PROBE_TIMEOUT)
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

    fn running_members(&self) -> Vec<usize> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                let state = lock(&m.state);
                state.child.is_some() && !state.paused
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn take_child(&self, i: usize) -> Result<Child, Error> {
        let m = self.member(i)?;
        let mut state = lock(&m.state);
        state.paused = false;
        state
            .child
            .take()
            .ok_or_else(|| Error::new(ErrorKind::NotRunning, "member is not running").member(i))
    }

    fn signal_running(&self, i: usize, sig: Signal, paused: bool) -> Result<(), Error> {
        let m = self.member(i)?;
        let mut state = lock(&m.state);
        let pid = state.child.as_ref().and_then(Child::id).ok_or_else(|| {
            Error::new(
                ErrorKind::NotRunning,
                format!("{sig}: member is not running"),
            )
            .member(i)
        })?;
        signal(i, pid, sig)?;
        state.paused = paused;
        Ok(())
    }

    /// Starts member `i`'s process; `fresh` truncates its log, otherwise it is appended to.
    fn spawn(&self, i: usize, fresh: bool) -> Result<(), Error> {
        let m = &self.members[i];
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(&m.log_path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("opening {} failed", m.log_path.display()),
                )
                .member(i)
                .source(e)
            })?;
        let log2 = log.try_clone().map_err(|e| {
            Error::new(ErrorKind::Io, "duplicating the log file handle failed")
                .member(i)
                .source(e)
        })?;
        let mut command = Command::new(&self.bin);
        command
            .args(&m.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        // etcd reads ETCD_* variables as flags; a stray one (say from a CI wrapper script)
        // would change or break our members.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(key);
            }
        }
        let child = command.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Binary,
                format!("spawning {} failed", self.bin.display()),
            )
            .member(i)
            .source(e)
        })?;
        let mut state = lock(&m.state);
        state.child = Some(child);
        state.paused = false;
        Ok(())
    }

    /// If member `i` has exited on its own, reaps it and returns its exit status.
    fn check_exited(&self, i: usize) -> Option<ExitStatus> {
        let mut state = lock(&self.members[i].state);
        let status = state.child.as_mut()?.try_wait().ok().flatten()?;
        state.child = None;
        state.paused = false;
        Some(status)
    }

    fn exited_error(&self, i: usize, status: ExitStatus) -> Error {
        let m = &self.members[i];
        let tail = read_tail(&m.log_path, LOG_TAIL_LINES);
        let (kind, what) = if tail.contains("address already in use") {
            (ErrorKind::PortInUse, "a port was taken by another process")
        } else {
            (ErrorKind::MemberExited, "the process exited")
        };
        Error::new(kind, format!("{what} ({status})"))
            .member(i)
            .log_tail(
                format!("{} ({})", file_name(&m.log_path), m.log_path.display()),
                tail,
            )
    }

    /// Waits until each member in `which` accepts TCP connections on its client port and
    /// answers a Range, failing at once if one exits.
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
                if let Some(status) = self.check_exited(i) {
                    return Err(self.exited_error(i, status));
                }
            }
            let pending: Vec<usize> = which.iter().copied().filter(|&i| !ready[i]).collect();
            let probe_timeout = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(50), PROBE_TIMEOUT);
            let results = join_all(pending.iter().map(|&i| {
                let was_listening = listening[i];
                async move {
                    let port = self.members[i].client_port;
                    if !was_listening {
                        let connected = timeout(
                            Duration::from_millis(200),
                            TcpStream::connect(("127.0.0.1", port)),
                        )
                        .await;
                        if !matches!(connected, Ok(Ok(_))) {
                            return (
                                i,
                                false,
                                Err(format!("client port {port} not accepting yet")),
                            );
                        }
                    }
                    (i, true, self.probe(i, serializable, probe_timeout).await)
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
                    let m = &self.members[i];
                    err = err.log_tail(
                        format!("{} ({})", file_name(&m.log_path), m.log_path.display()),
                        read_tail(&m.log_path, LOG_TAIL_LINES),
                    );
                }
                return Err(err);
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// One Range on member `i`; `Err` carries why it is not ready.
    async fn probe(&self, i: usize, serializable: bool, limit: Duration) -> Result<(), String> {
        let m = &self.members[i];
        let attempt = async {
            let channel = rpc::connect(&m.client_url, self.client_tls.as_ref(), limit)
                .await
                .map_err(|e| format!("connect: {}", error_chain(&e)))?;
            let token = match &self.auth {
                Some(password) => Some(self.token(i, channel.clone(), password).await?),
                None => None,
            };
            match rpc::range(channel, serializable, token.as_deref()).await {
                Ok(()) => Ok(()),
                // Without our own credentials, an auth rejection still proves the member
                // served the read: etcd checks permissions after the read index.
                Err(status) if self.auth.is_none() && rpc::is_auth_rejection(&status) => Ok(()),
                Err(status) => {
                    if status.code() == tonic::Code::Unauthenticated {
                        lock(&self.tokens)[i] = None;
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

    /// The cached auth token for member `i`, authenticating as root when there is none.
    async fn token(
        &self,
        i: usize,
        channel: tonic::transport::Channel,
        password: &str,
    ) -> Result<String, String> {
        if let Some(token) = lock(&self.tokens)[i].clone() {
            return Ok(token);
        }
        let token = rpc::authenticate(channel, "root", password)
            .await
            .map_err(|s| format!("Authenticate: {s}"))?;
        lock(&self.tokens)[i] = Some(token.clone());
        Ok(token)
    }

    async fn learn_member_ids(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_timeout;
        for i in 0..self.members.len() {
            loop {
                let m = &self.members[i];
                let result = async {
                    let channel =
                        rpc::connect(&m.client_url, self.client_tls.as_ref(), PROBE_TIMEOUT)
                            .await
                            .map_err(|e| format!("connect: {}", error_chain(&e)))?;
                    rpc::status(channel)
                        .await
                        .map_err(|s| format!("Status: {s}"))
                }
                .await;
                match result {
                    Ok(status) if status.header.is_some() => {
                        self.members[i].id = status.header.map(|h| h.member_id);
                        break;
                    }
                    Ok(_) => {
                        return Err(
                            Error::new(ErrorKind::Rpc, "Status answered without a header")
                                .member(i),
                        );
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
        Ok(())
    }

    async fn enable_auth(&self, password: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_timeout;
        let m = &self.members[0];
        for step in rpc::AuthStep::ALL {
            loop {
                let result = async {
                    let channel = rpc::connect(
                        &m.client_url,
                        self.client_tls.as_ref(),
                        Duration::from_secs(5),
                    )
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

    async fn kill_all(&self) {
        for i in 0..self.members.len() {
            // Members that already exited have nothing to kill.
            let _ = self.kill(i).await;
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let state = m.state.get_mut().unwrap_or_else(PoisonError::into_inner);
            if let Some(mut child) = state.child.take() {
                reap_now(&mut child);
            }
        }
        if std::thread::panicking() {
            for m in &self.members {
                print_log_tail(&m.name, &m.log_path);
            }
        }
    }
}

/// SIGKILLs `child` and reaps it synchronously (Drop cannot await).
fn reap_now(child: &mut Child) {
    if child.start_kill().is_err() {
        return;
    }
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if std::time::Instant::now() >= give_up => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[allow(clippy::print_stderr)]
fn print_log_tail(name: &str, path: &Path) {
    let tail = read_tail(path, LOG_TAIL_LINES);
    eprintln!(
        "----- etcd member {name}: last {LOG_TAIL_LINES} lines of {} -----\n{tail}\n----- end of {name} log -----",
        path.display()
    );
}

/// True when every thread of `pid` is in state T (stopped), or when `/proc` cannot tell.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            // "tid (comm) S ...": comm may contain spaces and parentheses.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_none_or(|state| matches!(state, 'T' | 't'))
        })
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn signal(i: usize, pid: u32, sig: Signal) -> Result<(), Error> {
    let raw = i32::try_from(pid).map_err(|e| {
        Error::new(ErrorKind::Signal, format!("pid {pid} out of range"))
            .member(i)
            .source(e)
    })?;
    send_signal(Pid::from_raw(raw), sig).map_err(|e| {
        Error::new(
            ErrorKind::Signal,
            format!("sending {sig} to pid {pid} failed"),
        )
        .member(i)
        .source(e)
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
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

fn resolve_bin(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(bin) = explicit {
        return Ok(bin);
    }
    if let Some(bin) = std::env::var_os(ETCD_BIN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    etcd_bin_vendored::etcd_bin_path()
        .map(Path::to_path_buf)
        .map_err(|e| {
            Error::new(
                ErrorKind::Binary,
                format!("no vendored etcd for this platform (set {ETCD_BIN_ENV})"),
            )
            .source(e)
        })
}

async fn etcd_version(bin: &Path) -> Result<String, Error> {
    let output = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Binary,
                format!(
                    "running `{} --version` failed (set {ETCD_BIN_ENV} or EtcdClusterBuilder::etcd_bin)",
                    bin.display()
                ),
            )
            .source(e)
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Binary,
                format!(
                    "`{} --version` printed no \"etcd Version:\" line ({}): {stdout}",
                    bin.display(),
                    output.status
                ),
            )
        })
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

/// `n` distinct free loopback ports: bind them all at once, then release them.
fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(ErrorKind::Io, "binding 127.0.0.1:0 failed").source(e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(ErrorKind::Io, "reading a bound port failed").source(e))
}
