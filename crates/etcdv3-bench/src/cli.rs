//! Command-line flags, named and defaulted as in etcd's Go `benchmark` tool.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Not available yet (they need etcdv3 APIs that do not exist yet):
  watch, watch-get, watch-latency   arrive with the watch API
  lease-keepalive                   arrives with the lease API
  stm                               arrives with the concurrency API

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

    /// The user to authenticate as, as user or user:password. Not supported yet (etcdv3 has
    /// no auth yet): exits with an error
    #[arg(long, global = true)]
    pub(crate) user: Option<String>,

    /// Connect timeout per endpoint, as a Go duration (2s, 500ms); 0 keeps the client
    /// default (5s)
    #[arg(long, global = true, default_value = "0s", value_parser = parse_duration)]
    pub(crate) dial_timeout: Duration,

    /// Connect only to the leader. A no-op with one endpoint; with several it exits with an
    /// error, since finding the leader needs the maintenance API, not in etcdv3 yet
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
    /// Check HashKV across members at the end. Not supported yet (needs the maintenance
    /// API): exits with an error
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

/// Parses a Go duration: a sequence of decimal numbers with units `ns`, `us` (or `µs`),
/// `ms`, `s`, `m`, `h`, such as `300ms`, `1.5s` or `1m30s`; a bare `0` is zero.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?} (examples: 500ms, 2s, 1m30s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        for bad in ["", "5", "s", "1x", "-1s", "1..2s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

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
