//! Command-line flags, named and defaulted as in etcd's Go `benchmark` tool.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::load::duration::parse_duration;

const AFTER_HELP: &str = "\
lease-keepalive has two modes: Go's (--total keep-alive-once requests, their latency), and
with --leases N an etcdv3 one: N leases kept alive through the shared keep-alive stream for
--duration, reporting client CPU, the renewals etcd answered and the leases that expired.

Watch streams: all watches of one etcdv3 Client share one gRPC stream, so each of
--streams is its own Client copy on a shared connection; stream i uses connection
(i % --clients) % --conns, as in the Go tool.

Keys are binary, as in the Go tool: the key index as a zig-zag varint (Go's
binary.PutVarint) in a zero-filled field of --key-size bytes.";

/// A benchmark tool for etcd v3 built on the etcdv3 client, flag-compatible with etcd's Go
/// `benchmark`: the same flags give the same workload and a report in the same layout.
#[derive(Debug, Parser)]
#[command(name = "etcdv3-bench", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags that apply to every subcommand; they may be given before or after it.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// gRPC endpoints, comma separated (host:port, http://host:port or https://host:port)
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub(crate) endpoints: Vec<String>,

    /// Number of connections: independent clients, each with its own HTTP/2 connection to
    /// every endpoint; worker i uses client i % conns
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) conns: usize,

    /// Number of concurrent workers
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) clients: usize,

    /// Print floats in the report with full precision
    #[arg(long, global = true)]
    pub(crate) precise: bool,

    /// Also print a per-second series (start second, average latency, requests)
    #[arg(long, global = true)]
    pub(crate) sample: bool,

    /// Client TLS certificate file (with --key), for mutual TLS
    #[arg(long, id = "cert_file", value_name = "FILE", global = true)]
    pub(crate) cert: Option<PathBuf>,

    /// Client TLS private key file (with --cert)
    #[arg(long = "key", id = "key_file", value_name = "FILE", global = true)]
    pub(crate) key_file: Option<PathBuf>,

    /// CA bundle that signs the server certificates; bare host:port endpoints then use TLS
    #[arg(long, id = "cacert_file", value_name = "FILE", global = true)]
    pub(crate) cacert: Option<PathBuf>,

    /// Accept any server certificate: the connection is encrypted but the server is not
    /// authenticated (tests only)
    #[arg(long, global = true)]
    pub(crate) insecure_skip_tls_verify: bool,

    /// etcdv3 extension (not in Go's tool): send each request's deadline to etcd as
    /// grpc-timeout, to measure what that costs the server
    #[arg(long, global = true)]
    pub(crate) propagate_deadlines: bool,

    /// The user to authenticate as, as user:password (the password is not prompted for)
    #[arg(long, global = true)]
    pub(crate) user: Option<String>,

    /// Connect timeout per endpoint, as a Go duration (2s, 500ms); 0 keeps the client
    /// default (5s)
    #[arg(long, global = true, default_value = "0s", value_parser = parse_duration)]
    pub(crate) dial_timeout: Duration,

    /// Connect only to the leader: the endpoint whose status says it leads
    #[arg(long, global = true)]
    pub(crate) target_leader: bool,

    /// Print the results as one JSON document instead of the text report
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Benchmark put: latency and throughput of puts to keys in the key space
    Put(PutArgs),
    /// Benchmark range: latency of gets of one key or a range
    Range(RangeArgs),
    /// Benchmark txn-put: transactions of --txn-ops puts each
    TxnPut(TxnPutArgs),
    /// Benchmark txn-mixed: transactions with one range (read) or one put (write); separate
    /// read and write reports
    TxnMixed(TxnMixedArgs),
    /// Benchmark watch: creation latency of --streams x --watch-per-stream watches, then the
    /// events they receive while --put-total puts go to the watched keys
    Watch(WatchArgs),
    /// Benchmark watch-get: latency of serializable gets while --watchers unsynced watchers
    /// (from an old revision) catch up
    WatchGet(WatchGetArgs),
    /// Benchmark watch-latency: put latency, and for every watcher the latency from a put to
    /// its event
    WatchLatency(WatchLatencyArgs),
    /// etcdv3 addition: --watchers watches on one key from one client (one stream): time to
    /// create them, client memory per watch, and the time until all get one event
    WatchScale(WatchScaleArgs),
    /// Benchmark lease-keepalive: each worker grants a 100 s lease, then measures
    /// keep-alive-once latency; with --leases (etcdv3 addition), keeps N leases alive through
    /// the shared keep-alive stream and reports client CPU, renewals and expired leases
    LeaseKeepalive(LeaseKeepaliveArgs),
    /// Benchmark STM: latency of STM transactions that read --keys-per-txn random keys and
    /// overwrite --txn-wr-percent of them, retries included
    Stm(StmArgs),
}

