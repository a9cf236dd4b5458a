//! `etcd-client-load`: the etcdv3-bench workloads run with the `etcd-client` crate, for the
//! side-by-side comparison (`bench/compare`).
//!
//! It takes a subset of etcdv3-bench's flags, with the same names, defaults and meaning, and
//! prints the same JSON document. The key encoding, worker loop, rate limiter, latency
//! recording and CPU accounting are not copies: they are etcdv3-bench's own source files,
//! included below, so both clients are measured by the same code.
//!
//! ```text
//! etcd-client-load --endpoints http://127.0.0.1:2379 --conns 10 --clients 100 \
//!     put --total 100000 --key-size 8 --val-size 256
//! etcd-client-load lease-keepalive --leases 10000 --ttl 10 --duration 60s
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../../crates/etcdv3-bench/src/load/mod.rs"]
#[allow(dead_code)]
mod load;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use etcd_client::{
    Client, ConnectOptions, GetOptions, KvClient, LeaseClient, LeaseKeepAliveStream, LeaseKeeper,
    Txn, TxnOp, WatchOptions,
};
use tokio::task::{JoinHandle, JoinSet};

use load::duration::parse_duration;
use load::keys::{KeySpec, random_value};
use load::lease::{HoldPlan, Renewals, hold};
use load::runner::{Outcome, Part, Plan, RunOutput, run};
use load::watch::{EventRun, EventSource, PutPlan, put_and_watch, stream_connection};

/// Name of this tool in the JSON output.
const TOOL: &str = "etcd-client-load";

/// Load generator on the etcd-client crate; prints etcdv3-bench's JSON report.
#[derive(Debug, Parser)]
#[command(name = "etcd-client-load")]
struct Cli {
    /// gRPC endpoints, comma separated
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    endpoints: Vec<String>,
    /// Number of connections: independent etcd_client::Clients; worker i uses client i % conns
    #[arg(long, global = true, default_value_t = 1)]
    conns: usize,
    /// Number of concurrent workers
    #[arg(long, global = true, default_value_t = 1)]
    clients: usize,
    /// Accepted for command-line compatibility: the output is always JSON
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Puts to keys in the key space
    Put(PutArgs),
    /// Gets of one key or a range
    Range(RangeArgs),
    /// Transactions of --txn-ops puts each
    TxnPut(TxnPutArgs),
    /// Put latency, and for every watcher the latency from a put to its event
    WatchLatency(WatchLatencyArgs),
    /// Keep-alive-once latency (a 100 s lease per worker); with --leases, keeps N leases alive
    /// for --duration and reports client CPU, renewals and expired leases
    LeaseKeepalive(LeaseKeepaliveArgs),
}

#[derive(Debug, Args)]
struct PutArgs {
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    #[arg(long, default_value_t = 8)]
    val_size: usize,
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 10000)]
    total: u64,
    #[arg(long, default_value_t = 1)]
    key_space_size: u64,
    #[arg(long)]
    sequential_keys: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Consistency {
    L,
    S,
}

#[derive(Debug, Args)]
struct RangeArgs {
    key: String,
    end: Option<String>,
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 10000)]
    total: u64,
    #[arg(long, value_enum, default_value = "l")]
    consistency: Consistency,
    #[arg(long, default_value_t = 0)]
    limit: i64,
    #[arg(long, conflicts_with = "end")]
    prefix: bool,
}

#[derive(Debug, Args)]
struct TxnPutArgs {
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    #[arg(long, default_value_t = 8)]
    val_size: usize,
    #[arg(long, default_value_t = 1)]
    txn_ops: usize,
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 10000)]
    total: u64,
    #[arg(long, default_value_t = 1)]
    key_space_size: u64,
}

#[derive(Debug, Args)]
struct WatchLatencyArgs {
    /// Watch streams; stream i uses connection (i % --clients) % --conns
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Watches per stream, all on the one key
    #[arg(long, default_value_t = 10)]
    watchers_per_stream: usize,
    #[arg(long)]
    prevkv: bool,
    #[arg(long = "put-total", visible_alias = "total", default_value_t = 1000)]
    put_total: u64,
    #[arg(long, default_value_t = 100.0)]
    put_rate: f64,
    #[arg(long, default_value_t = 32)]
    key_size: usize,
    #[arg(long, default_value_t = 32)]
    val_size: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    event_timeout: Duration,
}

