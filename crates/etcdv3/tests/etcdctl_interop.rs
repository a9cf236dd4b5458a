//! Interop with `etcdctl lock` and `etcdctl elect` (Go's `concurrency` package in another
//! process): the same keys, both ways. Needs etcdctl (Debian's `etcd-client` package, or
//! `ETCDV3_ETCDCTL_BIN`); runs with `--features etcdctl-interop` (`scripts/interop.sh`).
#![cfg(feature = "etcdctl-interop")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use etcdv3::{Client, Election, Mutex, Session};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The etcdctl binary: `$ETCDV3_ETCDCTL_BIN`, else `etcdctl` on the `PATH`.
fn etcdctl_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ETCDV3_ETCDCTL_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcdctl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "etcdctl not found: install it (apt-get install -y etcd-client) or set \
             ETCDV3_ETCDCTL_BIN, or run scripts/interop.sh, which does"
        )
    })
}

/// `etcdctl --endpoints=EP args...`, killed when dropped.
fn etcdctl(endpoint: &str, args: &[&str]) -> Child {
    Command::new(etcdctl_bin())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run etcdctl")
}

/// Waits until `file` exists and contains `text`.
async fn file_says(file: &Path, text: &str) -> String {
    common::eventually(Duration::from_secs(15), text, || async {
        let got = tokio::fs::read_to_string(file).await.ok()?;
        got.contains(text).then_some(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lock_and_our_mutex_exclude_each_other() {
    let etcd = common::cluster(1).await;
    let ep = etcd.endpoint(0);
    let c = Client::connect([ep.as_str()]).await.unwrap();
    let dir = tempdir();
    let log = dir.join("held");

    // etcdctl holds the lock while its command runs (2 s).
    let script = format!(
        "echo \"start $ETCD_LOCK_KEY\" > {0}; sleep 2; echo end >> {0}",
        log.display()
    );
    let mut theirs = etcdctl(&ep, &["lock", "m", "--", "sh", "-c", &script]);
    let started = file_says(&log, "start").await;
    let session = Session::new(&c).await.unwrap();
    let mutex = Mutex::new(&session, "m").unwrap();
    let err = mutex.try_lock().await.unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    // etcdctl's key has our layout: m/<lease in hex>.
    let key = started.trim().strip_prefix("start ").unwrap().to_owned();
    let lease = key.strip_prefix("m/").expect("m/<lease>");
    assert!(u64::from_str_radix(lease, 16).is_ok(), "{key}");
    // Our lock comes once etcdctl's command has ended.
    tokio::time::timeout(Duration::from_secs(15), mutex.lock().into_future())
        .await
        .expect("locked after etcdctl released")
        .unwrap();
    let log_now = tokio::fs::read_to_string(&log).await.unwrap();
    assert!(
        log_now.contains("end"),
        "etcdctl's command had ended: {log_now}"
    );
    assert!(theirs.wait().await.unwrap().success());

    // Reverse: we hold; etcdctl's command starts only after our unlock.
    let second = dir.join("second");
    let script = format!("echo ran > {}", second.display());
    let mut theirs = etcdctl(&ep, &["lock", "m", "--", "sh", "-c", &script]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!second.exists(), "etcdctl ran while we held the lock");
    mutex.unlock().await.unwrap();
    file_says(&second, "ran").await;
    assert!(theirs.wait().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_elect_and_our_election_see_each_other() {
    let etcd = common::cluster(1).await;
    let ep = etcd.endpoint(0);
    let c = Client::connect([ep.as_str()]).await.unwrap();
    let mut theirs = etcdctl(&ep, &["elect", "e", "p1"]);
    let session = Session::new(&c).await.unwrap();
    let ours = Election::new(&session, "e").unwrap();
    common::eventually(Duration::from_secs(10), "etcdctl leads", || async {
        let leader = ours.leader().await.ok()?;
        (leader.kvs()[0].value() == b"p1").then_some(())
    })
    .await;
    // Our candidacy waits while etcdctl leads, and wins once it resigns (SIGTERM).
    let campaign = tokio::spawn(ours.campaign("p2").into_future());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!campaign.is_finished(), "won while etcdctl led");
    let pid = theirs.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(15), campaign)
        .await
        .expect("we lead after etcdctl resigned")
        .unwrap()
        .unwrap();
    let _ = theirs.wait().await;

    // etcdctl's listener sees our value, then what we proclaim.
    let mut listen = etcdctl(&ep, &["elect", "-l", "e"]);
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let mut next_value = async || loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("etcdctl prints the leader")
            .unwrap()
            .expect("etcdctl is still listening");
        // It prints the key, then the value.
        if !line.starts_with("e/") {
            return line;
        }
    };
    assert_eq!(next_value().await, "p2");
    ours.proclaim("p3").await.unwrap();
    assert_eq!(next_value().await, "p3");
}

/// A fresh directory under the system temp dir.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("etcdv3-interop-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
