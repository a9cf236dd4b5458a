//! Transactions against real etcd: the `txn_test.go` items of the Go client's acceptance list.

mod common;

use std::time::Duration;

use common::{client, client_with_timeout, cluster};
use etcdv3::{Code, Compare, Kv, Op, OpResponse};

async fn txn_success_and_failure_branches(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    kv.put("mode", "standby").await.unwrap();
    let resp = kv
        .txn()
        .when([Compare::value("mode").eq("standby")])
        .and_then([Op::put("mode", "active").prev_kv()])
        .or_else([Op::get("mode")])
        .await
        .unwrap();
    assert!(resp.succeeded());
    let put = resp.responses()[0].as_put().expect("put response");
    assert_eq!(put.prev_kv().unwrap().value(), b"standby");
    assert_eq!(kv.get("mode").await.unwrap().kvs()[0].value(), b"active");

    let resp = kv
        .txn()
        .when([Compare::value("mode").eq("standby")])
        .and_then([Op::put("mode", "other")])
        .or_else([Op::get("mode")])
        .await
        .unwrap();
    assert!(!resp.succeeded());
    let get = resp.responses()[0].as_get().expect("get response");
    assert_eq!(get.kvs()[0].value(), b"active");
}

async fn txn_compare_targets_and_operators(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let created = kv.put("k", "b").await.unwrap().header().revision();
    let modified = kv.put("k", "b").await.unwrap().header().revision();
    let holds = |cmp: Compare| {
        let kv = kv.clone();
        async move { kv.txn().when([cmp]).await.unwrap().succeeded() }
    };
    assert!(holds(Compare::value("k").eq("b")).await);
    assert!(holds(Compare::value("k").ne("a")).await);
    assert!(holds(Compare::value("k").gt("a")).await);
    assert!(holds(Compare::value("k").lt("c")).await);
    assert!(!holds(Compare::value("k").lt("a")).await);
    assert!(holds(Compare::version("k").eq(2)).await);
    assert!(holds(Compare::version("k").gt(1)).await);
    assert!(!holds(Compare::version("k").lt(2)).await);
    assert!(holds(Compare::create_revision("k").eq(created)).await);
    assert!(holds(Compare::create_revision("k").ne(modified)).await);
    assert!(holds(Compare::mod_revision("k").eq(modified)).await);
    assert!(holds(Compare::mod_revision("k").gt(created)).await);
    assert!(holds(Compare::lease("k").eq(0)).await);
    assert!(!holds(Compare::lease("k").gt(0)).await);
    assert!(holds(Compare::key_exists("k")).await);
    assert!(holds(Compare::key_missing("nope")).await);
    assert!(!holds(Compare::key_missing("k")).await);
    // Every compare must hold.
    let r = kv
        .txn()
        .when([Compare::value("k").eq("b"), Compare::version("k").eq(99)])
        .await
        .unwrap();
    assert!(!r.succeeded());
}

async fn txn_compare_over_a_range(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    kv.put("foo/a", "1").await.unwrap();
    let rev = kv.put("foo/b", "1").await.unwrap().header().revision();
    // Not every key under foo/ was created at `rev`, so the prefix compare fails.
    let r = kv
        .txn()
        .when([Compare::create_revision("foo/").eq(rev).with_prefix()])
        .await
        .unwrap();
    assert!(!r.succeeded());
    let r = kv
        .txn()
        .when([Compare::create_revision("foo/").lt(rev + 1).with_prefix()])
        .await
        .unwrap();
    assert!(r.succeeded());
    let r = kv
        .txn()
        .when([Compare::value("foo/a").eq("1").with_range("foo/c")])
        .await
        .unwrap();
    assert!(r.succeeded());
    let r = kv
        .txn()
        .when([Compare::version("bar/").eq(0).with_prefix()])
        .await
        .unwrap();
    assert!(r.succeeded(), "an empty range has no key that differs");
}

async fn txn_nested(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let r = kv
        .txn()
        .and_then([
            Op::from(
                Op::txn()
                    .when([Compare::key_missing("inner")])
                    .and_then([Op::put("inner", "1")]),
            ),
            Op::from(Op::put("outer", "2")),
        ])
        .await
        .unwrap();
    assert!(r.succeeded());
    assert_eq!(r.responses().len(), 2);
    match &r.responses()[0] {
        OpResponse::Txn(inner) => {
            assert!(inner.succeeded());
            assert!(inner.responses()[0].as_put().is_some());
        }
        other => panic!("expected a nested txn response, got {other:?}"),
    }
    let all = kv.get(..).await.unwrap();
    assert_eq!(all.count(), 2);
    // Delete and get in one transaction.
    let r = kv
        .txn()
        .and_then([
            Op::from(Op::delete("inner").prev_kv()),
            Op::from(Op::get(..)),
        ])
        .await
        .unwrap();
    assert_eq!(r.responses()[0].as_delete().unwrap().deleted(), 1);
    assert_eq!(r.responses()[1].as_get().unwrap().count(), 1);
}

async fn txn_errors(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let err = kv
        .txn()
        .and_then([Op::put("dup", "1"), Op::put("dup", "2")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::DuplicateKey), "{err:?}");
    let many: Vec<_> = (0..129).map(|i| Op::put(format!("k{i}"), "v")).collect();
    let err = kv.txn().and_then(many).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::TooManyOps), "{err:?}");
    let err = kv.txn().and_then([Op::put("", "v")]).await.unwrap_err();
    assert!(err.is_invalid_request());
    let err = kv
        .txn()
        .when([Compare::value("").eq("x")])
        .await
        .unwrap_err();
    assert!(err.is_invalid_request());
    assert_eq!(kv.get(..).await.unwrap().count(), 0, "nothing was applied");
}

per_topology!(
    txn_success_and_failure_branches,
    txn_compare_targets_and_operators,
    txn_compare_over_a_range,
    txn_nested,
    txn_errors,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_to_a_stopped_member_fails_and_is_not_applied_later() {
    let cl = cluster(1).await;
    let c = client_with_timeout(&cl, Duration::from_secs(2)).await;
    cl.stop(0).await.unwrap();
    let err = c
        .kv()
        .txn()
        .and_then([Op::put("k", "v")])
        .await
        .unwrap_err();
    assert!(err.is_unavailable() || err.is_timeout(), "{err:?}");
    cl.restart(0).await.unwrap();
    let r = c
        .kv()
        .get("k")
        .timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(r.kvs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_txn_is_retried_across_a_restart() {
    let cl = cluster(1).await;
    let c = client_with_timeout(&cl, Duration::from_secs(20)).await;
    c.kv().put("k", "v").await.unwrap();
    cl.stop(0).await.unwrap();
    let reader = {
        let c = c.clone();
        tokio::spawn(async move { c.kv().txn().and_then([Op::get("k")]).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished());
    cl.restart(0).await.unwrap();
    let r = reader.await.unwrap().unwrap();
    assert_eq!(r.responses()[0].as_get().unwrap().kvs()[0].value(), b"v");
}