#[derive(Debug, Args)]
struct LeaseKeepaliveArgs {
    #[arg(long, default_value_t = 10000)]
    total: u64,
    /// Keep this many leases alive instead (lease i on connection i % --conns)
    #[arg(long, conflicts_with = "total")]
    leases: Option<u64>,
    #[arg(long, default_value_t = 10, requires = "leases")]
    ttl: i64,
    #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "leases")]
    duration: Duration,
    #[arg(long, default_value_t = 1000, requires = "leases")]
    in_flight: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(bench(&cli)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("etcd-client-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(endpoints: &[String], conns: usize) -> Result<Vec<Client>, String> {
    let opts = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5));
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        let c = Client::connect(endpoints, Some(opts.clone()))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        clients.push(c);
    }
    Ok(clients)
}

fn outcome<T>(kv: KvClient, r: Result<T, etcd_client::Error>) -> Outcome<KvClient> {
    (kv, 0, r.map(drop).map_err(|e| e.to_string()))
}

async fn bench(cli: &Cli) -> Result<String, String> {
    let clients = connect(&cli.endpoints, cli.conns).await?;
    let kvs: Vec<KvClient> = clients.iter().map(Client::kv_client).collect();
    let plan = |name: &'static str, total: u64, rate: f64| Plan {
        clients: cli.clients,
        total,
        rate,
        parts: vec![name],
        progress: false,
    };
    let (name, out): (&str, RunOutput) = match &cli.command {
        Command::WatchLatency(a) => ("watch-latency", watch_latency(cli, a, &clients).await?),
        Command::LeaseKeepalive(a) => ("lease-keepalive", lease_keepalive(cli, a, &clients).await?),
        Command::Put(a) => {
            let keys = KeySpec {
                prefix: Vec::new(),
                size: a.key_size,
                space: a.key_space_size,
                sequential: a.sequential_keys,
            };
            keys.validate()?;
            let value: Arc<[u8]> = random_value(a.val_size, &mut rand::rng()).into();
            let out = run(
                &plan("put", a.total, a.rate),
                &kvs,
                move |mut kv, i, rng| {
                    let key = keys.key_for_request(i, rng);
                    let value = value.to_vec();
                    async move {
                        let r = kv.put(key, value, None).await;
                        outcome(kv, r)
                    }
                },
            )
            .await;
            ("put", out)
        }
        Command::Range(a) => {
            let mut opts = GetOptions::new().with_limit(a.limit);
            if let Some(end) = &a.end {
                opts = opts.with_range(end.as_bytes());
            }
            if a.prefix {
                opts = opts.with_prefix();
            }
            if a.consistency == Consistency::S {
                opts = opts.with_serializable();
            }
            let key = a.key.clone().into_bytes();
            let out = run(
                &plan("range", a.total, a.rate),
                &kvs,
                move |mut kv, _, _| {
                    let (key, opts) = (key.clone(), opts.clone());
                    async move {
                        let r = kv.get(key, Some(opts)).await;
                        outcome(kv, r)
                    }
                },
            )
            .await;
            ("range", out)
        }
        Command::TxnPut(a) => {
            if a.txn_ops == 0 || a.txn_ops as u64 > a.key_space_size {
                return Err("--txn-ops must be between 1 and --key-space-size".into());
            }
            let keys = KeySpec {
                prefix: Vec::new(),
                size: a.key_size,
                space: a.key_space_size,
                sequential: true,
            };
            keys.validate()?;
            let value: Arc<[u8]> = random_value(a.val_size, &mut rand::rng()).into();
            let ops = a.txn_ops as u64;
            let out = run(
                &plan("txn-put", a.total, a.rate),
                &kvs,
                move |mut kv, i, _| {
                    let puts: Vec<TxnOp> = (0..ops)
                        .map(|j| TxnOp::put(keys.key(i * ops + j), value.to_vec(), None))
                        .collect();
                    async move {
                        let r = kv.txn(Txn::new().and_then(puts)).await;
                        outcome(kv, r)
                    }
                },
            )
            .await;
            ("txn-put", out)
        }
    };
    let report = out.json(TOOL, name, cli.clients, cli.conns);
    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())
}

/// One gRPC watch stream of etcd-client carrying several watches: etcd-client hands out the
/// stream's raw responses, each with the events of one of its watches.
struct StreamEvents(etcd_client::WatchStream);

