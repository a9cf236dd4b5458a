//! `etcdv3-bench`: a benchmark tool for etcd v3 built on the `etcdv3` client, flag-compatible
//! with etcd's Go `benchmark` tool.
//!
//! ```text
//! etcdv3-bench --endpoints 127.0.0.1:2379 --conns 10 --clients 100 \
//!     put --key-size 8 --val-size 256 --total 100000
//! etcdv3-bench --clients 100 range foo --consistency s --total 100000 --json
//! etcdv3-bench --clients 100 --conns 10 watch-latency --put-total 10000 --put-rate 1000
//! etcdv3-bench --clients 100 --conns 10 lease-keepalive --total 100000
//! etcdv3-bench lease-keepalive --leases 10000 --ttl 10 --duration 60s
//! ```
//!
//! It prints the Go tool's report (summary, response-time histogram, latency distribution,
//! error distribution) on stdout, or one JSON document with `--json`, and draws a progress bar
//! on stderr when stderr is a terminal. See the crate README for what is not there yet.

// A command-line tool: printing the report on stdout and errors on stderr is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod cli;
mod lease;
mod load;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcdv3-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench::main(&cli.global, &cli.command)) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(report.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("etcdv3-bench: {msg}");
            ExitCode::FAILURE
        }
    }
}
