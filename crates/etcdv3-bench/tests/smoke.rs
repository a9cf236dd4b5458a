//! Runs the built `etcdv3-bench` binary against a real single-member etcd.

use std::process::Output;

use etcdv3::{KeyRange, Kv};
use etcdv3_testkit::EtcdCluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_etcdv3-bench");

/// Runs the binary with `args` and returns its exit status and output.
async fn bench(args: Vec<String>) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .expect("run etcdv3-bench")
}

/// Runs the binary with `--json` and returns the parsed report.
async fn bench_json(endpoint: &str, args: &[&str]) -> Value {
    let mut all: Vec<String> = ["--endpoints", endpoint, "--clients", "4", "--conns", "2"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    all.extend(args.iter().map(|s| (*s).to_owned()));
    all.push("--json".to_owned());
    let out = bench(all).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"))
}

fn assert_all_ok(report: &Value, command: &str, total: u64) {
    assert_eq!(report["tool"], "etcdv3-bench");
    assert_eq!(report["command"], command);
    assert_eq!(report["total"], total, "{report:#}");
    assert_eq!(report["ok"], total, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(
        (report["clients"].as_u64(), report["conns"].as_u64()),
        (Some(4), Some(2))
    );
    assert!(report["throughput"].as_f64().unwrap() > 0.0);
    let lat = &report["latency_secs"];
    let p50 = lat["p50"].as_f64().unwrap();
    let p99 = lat["p99"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{lat:#}");
    assert!(p99 <= lat["slowest"].as_f64().unwrap());
    assert!(report["cpu"]["total_secs"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_range_and_txn_put_against_real_etcd() {
    let cluster = EtcdCluster::builder()
        .members(1)
        .start()
        .await
        .expect("start etcd");
    let ep = cluster.endpoint(0);

    let put = bench_json(
        &ep,
        &[
            "put",
            "--total",
            "200",
            "--val-size",
            "16",
            "--key-space-size",
            "50",
        ],
    )
    .await;
    assert_all_ok(&put, "put", 200);

    // The keys are the Go tool's: 8-byte zero-padded varints of indexes below 50.
    let client = etcdv3::Client::connect([ep.as_str()])
        .await
        .expect("connect");
    let all = client.kv().get(KeyRange::all()).await.expect("get all");
    let count = all.count();
    assert!(count > 0 && count <= 50, "{count} keys");
    for kv in all.kvs() {
        assert_eq!(kv.key().len(), 8);
        assert_eq!(kv.value().len(), 16);
    }

    let range = bench_json(
        &ep,
        &["range", "foo", "--total", "100", "--consistency", "s"],
    )
    .await;
    assert_all_ok(&range, "range", 100);

    let txn = bench_json(
        &ep,
        &[
            "txn-put",
            "--total",
            "100",
            "--txn-ops",
            "2",
            "--key-space-size",
            "10",
        ],
    )
    .await;
    assert_all_ok(&txn, "txn-put", 100);
    let after = client.kv().get(KeyRange::all()).count_only().await.unwrap();
    assert!(after.count() >= count, "txn-put keys overlap put keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_report_and_unsupported_flags() {
    let cluster = EtcdCluster::builder()
        .members(1)
        .start()
        .await
        .expect("start etcd");
    let ep = cluster.endpoint(0);
    let args = |extra: &[&str]| -> Vec<String> {
        ["--endpoints", ep.as_str()]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };

    let out = bench(args(&["put", "--total", "20"])).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "Summary:",
        "Requests/sec:",
        "Response time histogram:",
        "Latency distribution:",
        "99.9% in",
    ] {
        assert!(text.contains(section), "no {section:?} in\n{text}");
    }
    assert!(!text.contains("Error distribution"), "{text}");

    for unsupported in [
        &["--user", "root:pw", "put"][..],
        &["put", "--check-hashkv"],
    ] {
        let out = bench(args(unsupported)).await;
        assert!(!out.status.success(), "{unsupported:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not supported yet"), "{stderr}");
    }
}
