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
async fn text_report() {
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
}

/// The number in a JSON report, as u64.
fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The part named `name` of a report.
fn part<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["parts"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no part {name:?} in {report:#}"))
}

/// Every request of a part succeeded, and there were `total` of them.
fn assert_part_ok(part: &Value, total: u64) {
    assert_eq!(count(&part["total"]), total, "{part:#}");
    assert_eq!(count(&part["ok"]), total, "{part:#}");
    assert_eq!(count(&part["errors"]), 0, "{part:#}");
    let lat = &part["latency_secs"];
    assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_subcommands_against_real_etcd() {
    let cluster = EtcdCluster::builder()
        .members(1)
        .start()
        .await
        .expect("start etcd");
    let ep = cluster.endpoint(0);
    const STREAMS: &str = r#"grpc_server_started_total{grpc_service="etcdserverpb.Watch"}"#;
    let streams = || async {
        let n = cluster.metric(0, STREAMS).await.expect("metrics");
        n.unwrap_or(0.0) as u64
    };

    // 3 streams x 4 watches over 2 keys; 10 puts, 5 per key: 12 x 5 events.
    let before = streams().await;
    let watch = bench_json(
        &ep,
        &[
            "watch",
            "--streams",
            "3",
            "--watch-per-stream",
            "4",
            "--watched-key-total",
            "2",
            "--key-space-size",
            "2",
            "--sequential-keys",
            "--put-total",
            "10",
        ],
    )
    .await;
    assert_eq!(watch["command"], "watch");
    assert_part_ok(part(&watch, "watch-make"), 12);
    assert_part_ok(part(&watch, "watch-put"), 60);
    assert_eq!(count(&watch["ok"]), 60, "the events lead the report");
    assert_eq!(streams().await - before, 3, "one gRPC stream per --streams");

    let get = bench_json(
        &ep,
        &[
            "watch-get",
            "--watchers",
            "50",
            "--streams",
            "2",
            "--events",
            "3",
        ],
    )
    .await;
    assert_eq!(get["command"], "watch-get");
    assert!(count(&get["ok"]) >= 1, "{get:#}");
    assert_eq!(count(&get["errors"]), 0, "{get:#}");

    // 2 streams x 3 watchers, 20 puts: 120 events, each matched to its put.
    let before = streams().await;
    let latency = bench_json(
        &ep,
        &[
            "watch-latency",
            "--streams",
            "2",
            "--watchers-per-stream",
            "3",
            "--total",
            "20",
            "--put-rate",
            "1000",
            "--prevkv",
        ],
    )
    .await;
    assert_eq!(latency["command"], "watch-latency");
    assert_part_ok(part(&latency, "put"), 20);
    assert_part_ok(part(&latency, "watch"), 120);
    assert_part_ok(part(&latency, "put-to-event"), 120);
    assert_eq!(
        count(&latency["ok"]),
        120,
        "the watch part leads the report"
    );
    assert_eq!(streams().await - before, 2);

    let scale = bench_json(&ep, &["watch-scale", "--watchers", "2000"]).await;
    assert_eq!(scale["command"], "watch-scale");
    let s = &scale["scale"];
    assert_eq!(
        (count(&s["created"]), count(&s["delivered"])),
        (2000, 2000),
        "{s:#}"
    );
    assert!(s["deliver_secs"].as_f64().unwrap() > 0.0, "{s:#}");
    assert!(count(&s["rss_after_bytes"]) > 0, "{s:#}");
    assert_part_ok(part(&scale, "watch-create"), 2000);
    assert_part_ok(part(&scale, "event"), 2000);

    // The text report has Go's section titles, then the scale figures.
    let out = bench(
        ["--endpoints", ep.as_str(), "watch-latency", "--total", "5"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "Put summary:",
        "Watch events summary",
        "Put to event summary",
    ] {
        assert!(text.contains(section), "no {section:?} in\n{text}");
    }
    let out = bench(
        [
            "--endpoints",
            ep.as_str(),
            "watch-scale",
            "--watchers",
            "100",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Watch creation summary:",
        "Client RSS:",
        "All got the event in:",
        "not judged",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_authenticates_against_an_auth_cluster() {
    let cluster = EtcdCluster::builder()
        .auth("root-pw")
        .start()
        .await
        .expect("start etcd with auth");
    let ep = cluster.endpoint(0);
    let report = bench_json(&ep, &["--user", "root:root-pw", "put", "--total", "20"]).await;
    assert_all_ok(&report, "put", 20);
    for (user, says) in [
        ("root:wrong", "authentication failed"),
        ("root", "give the password"),
    ] {
        let out = bench(
            [
                "--endpoints",
                ep.as_str(),
                "--user",
                user,
                "put",
                "--total",
                "5",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        )
        .await;
        assert!(!out.status.success(), "{user} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_leader_and_check_hashkv_on_three_members() {
    let cluster = EtcdCluster::builder()
        .members(3)
        .start()
        .await
        .expect("start etcd");
    let eps = cluster.endpoints().join(",");
    let leader = cluster.leader().await.unwrap();
    let report = bench_json(
        &eps,
        &["--target-leader", "put", "--total", "50", "--check-hashkv"],
    )
    .await;
    assert_all_ok(&report, "put", 50);
    assert_eq!(report["hashkv"]["consistent"], true, "{report:#}");
    // Every put went to the leader.
    let puts = |i: usize| {
        let c = &cluster;
        async move {
            c.metric(i, r#"grpc_server_handled_total{grpc_method="Put"}"#)
                .await
                .unwrap()
                .unwrap_or(0.0)
        }
    };
    assert_eq!(puts(leader).await, 50.0);
    for i in (0..3).filter(|&i| i != leader) {
        assert_eq!(puts(i).await, 0.0, "member {i} is not the leader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_keepalive_against_real_etcd() {
    let cluster = EtcdCluster::builder()
        .members(1)
        .start()
        .await
        .expect("start etcd");
    let ep = cluster.endpoint(0);
    let client = etcdv3::Client::connect([ep.as_str()])
        .await
        .expect("connect");
    let lease = client.lease();

    // Go's mode: a lease per worker (4), 200 keep-alive-once requests, leases revoked after.
    let once = bench_json(&ep, &["lease-keepalive", "--total", "200"]).await;
    assert_all_ok(&once, "lease-keepalive", 200);
    assert!(once.get("leases").is_none(), "{once:#}");
    let left = lease.leases().await.expect("list leases");
    assert_eq!(left.ids().count(), 0, "the workers' leases are revoked");

    // --leases: 50 leases of 2 s over 2 connections, kept alive 5 s. One is revoked behind
    // the tool's back during the hold: the check finds it gone and its keep-alive ends.
    let revoke_one = async {
        let ids = loop {
            let ids: Vec<i64> = lease.leases().await.expect("list leases").ids().collect();
            if ids.len() == 50 {
                break ids;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        lease.revoke(ids[0]).await.expect("revoke");
    };
    let args = [
        "lease-keepalive",
        "--leases",
        "50",
        "--ttl",
        "2",
        "--duration",
        "5s",
        "--in-flight",
        "10",
    ];
    let (held, ()) = tokio::join!(bench_json(&ep, &args), revoke_one);
    assert_eq!(held["command"], "lease-keepalive");
    assert_part_ok(part(&held, "grant"), 50);
    // A lease etcd does not know is an answer too (counted as expired below).
    assert_part_ok(part(&held, "time-to-live"), 50);
    let l = &held["leases"];
    assert_eq!(
        (
            count(&l["leases"]),
            count(&l["granted"]),
            count(&l["conns"])
        ),
        (50, 50, 2),
        "{l:#}"
    );
    assert_eq!(
        (
            count(&l["checked"]),
            count(&l["alive"]),
            count(&l["expired"])
        ),
        (50, 49, 1),
        "{l:#}"
    );
    assert_eq!(count(&l["check_failed"]), 0, "{l:#}");
    // TTL 2 s: a renewal every 2/3 s (plus the keep-alive task's 0.5 s tick), so even the
    // revoked lease got some before it went, and the others at least 3 in 5 s.
    let renewals = count(&l["renewals"]);
    assert!(renewals >= 49 * 3, "{l:#}");
    assert!(l["hold_secs"].as_f64().unwrap() >= 5.0, "{l:#}");
    assert!(l["cpu_percent"].as_f64().unwrap() >= 0.0, "{l:#}");
    let ended = l["keepalive_ended"].as_object().expect("reasons");
    assert_eq!(ended.len(), 1, "{l:#}");
    assert!(ended.keys().all(|k| k.contains("lease not found")), "{l:#}");
    assert!(
        l["lowest_remaining_ttl_secs"].as_i64().unwrap() >= 1,
        "{l:#}"
    );

    // The text report: Go's sections for the grants and checks, then the findings.
    let out = bench(
        [
            "--endpoints",
            ep.as_str(),
            "lease-keepalive",
            "--leases",
            "5",
            "--duration",
            "1s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Lease grant summary:",
        "Time-to-live check summary",
        "Client CPU:",
        "Renewals answered:",
        "5 alive, 0 expired",
        "not judged",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stm_at_every_isolation_level() {
    let cluster = EtcdCluster::builder()
        .members(1)
        .start()
        .await
        .expect("start etcd");
    let ep = cluster.endpoint(0);
    for iso in ["c", "r", "s", "ss"] {
        let report = bench_json(
            &ep,
            &[
                "stm",
                "--isolation",
                iso,
                "--total",
                "100",
                "--keys",
                "10",
                "--keys-per-txn",
                "3",
                "--val-size",
                "12",
            ],
        )
        .await;
        assert_all_ok(&report, "stm", 100);
    }
    // The Go tool's keys: 16-byte zero-padded varints of indexes below --keys; half of the
    // keys read (rounded down: 1 of 3) are written, with --val-size random bytes.
    let client = etcdv3::Client::connect([ep.as_str()])
        .await
        .expect("connect");
    let all = client.kv().get(KeyRange::all()).await.expect("get all");
    assert!(all.count() > 0 && all.count() <= 10, "{} keys", all.count());
    for kv in all.kvs() {
        assert_eq!((kv.key().len(), kv.value().len()), (16, 12));
    }

    // Each transaction inside a lock: the client-side Mutex, or etcd's Lock service, whose
    // key layout is the same ("stmlock/<lease>"); no lock key is left at the end.
    for locker in ["lock-client", "lock-rpc"] {
        let report = bench_json(&ep, &["stm", "--stm-locker", locker, "--total", "40"]).await;
        assert_all_ok(&report, "stm", 40);
        let grpc = |method: &str| format!(r#"grpc_server_handled_total{{grpc_method="{method}"}}"#);
        if locker == "lock-rpc" {
            let locks = cluster.metric(0, &grpc("Lock")).await.unwrap();
            assert_eq!(locks, Some(40.0), "one Lock RPC per transaction");
        }
    }

    let refused = [
        (vec!["--keys", "2", "--keys-per-txn", "3"], "--keys-per-txn"),
        (vec!["--txn-wr-percent", "101"], "--txn-wr-percent"),
        (vec!["--keys", "0"], "--keys"),
    ];
    for (flags, says) in refused {
        let mut args = vec!["--endpoints".to_owned(), ep.clone(), "stm".to_owned()];
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let out = bench(args).await;
        assert!(!out.status.success(), "{flags:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