/// Flags of `put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// Size of the key field in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) key_size: usize,
    /// Size of the value in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) val_size: usize,
    /// Maximum puts per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Total number of puts
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// Number of distinct keys (1: every put writes the same key)
    #[arg(long, default_value_t = 1)]
    pub(crate) key_space_size: u64,
    /// Walk the key space in order instead of picking keys at random
    #[arg(long)]
    pub(crate) sequential_keys: bool,
    /// Bytes put in front of every key
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// Compact every this often (Go duration; 0 = never)
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub(crate) compact_interval: Duration,
    /// Compact to the current revision minus this many revisions
    #[arg(long, default_value_t = 1000)]
    pub(crate) compact_index_delta: i64,
    /// Check at the end that every endpoint's HashKV agrees at the latest revision (exits
    /// with an error naming each endpoint's hash when they differ)
    #[arg(long)]
    pub(crate) check_hashkv: bool,
}

/// Read consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Consistency {
    /// Linearizable: confirmed by a quorum
    L,
    /// Serializable: served by the member's local data
    S,
}

/// Flags of `range`.
#[derive(Debug, Args)]
pub(crate) struct RangeArgs {
    /// The key, or the start of the range
    #[arg(id = "range_key", value_name = "KEY")]
    pub(crate) key: String,
    /// End of the range (exclusive); without it only KEY is read
    #[arg(id = "range_end", value_name = "END")]
    pub(crate) end: Option<String>,
    /// Maximum requests per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Total number of requests
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// Linearizable (l) or serializable (s)
    #[arg(long, value_enum, default_value = "l")]
    pub(crate) consistency: Consistency,
    /// Maximum keys per response (0 = no limit)
    #[arg(long, default_value_t = 0)]
    pub(crate) limit: i64,
    /// Only count the keys
    #[arg(long)]
    pub(crate) count_only: bool,
    /// Return keys without values
    #[arg(long)]
    pub(crate) keys_only: bool,
    /// Read every key that starts with KEY (cannot be combined with END)
    #[arg(long, conflicts_with = "range_end")]
    pub(crate) prefix: bool,
}

/// Flags of `txn-put`.
#[derive(Debug, Args)]
pub(crate) struct TxnPutArgs {
    /// Size of the key field in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) key_size: usize,
    /// Size of the value in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) val_size: usize,
    /// Puts per transaction (at most --key-space-size)
    #[arg(long, default_value_t = 1)]
    pub(crate) txn_ops: usize,
    /// Maximum transactions per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Total number of transactions
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// Number of distinct keys; transactions walk it in order
    #[arg(long, default_value_t = 1)]
    pub(crate) key_space_size: u64,
}

/// Flags of `txn-mixed`.
#[derive(Debug, Args)]
pub(crate) struct TxnMixedArgs {
    /// Start of the range that reads get
    #[arg(id = "mixed_key", value_name = "KEY")]
    pub(crate) key: String,
    /// End of the read range (exclusive); same as --end-key
    #[arg(id = "mixed_end", value_name = "END", conflicts_with = "end_key")]
    pub(crate) end: Option<String>,
    /// Size of the key field of writes in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) key_size: usize,
    /// Size of the value of writes in bytes
    #[arg(long, default_value_t = 8)]
    pub(crate) val_size: usize,
    /// Maximum transactions per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Total number of transactions
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// End of the read range (exclusive); empty reads only KEY
    #[arg(long, default_value = "")]
    pub(crate) end_key: String,
    /// Maximum keys per read
    #[arg(long, default_value_t = 1000)]
    pub(crate) limit: i64,
    /// Number of distinct keys writes pick from at random
    #[arg(long, default_value_t = 1)]
    pub(crate) key_space_size: u64,
    /// Linearizable (l) or serializable (s) reads
    #[arg(long, value_enum, default_value = "l")]
    pub(crate) consistency: Consistency,
    /// Reads per write: a transaction reads with probability r / (1 + r)
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rw_ratio: f64,
}

