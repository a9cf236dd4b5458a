//! [`Member`]: one etcd process, with the ports, flags, data dir and log file it owns.
//!
//! A member is built from a [`MemberConfig`] alone, so it does not matter whether it founds
//! a cluster (`--initial-cluster-state=new`, what [`EtcdCluster`](crate::EtcdCluster) does
//! for every member at start) or joins a running one (`existing`, after a `MemberAdd`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::error::{Error, ErrorKind};
use crate::tls::{TlsFiles, TlsMode};

/// How many log lines errors and panicking drops show.
pub(crate) const LOG_TAIL_LINES: usize = 60;
/// How long [`Member::stop`] waits after SIGTERM before it SIGKILLs.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long [`Member::pause`] waits for every thread to stop.
const PAUSE_LIMIT: Duration = Duration::from_secs(2);

/// The loopback ports one member listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemberPorts {
    /// gRPC and HTTP for clients.
    pub(crate) client: u16,
    /// Raft traffic between members.
    pub(crate) peer: u16,
    /// Plain-HTTP `/metrics` and `/health`, also for TLS members.
    pub(crate) metrics: u16,
    /// A second, plaintext client port of a TLS member that serves one.
    pub(crate) plain: u16,
}

impl MemberPorts {
    /// Free ports for `n` members, all distinct: every port is bound at once, then released.
    /// Another process may take one before etcd binds it; etcd then exits with "address
    /// already in use", which [`Member::exited_error`] reports as [`ErrorKind::PortInUse`].
    ///
    /// Ports come from 20000–31999, below Linux's ephemeral range (32768 and up), so that
    /// outgoing connections and `bind(0)` never take the port of a member that is stopped for
    /// a while; and a port handed out once is never handed out again in this process, so
    /// another cluster of the same test run cannot take it either.
    pub(crate) fn pick(n: usize) -> Result<Vec<MemberPorts>, Error> {
        static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut listeners = Vec::with_capacity(4 * n);
        let mut ports = Vec::with_capacity(4 * n);
        let mut tries = 0;
        while ports.len() < 4 * n {
            tries += 1;
            if tries > 10_000 {
                return Err(Error::new(
                    ErrorKind::Io,
                    "no free port found in 127.0.0.1:20000-31999",
                ));
            }
            let port = 20_000 + rand::random::<u16>() % 12_000;
            if given.contains(&port) || ports.contains(&port) {
                continue;
            }
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(l);
                ports.push(port);
            }
        }
        given.extend_from_slice(&ports);
        drop(listeners);
        Ok(ports
            .chunks_exact(4)
            .map(|p| MemberPorts {
                client: p[0],
                peer: p[1],
                metrics: p[2],
                plain: p[3],
            })
            .collect())
    }
}

/// `--initial-cluster-state`: whether a member founds a new cluster or joins a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitialState {
    /// Every member of `--initial-cluster` starts together.
    New,
    /// The member was added to a running cluster (MemberAdd) and catches up from its peers.
    Existing,
}

impl InitialState {
    fn flag_value(self) -> &'static str {
        match self {
            InitialState::New => "new",
            InitialState::Existing => "existing",
        }
    }
}

/// The certificate files a TLS member serves clients and peers with.
#[derive(Debug, Clone)]
pub(crate) struct MemberTls {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    /// `--client-cert-auth`: clients must present a certificate signed by the CA.
    client_cert_auth: bool,
}

impl MemberTls {
    /// The member side of a cluster's TLS setup; `None` for [`TlsMode::None`].
    pub(crate) fn new(files: Option<&TlsFiles>, mode: TlsMode) -> Option<MemberTls> {
        files.map(|files| MemberTls {
            cert: files.server_cert.clone(),
            key: files.server_key.clone(),
            ca: files.ca_cert.clone(),
            client_cert_auth: mode == TlsMode::MutualTls,
        })
    }
}