impl EventSource for StreamEvents {
    async fn next_events(&mut self, revisions: &mut Vec<i64>) -> Result<bool, String> {
        match self.0.message().await {
            Ok(Some(resp)) if resp.canceled() => {
                Err(format!("etcd cancelled a watch: {}", resp.cancel_reason()))
            }
            Ok(Some(resp)) => {
                revisions.extend(
                    resp.events()
                        .iter()
                        .filter_map(|e| e.kv().map(|kv| kv.mod_revision())),
                );
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `watch-latency` with etcd-client: each stream is one `watch` call (a gRPC stream of its own)
/// plus `--watchers-per-stream - 1` more watches sent on it; puts go one after another through
/// a separate connection.
async fn watch_latency(
    cli: &Cli,
    a: &WatchLatencyArgs,
    clients: &[Client],
) -> Result<RunOutput, String> {
    if a.streams == 0 || a.watchers_per_stream == 0 || a.key_size == 0 {
        return Err("--streams, --watchers-per-stream and --key-size must be at least 1".into());
    }
    let mut rng = rand::rng();
    let key = random_value(a.key_size, &mut rng);
    let value = random_value(a.val_size, &mut rng);
    let mut options = WatchOptions::new();
    if a.prevkv {
        options = options.with_prev_key();
    }
    let mut sources = Vec::with_capacity(a.streams);
    for i in 0..a.streams {
        let mut watch = clients[stream_connection(i, cli.clients, clients.len())].watch_client();
        let mut stream = watch
            .watch(key.clone(), Some(options.clone()))
            .await
            .map_err(|e| format!("cannot open a watch stream: {e}"))?;
        for _ in 1..a.watchers_per_stream {
            stream
                .watch(key.clone(), Some(options.clone()))
                .await
                .map_err(|e| format!("cannot create a watch: {e}"))?;
        }
        // Every watch must exist before the first put.
        let mut created = 0;
        while created < a.watchers_per_stream {
            match stream.message().await {
                Ok(Some(resp)) if resp.created() && !resp.canceled() => created += 1,
                Ok(Some(resp)) if resp.canceled() => {
                    return Err(format!("etcd refused a watch: {}", resp.cancel_reason()));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("the watch stream ended".into()),
                Err(e) => return Err(format!("cannot create a watch: {e}")),
            }
        }
        let want = a.put_total * a.watchers_per_stream as u64;
        sources.push((StreamEvents(stream), want));
    }
    let putter = connect(&cli.endpoints, 1).await?.remove(0);
    let plan = PutPlan {
        total: a.put_total,
        putters: 1,
        rate: a.put_rate,
        settle: a.event_timeout,
    };
    let run = put_and_watch(&plan, sources, &[putter.kv_client()], move |mut kv, _| {
        let (key, value) = (key.clone(), value.clone());
        async move {
            let r = kv.put(key, value, None).await;
            let revision = r
                .map(|resp| resp.header().map_or(0, |h| h.revision()))
                .map_err(|e| e.to_string());
            (kv, revision)
        }
    })
    .await;
    Ok(latency_output(run))
}

/// The parts of `watch-latency`, named as etcdv3-bench names them.
fn latency_output(run: EventRun) -> RunOutput {
    let part = |name, recorder| Part {
        name,
        title: None,
        elapsed: run.elapsed,
        recorder,
    };
    RunOutput {
        elapsed: run.elapsed,
        start_unix: run.start_unix,
        cpu: run.cpu,
        parts: vec![
            part("put", run.puts),
            part("watch", run.watch),
            part("put-to-event", run.put_to_event),
        ],
        primary: Some(1),
        notes: Vec::new(),
        scale: None,
        leases: None,
    }
}

/// The TTL of the workers' leases in keep-alive-once mode, as in Go's tool.
const GO_TTL: i64 = 100;

/// `lease-keepalive`, as etcdv3-bench runs it (see its `src/lease.rs`).
async fn lease_keepalive(
    cli: &Cli,
    a: &LeaseKeepaliveArgs,
    clients: &[Client],
) -> Result<RunOutput, String> {
    let leases: Vec<LeaseClient> = clients.iter().map(Client::lease_client).collect();
    let Some(n) = a.leases else {
        return keep_alive_once(cli, a.total, &leases).await;
    };
    let plan = HoldPlan {
        leases: n,
        ttl: a.ttl,
        duration: a.duration,
        in_flight: a.in_flight,
        conns: leases.len(),
    };
    plan.validate()?;
    Ok(keep_alive_many(&plan, &leases).await)
}

/// A lease per worker, then `total` keep-alive-once requests. etcd-client has no
/// keep-alive-once; its `keep_alive` is one (as Go's `KeepAliveOnce`): it opens a stream, sends
/// one renewal and waits for the answer. The keeper and stream are then dropped.
async fn keep_alive_once(
    cli: &Cli,
    total: u64,
    leases: &[LeaseClient],
) -> Result<RunOutput, String> {
    let mut granting = JoinSet::new();
    for w in 0..cli.clients {
        let mut lease = leases[w % leases.len()].clone();
        granting.spawn(async move {
            let r = lease.grant(GO_TTL, None).await;
            (w, lease, r)
        });
    }
    let mut workers = Vec::with_capacity(cli.clients);
    while let Some(joined) = granting.join_next().await {
        let (w, lease, r) = joined.map_err(|e| format!("a grant task failed: {e}"))?;
        let granted = r.map_err(|e| format!("cannot grant a lease: {e}"))?;
        workers.push((w, lease, granted.id()));
    }
    workers.sort_by_key(|&(w, _, _)| w);
    let workers: Vec<(LeaseClient, i64)> = workers
        .into_iter()
        .map(|(_, lease, id)| (lease, id))
        .collect();
    let plan = Plan {
        clients: cli.clients,
        total,
        rate: 0.0,
        parts: vec!["keepalive"],
        progress: false,
    };
    let out = run(&plan, &workers, |(mut lease, id), _, _| async move {
        let r = lease.keep_alive(id).await;
        ((lease, id), 0, r.map(drop).map_err(|e| e.to_string()))
    })
    .await;
    let mut revoking = JoinSet::new();
    for (mut lease, id) in workers {
        revoking.spawn(async move { lease.revoke(id).await });
    }
    revoking.join_all().await;
    Ok(out)
}

/// `--leases`: each lease kept alive the way etcd-client's users do it: its own keep-alive
/// stream (`keep_alive`) and a task that renews it a third of its TTL after each answer.
async fn keep_alive_many(plan: &HoldPlan, leases: &[LeaseClient]) -> RunOutput {
    let renewals = Renewals::new(plan.leases);
    let ttl = plan.ttl;
    let on = |i: u64| leases[usize::try_from(i).unwrap_or(0) % leases.len()].clone();
    hold(
        plan,
        &renewals,
        |i| {
            let (mut lease, renewals) = (on(i), renewals.clone());
            async move {
                let granted = lease.grant(ttl, None).await.map_err(|e| e.to_string())?;
                let id = granted.id();
                let (keeper, stream) = lease.keep_alive(id).await.map_err(|e| e.to_string())?;
                let task = tokio::spawn(renew(i, ttl, keeper, stream, renewals));
                Ok((id, AbortOnDrop(task)))
            }
        },
        |tasks| tasks,
        |i, id| {
            let mut lease = on(i);
            async move {
                let resp = lease
                    .time_to_live(id, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((resp.ttl() > 0).then_some(resp.ttl()))
            }
        },
    )
    .await
}

/// Renews lease `index` a third of its TTL after each answer, and reports the answers.
async fn renew(
    index: u64,
    ttl: i64,
    mut keeper: LeaseKeeper,
    mut stream: LeaseKeepAliveStream,
    renewals: Arc<Renewals>,
) {
    let mut period = Duration::from_secs(ttl.unsigned_abs()) / 3;
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = keeper.keep_alive().await {
            renewals.ended(&format!("cannot send a renewal: {e}"));
            return;
        }
        match stream.message().await {
            Ok(Some(resp)) if resp.ttl() > 0 => {
                renewals.answered(index);
                period = Duration::from_secs(resp.ttl().unsigned_abs()) / 3;
            }
            Ok(Some(_)) => {
                renewals.ended("lease not found (etcd answered TTL 0: revoked or expired)");
                return;
            }
            Ok(None) => {
                renewals.ended("the keep-alive stream ended");
                return;
            }
            Err(e) => {
                renewals.ended(&e.to_string());
                return;
            }
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