/// STM isolation level (`--isolation`), named as in the Go tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StmIsolation {
    /// Read committed
    C,
    /// Repeatable reads
    R,
    /// Serializable
    S,
    /// Serializable snapshot
    Ss,
}

/// What wraps each STM transaction (`--stm-locker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StmLocker {
    /// Nothing: the STM alone
    Stm,
    /// A client-side mutex (concurrency Mutex) held around each transaction
    LockClient,
    /// The v3lock Lock and Unlock RPCs around each transaction
    LockRpc,
}

/// Flags of `stm`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StmArgs {
    /// Read committed (c), repeatable reads (r), serializable (s) or serializable snapshot (ss)
    #[arg(long, value_enum, default_value = "r")]
    pub(crate) isolation: StmIsolation,
    /// Distinct keys the transactions pick from (16-byte varint keys, as in the Go tool)
    #[arg(long, default_value_t = 1)]
    pub(crate) keys: u64,
    /// Total number of committed transactions
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// Distinct random keys each transaction reads (at most --keys)
    #[arg(long, default_value_t = 1)]
    pub(crate) keys_per_txn: u64,
    /// Percentage of the keys read that each transaction also overwrites
    #[arg(long, default_value_t = 50)]
    pub(crate) txn_wr_percent: i64,
    /// Wrap each transaction in a lock: stm (none), lock-client or lock-rpc
    #[arg(long, value_enum, default_value = "stm")]
    pub(crate) stm_locker: StmLocker,
    /// Size of each value written, in bytes (random bytes)
    #[arg(long, default_value_t = 8)]
    pub(crate) val_size: usize,
    /// Maximum transactions per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
}

/// Flags of `watch`.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchArgs {
    /// Watch streams
    #[arg(long, default_value_t = 10)]
    pub(crate) streams: usize,
    /// Watches per stream, created one after another
    #[arg(long, default_value_t = 100)]
    pub(crate) watch_per_stream: usize,
    /// Distinct watched keys; watch i watches key i % this
    #[arg(long, default_value_t = 1)]
    pub(crate) watched_key_total: u64,
    /// Maximum puts per second (0 = no limit)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) put_rate: f64,
    /// Puts to the watched keys (put i writes key i % --watched-key-total)
    #[arg(long, default_value_t = 1000)]
    pub(crate) put_total: u64,
    /// Size of the key field in bytes
    #[arg(long, default_value_t = 32)]
    pub(crate) key_size: usize,
    /// Key indexes the watched keys are picked from
    #[arg(long, default_value_t = 1)]
    pub(crate) key_space_size: u64,
    /// Watched key i has index i % --key-space-size instead of a random one
    #[arg(long)]
    pub(crate) sequential_keys: bool,
    /// etcdv3 addition: how long to wait for events after the last put; the missing ones
    /// count as errors
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) event_timeout: Duration,
}

/// Flags of `watch-get`.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchGetArgs {
    /// Watchers in all
    #[arg(long, default_value_t = 10000)]
    pub(crate) watchers: usize,
    /// Watch streams the watchers are spread over
    #[arg(long, default_value_t = 1)]
    pub(crate) streams: usize,
    /// Events each watcher reads: the key is put this many times first, and every watcher
    /// starts at the first of them
    #[arg(long, default_value_t = 8)]
    pub(crate) events: u64,
}

/// Flags of `watch-latency`.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchLatencyArgs {
    /// Watch streams
    #[arg(long, default_value_t = 10)]
    pub(crate) streams: usize,
    /// Watchers per stream, all on the one key
    #[arg(long, default_value_t = 10)]
    pub(crate) watchers_per_stream: usize,
    /// Ask for the previous key-value in every event
    #[arg(long)]
    pub(crate) prevkv: bool,
    /// Puts in all (etcd 3.6 names it --put-total, default 1000; up to 3.5 --total, default
    /// 10000; both names are taken)
    #[arg(long = "put-total", visible_alias = "total", default_value_t = 1000)]
    pub(crate) put_total: u64,
    /// Maximum puts per second (0 = no limit; Go's tool then puts nothing)
    #[arg(long, default_value_t = 100.0)]
    pub(crate) put_rate: f64,
    /// Size of the key in bytes (random bytes)
    #[arg(long, default_value_t = 32)]
    pub(crate) key_size: usize,
    /// Size of the value in bytes
    #[arg(long, default_value_t = 32)]
    pub(crate) val_size: usize,
    /// etcdv3 addition: how long to wait for events after the last put; the missing ones
    /// count as errors
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) event_timeout: Duration,
}

