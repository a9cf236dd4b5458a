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
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../../crates/etcdv3-bench/src/load/mod.rs"]
#[allow(dead_code)]
mod load;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use etcd_client::{Client, ConnectOptions, GetOptions, KvClient, Txn, TxnOp, WatchOptions};

use load::duration::parse_duration;
use load::keys::{KeySpec, random_value};
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
            Ok(Some(resp)) if resp.canceled() => Err(format!(
                "etcd cancelled a watch: {}",
                resp.cancel_reason()
            )),
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