/// Everything that determines a member's command line and files.
#[derive(Debug, Clone)]
pub(crate) struct MemberConfig {
    /// The member's index in its cluster; it is named `m{index}`.
    pub(crate) index: usize,
    /// The etcd binary.
    pub(crate) bin: PathBuf,
    /// The cluster's dir: the member's working dir, holding `m{index}.etcd` (data dir),
    /// `m{index}.log` and, with a unix socket, `m{index}.sock:0`.
    pub(crate) dir: PathBuf,
    /// The ports.
    pub(crate) ports: MemberPorts,
    /// TLS for clients and peers (`https://` URLs); `None` for plain `http://`.
    pub(crate) tls: Option<MemberTls>,
    /// `--initial-cluster`: `name=peer-url` of every member, this one included; see
    /// [`MemberConfig::initial_cluster_entry`].
    pub(crate) initial_cluster: String,
    /// `--initial-cluster-state`.
    pub(crate) initial_state: InitialState,
    /// `--initial-cluster-token`, the same for every member of a cluster.
    pub(crate) cluster_token: String,
    /// `--heartbeat-interval` in ms.
    pub(crate) heartbeat_ms: u128,
    /// `--election-timeout` in ms.
    pub(crate) election_ms: u128,
    /// Also serve clients on a unix socket (plain members, etcd 3.5 or newer).
    pub(crate) unix_socket: bool,
    /// Also serve clients in plaintext on `ports.plain` (TLS members).
    pub(crate) plaintext_too: bool,
    /// Add `--logger=zap` (etcd 3.3 and 3.4).
    pub(crate) zap_logger: bool,
    /// Extra flags, after the testkit's own so they can override them.
    pub(crate) extra_args: Vec<String>,
}