/// Flags of `watch-scale` (etcdv3 addition).
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchScaleArgs {
    /// Watches on the one key, all from the first connection (one gRPC stream)
    #[arg(long, default_value_t = 100_000)]
    pub(crate) watchers: u64,
    /// Creations in flight at once (0 = all at once). Every creation in flight holds memory
    /// until etcd answers, which the allocator keeps, so a large window inflates RSS
    #[arg(long, default_value_t = 1000)]
    pub(crate) in_flight: usize,
    /// Size of the key in bytes (random bytes)
    #[arg(long, default_value_t = 32)]
    pub(crate) key_size: usize,
    /// Size of the value put in bytes
    #[arg(long, default_value_t = 32)]
    pub(crate) val_size: usize,
    /// How long to wait for every watch to get the event
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) event_timeout: Duration,
}

/// Flags of `lease-keepalive`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LeaseKeepaliveArgs {
    /// Total number of keep-alive-once requests (Go's mode)
    #[arg(long, default_value_t = 10000)]
    pub(crate) total: u64,
    /// etcdv3 addition: instead of Go's mode, grant this many leases and keep them all alive
    /// through keep_alive (lease i on connection i % --conns) for --duration, then check
    /// each with time_to_live
    #[arg(long, conflicts_with = "total")]
    pub(crate) leases: Option<u64>,
    /// TTL of each lease in seconds (with --leases)
    #[arg(long, default_value_t = 10, requires = "leases")]
    pub(crate) ttl: i64,
    /// How long to keep the leases alive once all are granted, as a Go duration (with
    /// --leases); client CPU is measured over this window
    #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "leases")]
    pub(crate) duration: Duration,
    /// Grants, and time_to_live checks at the end, in flight at once (with --leases)
    #[arg(long, default_value_t = 1000, requires = "leases")]
    pub(crate) in_flight: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn go_defaults() {
        let cli = Cli::try_parse_from(["etcdv3-bench", "put"]).unwrap();
        assert_eq!(cli.global.endpoints, ["127.0.0.1:2379"]);
        assert_eq!((cli.global.conns, cli.global.clients), (1, 1));
        assert_eq!(cli.global.dial_timeout, Duration::ZERO);
        let Command::Put(p) = cli.command else {
            panic!("expected put")
        };
        assert_eq!((p.key_size, p.val_size, p.total), (8, 8, 10000));
        assert_eq!((p.key_space_size, p.compact_index_delta), (1, 1000));
        assert_eq!(p.compact_interval, Duration::ZERO);
        assert!(!p.sequential_keys && p.rate == 0.0);

        let cli = Cli::try_parse_from(["etcdv3-bench", "range", "foo"]).unwrap();
        let Command::Range(r) = cli.command else {
            panic!("expected range")
        };
        assert_eq!((r.key.as_str(), r.end, r.total), ("foo", None, 10000));
        assert_eq!(r.consistency, Consistency::L);

        let cli = Cli::try_parse_from(["etcdv3-bench", "txn-mixed", "k"]).unwrap();
        let Command::TxnMixed(m) = cli.command else {
            panic!("expected txn-mixed")
        };
        assert_eq!((m.limit, m.rw_ratio, m.key_space_size), (1000, 1.0, 1));
    }

    #[test]
    fn watch_defaults_are_go_s() {
        let parse = |args: &[&str]| {
            let mut all = vec!["etcdv3-bench"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().command
        };
        let Command::Watch(w) = parse(&["watch"]) else {
            panic!("expected watch")
        };
        assert_eq!(
            (w.streams, w.watch_per_stream, w.watched_key_total),
            (10, 100, 1)
        );
        assert_eq!((w.put_total, w.key_size, w.key_space_size), (1000, 32, 1));
        assert!(w.put_rate == 0.0 && !w.sequential_keys);
        let Command::WatchGet(g) = parse(&["watch-get"]) else {
            panic!("expected watch-get")
        };
        assert_eq!((g.watchers, g.streams, g.events), (10000, 1, 8));
        let Command::WatchLatency(l) = parse(&["watch-latency"]) else {
            panic!("expected watch-latency")
        };
        assert_eq!(
            (l.streams, l.watchers_per_stream, l.put_total),
            (10, 10, 1000)
        );
        assert_eq!((l.put_rate, l.key_size, l.val_size), (100.0, 32, 32));
        assert!(!l.prevkv);
        // etcd 3.5's name for --put-total.
        let Command::WatchLatency(l) = parse(&["watch-latency", "--total", "7"]) else {
            panic!("expected watch-latency")
        };
        assert_eq!(l.put_total, 7);
        let Command::WatchScale(s) = parse(&["watch-scale"]) else {
            panic!("expected watch-scale")
        };
        assert_eq!((s.watchers, s.in_flight), (100_000, 1000));
    }

    #[test]
    fn lease_keepalive_modes() {
        let parse = |args: &[&str]| {
            let mut all = vec!["etcdv3-bench", "lease-keepalive"];
            all.extend(args);
            Cli::try_parse_from(all).map(|c| c.command)
        };
        let Ok(Command::LeaseKeepalive(l)) = parse(&[]) else {
            panic!("expected lease-keepalive")
        };
        assert_eq!((l.total, l.leases), (10000, None));
        let Ok(Command::LeaseKeepalive(l)) = parse(&["--leases", "5", "--duration", "2s"]) else {
            panic!("expected lease-keepalive")
        };
        assert_eq!((l.leases, l.ttl, l.in_flight), (Some(5), 10, 1000));
        assert_eq!(l.duration, Duration::from_secs(2));
        // The mode's flags need --leases; --total belongs to Go's mode.
        assert!(parse(&["--ttl", "5"]).is_err());
        assert!(parse(&["--duration", "5s"]).is_err());
        assert!(parse(&["--leases", "5", "--total", "7"]).is_err());
    }

    #[test]
    fn stm_defaults_are_go_s() {
        let cli = Cli::try_parse_from(["etcdv3-bench", "stm"]).unwrap();
        let Command::Stm(a) = cli.command else {
            panic!("expected stm")
        };
        assert_eq!(
            (a.isolation, a.stm_locker),
            (StmIsolation::R, StmLocker::Stm)
        );
        assert_eq!((a.keys, a.total, a.keys_per_txn), (1, 10000, 1));
        assert_eq!((a.txn_wr_percent, a.val_size), (50, 8));
        assert!(a.rate == 0.0);
        let cli = Cli::try_parse_from([
            "etcdv3-bench",
            "stm",
            "--isolation",
            "ss",
            "--stm-locker",
            "lock-rpc",
        ])
        .unwrap();
        let Command::Stm(a) = cli.command else {
            panic!("expected stm")
        };
        assert_eq!(
            (a.isolation, a.stm_locker),
            (StmIsolation::Ss, StmLocker::LockRpc)
        );
        assert!(Cli::try_parse_from(["etcdv3-bench", "stm", "--isolation", "x"]).is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "etcdv3-bench",
            "--endpoints",
            "a:1,b:2",
            "--conns=2",
            "txn-put",
            "--clients",
            "4",
            "--json",
            "--txn-ops",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoints, ["a:1", "b:2"]);
        assert_eq!((cli.global.conns, cli.global.clients), (2, 4));
        assert!(cli.global.json);
        let Command::TxnPut(t) = cli.command else {
            panic!("expected txn-put")
        };
        assert_eq!(t.txn_ops, 3);
    }

    #[test]
    fn range_prefix_excludes_end() {
        assert!(Cli::try_parse_from(["etcdv3-bench", "range", "a", "b", "--prefix"]).is_err());
        assert!(Cli::try_parse_from(["etcdv3-bench", "range", "a", "--consistency", "x"]).is_err());
        let cli = Cli::try_parse_from(["etcdv3-bench", "range", "a", "--consistency=s"]).unwrap();
        let Command::Range(r) = cli.command else {
            panic!("expected range")
        };
        assert_eq!(r.consistency, Consistency::S);
    }
}
