//! Starts an etcd cluster with the testkit and keeps it up for other programs (benchmarks,
//! manual testing).
//!
//! ```text
//! cargo run -p etcdv3-testkit --example serve -- [--members N] [--arg ETCD_FLAG]...
//! ```
//!
//! Prints the client endpoints as one comma-separated line on stdout once every member is
//! healthy, then runs until its stdin closes or it gets SIGTERM, SIGINT (ctrl-c) or SIGHUP.
//! It then exits, and dropping the cluster kills the members and removes their data. Member
//! data lives on `/dev/shm` when it is writable (see the testkit's docs).

// A command-line tool: the endpoints line on stdout and errors on stderr are its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use etcdv3_testkit::EtcdCluster;
use nix::sys::signal::{SigSet, Signal};

const USAGE: &str = "usage: serve [--members N] [--arg ETCD_FLAG]...";

fn main() -> ExitCode {
    let (members, args) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("serve: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Block the stop signals in every thread (threads inherit the mask, so this comes before
    // the runtime starts) and take them with sigwait in one thread instead: the cluster is
    // then always dropped, never left running by a default signal action. etcd itself (Go)
    // unblocks these signals at start, so the members still obey SIGTERM.
    let mut stop_signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop_signals.add(s);
    }
    if let Err(e) = stop_signals.thread_block() {
        eprintln!("serve: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = EtcdCluster::builder().members(members);
    for a in args {
        builder = builder.arg(a);
    }
    let cluster = match runtime.block_on(builder.start()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve: cannot start etcd: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "serve: etcd {} with {} member(s), data in {}",
        cluster.etcd_version(),
        cluster.len(),
        cluster.temp_dir().display()
    );
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", cluster.endpoints().join(","))
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    let (stop_tx, stop_rx) = mpsc::channel::<String>();
    let on_signal = stop_tx.clone();
    std::thread::spawn(move || {
        let why = match stop_signals.wait() {
            Ok(sig) => format!("got {sig}"),
            Err(e) => format!("sigwait failed: {e}"),
        };
        let _ = on_signal.send(why);
    });
    std::thread::spawn(move || {
        let mut sink = [0u8; 512];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = stop_tx.send("stdin closed".to_owned());
    });

    let why = stop_rx
        .recv()
        .unwrap_or_else(|_| "no stop source left".to_owned());
    eprintln!("serve: {why}, stopping etcd");
    drop(cluster);
    drop(runtime);
    ExitCode::SUCCESS
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<(usize, Vec<String>), String> {
    let mut members = 1;
    let mut extra = Vec::new();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--members" => {
                let v = value()?;
                members = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--members must be a positive number, got {v:?}"))?;
            }
            "--arg" => extra.push(value()?),
            "-h" | "--help" => return Err("help requested".to_owned()),
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    Ok((members, extra))
}