impl MemberConfig {
    /// `m{index}`.
    pub(crate) fn name(&self) -> String {
        format!("m{}", self.index)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `http://127.0.0.1:PORT`, or `https://` with TLS.
    pub(crate) fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.ports.client)
    }

    /// The URL peers reach this member on.
    pub(crate) fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.ports.peer)
    }

    /// `http://127.0.0.1:PORT`: plain HTTP in every TLS mode.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.metrics)
    }

    /// This member's `name=peer-url` entry of `--initial-cluster`.
    pub(crate) fn initial_cluster_entry(&self) -> String {
        format!("{}={}", self.name(), self.peer_url())
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join(format!("{}.etcd", self.name()))
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name()))
    }

    /// The `--listen-client-urls` entry for the unix socket. etcd names the socket file
    /// after the URL's `host:port` (3.4 accepts no path there), relative to its working
    /// directory, which is [`dir`](Self::dir).
    fn unix_listen_url(&self) -> String {
        format!("unix://{}.sock:0", self.name())
    }

    /// The client endpoint for the unix socket, when the member serves one.
    pub(crate) fn unix_url(&self) -> Option<String> {
        self.unix_socket
            .then(|| format!("unix://{}/{}.sock:0", self.dir.display(), self.name()))
    }

    /// The plaintext client endpoint of a TLS member that serves one.
    pub(crate) fn plaintext_url(&self) -> Option<String> {
        (self.plaintext_too && self.tls.is_some())
            .then(|| format!("http://127.0.0.1:{}", self.ports.plain))
    }

    /// The full command line, without the binary.
    pub(crate) fn args(&self) -> Vec<String> {
        let client_url = self.client_url();
        let peer_url = self.peer_url();
        let mut listen_client = client_url.clone();
        if let Some(plain) = self.plaintext_url() {
            listen_client.push(',');
            listen_client.push_str(&plain);
        }
        if self.unix_socket {
            listen_client.push(',');
            listen_client.push_str(&self.unix_listen_url());
        }
        let mut args = vec![
            format!("--name={}", self.name()),
            format!("--data-dir={}", self.data_dir().display()),
            format!("--listen-client-urls={listen_client}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--listen-metrics-urls={}", self.metrics_url()),
            format!("--initial-cluster={}", self.initial_cluster),
            format!(
                "--initial-cluster-state={}",
                self.initial_state.flag_value()
            ),
            format!("--initial-cluster-token={}", self.cluster_token),
            format!("--heartbeat-interval={}", self.heartbeat_ms),
            format!("--election-timeout={}", self.election_ms),
            "--log-level=info".to_owned(),
        ];
        if self.zap_logger {
            args.push("--logger=zap".to_owned());
        }
        if let Some(tls) = &self.tls {
            args.push(format!("--cert-file={}", tls.cert.display()));
            args.push(format!("--key-file={}", tls.key.display()));
            if tls.client_cert_auth {
                args.push(format!("--trusted-ca-file={}", tls.ca.display()));
                args.push("--client-cert-auth".to_owned());
            }
            args.push(format!("--peer-cert-file={}", tls.cert.display()));
            args.push(format!("--peer-key-file={}", tls.key.display()));
            args.push(format!("--peer-trusted-ca-file={}", tls.ca.display()));
            args.push("--peer-client-cert-auth".to_owned());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// One etcd member: its configuration and, while it runs, its process.
///
/// The process is SIGKILLed and reaped when the member is dropped (tokio's `kill_on_drop` is
/// set as well, for a `Child` dropped on any other path). The data dir and log file stay;
/// they belong to the cluster's temp dir.
pub(crate) struct Member {
    config: MemberConfig,
    /// The raft member ID, once learned from Maintenance.Status.
    id: Option<u64>,
    /// The root auth token the testkit's probes use on this member, once authenticated.
    token: Mutex<Option<String>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    child: Option<Child>,
    paused: bool,
    /// A process was started at least once (false for a member planned to join later).
    started: bool,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Member")
            .field("name", &self.config.name())
            .field("client_url", &self.config.client_url())
            .field("pid", &state.child.as_ref().and_then(Child::id))
            .field("paused", &state.paused)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// Starts a member process for `config`, with a fresh (truncated) log file. The process
    /// runs in [`MemberConfig::dir`], with every `ETCD_*` variable removed from its
    /// environment. Returns at once; readiness is the caller's to wait for.
    pub(crate) fn spawn(config: MemberConfig) -> Result<Member, Error> {
        let member = Member {
            config,
            id: None,
            token: Mutex::new(None),
            state: Mutex::new(State::default()),
        };
        member.start_process(true)?;
        Ok(member)
    }

    /// A member that joins a running cluster later: no process until
    /// [`join`](Self::join). Its config says [`InitialState::Existing`].
    pub(crate) fn planned(config: MemberConfig) -> Member {
        Member {
            config: MemberConfig {
                initial_state: InitialState::Existing,
                ..config
            },
            id: None,
            token: Mutex::new(None),
            state: Mutex::new(State::default()),
        }
    }

    /// Starts a [`planned`](Self::planned) member for the first time, with `initial_cluster`
    /// as its `--initial-cluster`. Fails with [`ErrorKind::AlreadyRunning`] if it was started
    /// before.
    pub(crate) fn join(&mut self, initial_cluster: &str) -> Result<(), Error> {
        if lock(&self.state).started {
            return Err(self.err(
                ErrorKind::AlreadyRunning,
                "start_member: the member was started before (use restart)",
            ));
        }
        self.config.initial_cluster = initial_cluster.to_owned();
        self.start_process(true)
    }

    /// Starts the process of a stopped or killed member again, with the same data dir, ports
    /// and flags, appending to its log. Fails with [`ErrorKind::AlreadyRunning`] if it has a
    /// process (one that exited on its own is reaped first and counts as stopped), and with
    /// [`ErrorKind::NotRunning`] if it never ran.
    pub(crate) fn respawn(&self) -> Result<(), Error> {
        let _ = self.check_exited();
        if self.is_running() {
            return Err(self.err(ErrorKind::AlreadyRunning, "restart: member is running"));
        }
        if !lock(&self.state).started {
            return Err(self.err(
                ErrorKind::NotRunning,
                "restart: the member never ran (start it with start_member)",
            ));
        }
        self.start_process(false)
    }

    pub(crate) fn config(&self) -> &MemberConfig {
        &self.config
    }

    pub(crate) fn peer_url(&self) -> String {
        self.config.peer_url()
    }

    pub(crate) fn index(&self) -> usize {
        self.config.index
    }

    pub(crate) fn name(&self) -> String {
        self.config.name()
    }

    pub(crate) fn client_url(&self) -> String {
        self.config.client_url()
    }

    pub(crate) fn client_port(&self) -> u16 {
        self.config.ports.client
    }

    pub(crate) fn metrics_url(&self) -> String {
        self.config.metrics_url()
    }

    pub(crate) fn metrics_port(&self) -> u16 {
        self.config.ports.metrics
    }

    pub(crate) fn unix_url(&self) -> Option<String> {
        self.config.unix_url()
    }

    pub(crate) fn plaintext_url(&self) -> Option<String> {
        self.config.plaintext_url()
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.config.data_dir()
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.config.log_path()
    }

    /// The raft member ID, once [`set_id`](Self::set_id) recorded it.
    pub(crate) fn id(&self) -> Option<u64> {
        self.id
    }

    pub(crate) fn set_id(&mut self, id: u64) {
        self.id = Some(id);
    }

    /// The cached root auth token.
    pub(crate) fn token(&self) -> Option<String> {
        lock(&self.token).clone()
    }

    /// Caches (or, with `None`, forgets) the root auth token.
    pub(crate) fn set_token(&self, token: Option<String>) {
        *lock(&self.token) = token;
    }

    /// The process ID while the member has a process (also while paused).
    pub(crate) fn pid(&self) -> Option<u32> {
        lock(&self.state).child.as_ref().and_then(Child::id)
    }

    /// True while the member has a process, paused or not.
    pub(crate) fn is_running(&self) -> bool {
        lock(&self.state).child.is_some()
    }

    /// True while the member has a process that is not paused.
    pub(crate) fn is_serving(&self) -> bool {
        let state = lock(&self.state);
        state.child.is_some() && !state.paused
    }

    /// The last `lines` lines of the log, or a note saying why it cannot be read.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let path = self.log_path();
        match fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("(cannot read {}: {e})", path.display()),
        }
    }

    /// Adds this member's log tail to `err`.
    pub(crate) fn with_log_tail(&self, err: Error) -> Error {
        let path = self.log_path();
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        err.log_tail(
            format!("{file} ({})", path.display()),
            self.log_tail(LOG_TAIL_LINES),
        )
    }

    /// Prints the log tail to stderr, for a cluster dropped during a panic.
    #[allow(clippy::print_stderr)]
    pub(crate) fn print_log_tail(&self) {
        let name = self.name();
        eprintln!(
            "----- etcd member {name}: last {LOG_TAIL_LINES} lines of {} -----\n{}\n----- end of {name} log -----",
            self.log_path().display(),
            self.log_tail(LOG_TAIL_LINES),
        );
    }

    /// If the process has exited on its own, reaps it and returns its exit status.
    pub(crate) fn check_exited(&self) -> Option<ExitStatus> {
        let mut state = lock(&self.state);
        let status = state.child.as_mut()?.try_wait().ok().flatten()?;
        state.child = None;
        state.paused = false;
        Some(status)
    }

    /// The error for a process that exited on its own with `status`, with the log tail:
    /// [`ErrorKind::PortInUse`] when the log says a port was taken, else
    /// [`ErrorKind::MemberExited`].
    pub(crate) fn exited_error(&self, status: ExitStatus) -> Error {
        let tail = self.log_tail(LOG_TAIL_LINES);
        let (kind, what) = if tail.contains("address already in use") {
            (ErrorKind::PortInUse, "a port was taken by another process")
        } else {
            (ErrorKind::MemberExited, "the process exited")
        };
        self.with_log_tail(self.err(kind, format!("{what} ({status})")))
    }

    /// SIGKILLs the process and reaps it. Fails with [`ErrorKind::NotRunning`] if there is
    /// none.
    pub(crate) async fn kill(&self) -> Result<(), Error> {
        let mut child = self.take_child()?;
        self.kill_and_reap(&mut child).await
    }

    /// SIGTERM (and SIGCONT if paused), up to 5 s to exit, then SIGKILL. Fails with
    /// [`ErrorKind::NotRunning`] if there is no process.
    pub(crate) async fn stop(&self) -> Result<(), Error> {
        let was_paused = lock(&self.state).paused;
        let mut child = self.take_child()?;
        if let Some(pid) = child.id() {
            self.signal(pid, Signal::SIGTERM)?;
            if was_paused {
                self.signal(pid, Signal::SIGCONT)?;
            }
        }
        if timeout(STOP_GRACE, child.wait()).await.is_err() {
            self.kill_and_reap(&mut child).await?;
        }
        Ok(())
    }

    /// SIGSTOP, then waits until every thread of the process is stopped (on Linux, per
    /// `/proc`), so a request sent afterwards cannot be served in the moment before the stop
    /// takes effect.
    pub(crate) fn pause(&self) -> Result<(), Error> {
        let pid = self.signal_running(Signal::SIGSTOP, true)?;
        let give_up = std::time::Instant::now() + PAUSE_LIMIT;
        while !all_threads_stopped(pid) {
            if std::time::Instant::now() >= give_up {
                return Err(self.err(
                    ErrorKind::Timeout,
                    format!("pid {pid} not stopped {PAUSE_LIMIT:?} after SIGSTOP"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) -> Result<(), Error> {
        self.signal_running(Signal::SIGCONT, false).map(drop)
    }

    /// Removes the data dir, for a start attempt that is retried with new ports. Best
    /// effort: the retry uses a fresh config anyway.
    pub(crate) fn remove_data_dir(&self) {
        let _ = fs::remove_dir_all(self.data_dir());
    }

    /// SIGKILLs and reaps the process synchronously, for `Drop`, which cannot await. Gives up
    /// reaping after 5 s.
    pub(crate) fn kill_now(&self) {
        let Some(mut child) = lock(&self.state).child.take() else {
            return;
        };
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

    // ---- internals ----

    fn err(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).member(self.index())
    }

    /// Starts the process; `fresh` truncates the log, otherwise it is appended to.
    fn start_process(&self, fresh: bool) -> Result<(), Error> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(&log_path)
            .map_err(|e| {
                self.err(
                    ErrorKind::Io,
                    format!("opening {} failed", log_path.display()),
                )
                .source(e)
            })?;
        let log2 = log.try_clone().map_err(|e| {
            self.err(ErrorKind::Io, "duplicating the log file handle failed")
                .source(e)
        })?;
        let mut command = Command::new(&self.config.bin);
        command
            .args(self.config.args())
            .current_dir(&self.config.dir)
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
            self.err(
                ErrorKind::Binary,
                format!("spawning {} failed", self.config.bin.display()),
            )
            .source(e)
        })?;
        let mut state = lock(&self.state);
        state.child = Some(child);
        state.paused = false;
        state.started = true;
        Ok(())
    }

    fn take_child(&self) -> Result<Child, Error> {
        let mut state = lock(&self.state);
        state.paused = false;
        state
            .child
            .take()
            .ok_or_else(|| self.err(ErrorKind::NotRunning, "member is not running"))
    }

    async fn kill_and_reap(&self, child: &mut Child) -> Result<(), Error> {
        child
            .start_kill()
            .map_err(|e| self.err(ErrorKind::Signal, "SIGKILL failed").source(e))?;
        child
            .wait()
            .await
            .map_err(|e| self.err(ErrorKind::Signal, "reaping failed").source(e))?;
        Ok(())
    }

    /// Sends `sig` to the running process and records whether it is now `paused`; returns
    /// its pid.
    fn signal_running(&self, sig: Signal, paused: bool) -> Result<u32, Error> {
        let mut state = lock(&self.state);
        let pid = state.child.as_ref().and_then(Child::id).ok_or_else(|| {
            self.err(
                ErrorKind::NotRunning,
                format!("{sig}: member is not running"),
            )
        })?;
        self.signal(pid, sig)?;
        state.paused = paused;
        Ok(pid)
    }

    fn signal(&self, pid: u32, sig: Signal) -> Result<(), Error> {
        let raw = i32::try_from(pid).map_err(|e| {
            self.err(ErrorKind::Signal, format!("pid {pid} out of range"))
                .source(e)
        })?;
        send_signal(Pid::from_raw(raw), sig).map_err(|e| {
            self.err(
                ErrorKind::Signal,
                format!("sending {sig} to pid {pid} failed"),
            )
            .source(e)
        })
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill_now();
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config() -> MemberConfig {
        MemberConfig {
            index: 2,
            bin: PathBuf::from("/opt/etcd"),
            dir: PathBuf::from("/tmp/c"),
            ports: MemberPorts {
                client: 1001,
                peer: 1002,
                metrics: 1003,
                plain: 1004,
            },
            tls: None,
            initial_cluster: "m2=http://127.0.0.1:1002".to_owned(),
            initial_state: InitialState::New,
            cluster_token: "tok".to_owned(),
            heartbeat_ms: 10,
            election_ms: 100,
            unix_socket: false,
            plaintext_too: false,
            zap_logger: false,
            extra_args: Vec::new(),
        }
    }

    fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
        let prefix = format!("{name}=");
        args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
    }

    #[test]
    fn plain_member_flags() {
        let c = config();
        let args = c.args();
        assert_eq!(flag(&args, "--name"), Some("m2"));
        assert_eq!(flag(&args, "--data-dir"), Some("/tmp/c/m2.etcd"));
        assert_eq!(
            flag(&args, "--listen-client-urls"),
            Some("http://127.0.0.1:1001")
        );
        assert_eq!(
            flag(&args, "--advertise-client-urls"),
            Some("http://127.0.0.1:1001")
        );
        assert_eq!(
            flag(&args, "--listen-peer-urls"),
            Some("http://127.0.0.1:1002")
        );
        assert_eq!(
            flag(&args, "--initial-advertise-peer-urls"),
            Some("http://127.0.0.1:1002")
        );
        assert_eq!(
            flag(&args, "--listen-metrics-urls"),
            Some("http://127.0.0.1:1003")
        );
        assert_eq!(flag(&args, "--initial-cluster-state"), Some("new"));
        assert_eq!(flag(&args, "--initial-cluster-token"), Some("tok"));
        assert_eq!(flag(&args, "--heartbeat-interval"), Some("10"));
        assert_eq!(flag(&args, "--election-timeout"), Some("100"));
        assert!(!args.iter().any(|a| a.contains("cert")), "{args:?}");
        assert!(!args.iter().any(|a| a == "--logger=zap"), "{args:?}");
        assert_eq!(c.log_path(), Path::new("/tmp/c/m2.log"));
        assert_eq!(c.initial_cluster_entry(), "m2=http://127.0.0.1:1002");
        assert_eq!(c.unix_url(), None);
    }

    #[test]
    fn joining_member_says_existing() {
        let c = MemberConfig {
            initial_state: InitialState::Existing,
            initial_cluster: "m0=http://127.0.0.1:9,m2=http://127.0.0.1:1002".to_owned(),
            ..config()
        };
        let args = c.args();
        assert_eq!(flag(&args, "--initial-cluster-state"), Some("existing"));
        assert_eq!(
            flag(&args, "--initial-cluster"),
            Some("m0=http://127.0.0.1:9,m2=http://127.0.0.1:1002")
        );
    }

    #[test]
    fn tls_member_uses_https_except_for_metrics() {
        let tls = |client_cert_auth| MemberTls {
            cert: PathBuf::from("/t/server.crt"),
            key: PathBuf::from("/t/server.key"),
            ca: PathBuf::from("/t/ca.crt"),
            client_cert_auth,
        };
        let c = MemberConfig {
            tls: Some(tls(false)),
            ..config()
        };
        let args = c.args();
        assert_eq!(c.client_url(), "https://127.0.0.1:1001");
        assert_eq!(c.initial_cluster_entry(), "m2=https://127.0.0.1:1002");
        assert_eq!(
            flag(&args, "--listen-metrics-urls"),
            Some("http://127.0.0.1:1003")
        );
        assert_eq!(flag(&args, "--cert-file"), Some("/t/server.crt"));
        assert_eq!(flag(&args, "--peer-trusted-ca-file"), Some("/t/ca.crt"));
        assert!(args.iter().any(|a| a == "--peer-client-cert-auth"));
        assert!(!args.iter().any(|a| a == "--client-cert-auth"), "{args:?}");
        assert_eq!(flag(&args, "--trusted-ca-file"), None);

        let mutual = MemberConfig {
            tls: Some(tls(true)),
            ..config()
        }
        .args();
        assert!(mutual.iter().any(|a| a == "--client-cert-auth"));
        assert_eq!(flag(&mutual, "--trusted-ca-file"), Some("/t/ca.crt"));
    }

    #[test]
    fn unix_socket_zap_logger_and_extra_args() {
        let c = MemberConfig {
            unix_socket: true,
            zap_logger: true,
            extra_args: vec!["--listen-client-urls=x".to_owned(), "--foo".to_owned()],
            ..config()
        };
        let args = c.args();
        assert_eq!(
            flag(&args, "--listen-client-urls"),
            Some("http://127.0.0.1:1001,unix://m2.sock:0")
        );
        assert_eq!(c.unix_url().as_deref(), Some("unix:///tmp/c/m2.sock:0"));
        assert!(args.iter().any(|a| a == "--logger=zap"));
        // Extra flags come last, so etcd (last one wins) takes them over the testkit's.
        assert_eq!(&args[args.len() - 2..], ["--listen-client-urls=x", "--foo"]);
    }

    #[test]
    fn picked_ports_are_distinct() {
        let ports = MemberPorts::pick(4).expect("ports");
        assert_eq!(ports.len(), 4);
        let mut all: Vec<u16> = ports
            .iter()
            .flat_map(|p| [p.client, p.peer, p.metrics])
            .collect();
        assert!(all.iter().all(|&p| p != 0));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12);
    }
}
