//! Software transactional memory against real etcd: isolation levels under contention,
//! retries, aborts, the attempt limit and the requests one transaction costs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use common::{client, cluster};
use etcdv3::{
    CallOptions, CompactOp, CompactResponse, Error, ErrorKind, Isolation, Kv, KvClient, Op,
    OpResponse, Stm, StmTxn,
};
use futures_util::future::BoxFuture;

const CHECKED: [Isolation; 3] = [
    Isolation::SerializableSnapshot,
    Isolation::Serializable,
    Isolation::RepeatableReads,
];

fn number(v: Option<Vec<u8>>) -> i64 {
    v.map_or(0, |v| {
        String::from_utf8(v)
            .expect("utf-8")
            .parse()
            .expect("a number")
    })
}

async fn value(kv: &KvClient, key: &str) -> i64 {
    number(
        kv.get(key)
            .await
            .unwrap()
            .into_kvs()
            .pop()
            .map(|kv| kv.into_key_value().1),
    )
}

/// Adds `by` to the number at `key` in `txn`.
async fn add(txn: &StmTxn<KvClient>, key: &str, by: i64) -> etcdv3::Result<i64> {
    let n = number(txn.get(key).await?) + by;
    txn.put(key, n.to_string())?;
    Ok(n)
}

/// 8 tasks × 50 increments over 4 counters: every increment lands, under each level that
/// checks its reads.
async fn increments_are_never_lost(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    for iso in CHECKED {
        let prefix = format!("{iso:?}/");
        let attempts = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (kv, prefix, attempts) = (kv.clone(), prefix.clone(), attempts.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let key = format!("{prefix}{}", (t + i) % 4);
                    Stm::new(&kv)
                        .isolation(iso)
                        .run(|txn| {
                            let (key, attempts) = (key.clone(), attempts.clone());
                            async move {
                                attempts.fetch_add(1, Ordering::Relaxed);
                                add(&txn, &key, 1).await
                            }
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut sum = 0;
        for k in 0..4 {
            sum += value(&kv, &format!("{prefix}{k}")).await;
        }
        assert_eq!(sum, 400, "{iso:?}");
        assert!(attempts.load(Ordering::Relaxed) >= 400, "{iso:?}");
    }
}

/// Concurrent transfers between 5 accounts keep the total, and no account goes negative.
async fn transfers_keep_the_total(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    for a in 0..5 {
        kv.put(format!("acct/{a}"), "100").await.unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let from = format!("acct/{}", (t + i) % 5);
                let to = format!("acct/{}", (t * 3 + i * 7 + 1) % 5);
                if from == to {
                    continue;
                }
                let amount = (t + i) as i64 % 30 + 1;
                Stm::new(&kv)
                    .prefetch([from.clone(), to.clone()])
                    .run(|txn| {
                        let (from, to) = (from.clone(), to.clone());
                        async move {
                            let have = number(txn.get(from.as_str()).await?);
                            if have < amount {
                                return Ok(false);
                            }
                            txn.put(from.as_str(), (have - amount).to_string())?;
                            add(&txn, &to, amount).await?;
                            Ok::<_, Error>(true)
                        }
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for a in 0..5 {
        let v = value(&kv, &format!("acct/{a}")).await;
        assert!(v >= 0, "account {a} is negative: {v}");
        total += v;
    }
    assert_eq!(total, 500);
}

/// Runs `add(key, 1)` once, with a write of `key` to 100 from outside in the first attempt
/// (after the read): the number of attempts and the final value.
async fn with_outside_write(kv: &KvClient, iso: Isolation, key: &str) -> (u32, i64) {
    let attempts = AtomicU32::new(0);
    Stm::new(kv)
        .isolation(iso)
        .run(|txn| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let v = add(&txn, key, 1).await?;
                if n == 1 {
                    kv.put(key, "100").await?;
                }
                Ok::<_, Error>(v)
            }
        })
        .await
        .unwrap();
    (attempts.load(Ordering::SeqCst), value(kv, key).await)
}

/// A change to a key read after it was read makes the checked levels run the closure again,
/// from the new value; ReadCommitted commits at once and loses the outside write (documented).
async fn conflicts_cause_retries(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    for iso in [Isolation::SerializableSnapshot, Isolation::Serializable] {
        let key = format!("{iso:?}");
        assert_eq!(
            with_outside_write(&kv, iso, &key).await,
            (2, 101),
            "{iso:?}"
        );
    }
    // RepeatableReads reads serializably: on three members the second attempt may read the
    // key from a member that has not applied the outside write yet, and conflict once more.
    let (attempts, v) = with_outside_write(&kv, Isolation::RepeatableReads, "rr").await;
    assert!(attempts >= 2, "{attempts}");
    assert_eq!(v, 101);
    assert_eq!(
        with_outside_write(&kv, Isolation::ReadCommitted, "rc").await,
        (1, 1),
        "ReadCommitted commits its stale write over the outside one"
    );
}

/// ReadCommitted commits under contention, each transaction in one attempt; increments may
/// be lost, so only bounds are checked.
async fn read_committed_commits(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let attempts = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (kv, attempts) = (kv.clone(), attempts.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                Stm::new(&kv)
                    .isolation(Isolation::ReadCommitted)
                    .run(|txn| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        async move { add(&txn, "rc", 1).await }
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 80);
    let v = value(&kv, "rc").await;
    assert!((1..=80).contains(&v), "{v}");
}

/// A key written but never read: SerializableSnapshot retries when it changed after the
/// snapshot, Serializable does not check it.
async fn snapshot_checks_unread_writes(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    for (iso, expected_attempts) in [
        (Isolation::SerializableSnapshot, 2),
        (Isolation::Serializable, 1),
    ] {
        let (read, written) = (format!("{iso:?}/r"), format!("{iso:?}/w"));
        let attempts = AtomicU32::new(0);
        Stm::new(&kv)
            .isolation(iso)
            .run(|txn| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                let (kv, read, written) = (&kv, read.as_str(), written.as_str());
                async move {
                    txn.get(read).await?;
                    if n == 1 {
                        kv.put(written, "outside").await?;
                    }
                    txn.put(written, "stm")
                }
            })
            .await
            .unwrap();
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            expected_attempts,
            "{iso:?}"
        );
        let got = kv.get(written.as_str()).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"stm");
    }
}

/// Reads after the first see the snapshot of the first read's revision, even when the key
/// changed in between; the commit then notices the change and runs the closure again.
async fn reads_share_a_snapshot(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    kv.put("b", "old").await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    Stm::new(&kv)
        .run(|txn| {
            let (kv, seen) = (&kv, &seen);
            async move {
                txn.get("a").await?;
                if seen.lock().unwrap().is_empty() {
                    kv.put("b", "new").await?;
                }
                let b = txn.get("b").await?.unwrap();
                seen.lock().unwrap().push(String::from_utf8(b).unwrap());
                // The same key again in the attempt: the same answer.
                assert_eq!(txn.rev("b").await?, txn.rev("b").await?);
                Ok::<_, Error>(())
            }
        })
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["old", "new"]);
}

#[derive(Debug, PartialEq)]
enum AppError {
    Insufficient(i64),
    Etcd(ErrorKind),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Etcd(e.kind())
    }
}

/// An error returned by the closure ends the run with that very error; nothing is written.
async fn closure_error_aborts(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    kv.put("balance", "5").await.unwrap();
    let attempts = AtomicU32::new(0);
    let err = Stm::new(&kv)
        .run(|txn| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                let have = number(txn.get("balance").await?);
                txn.put("balance", "0")?;
                txn.put("audit", "withdrawn")?;
                Err::<(), _>(AppError::Insufficient(have))
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err, AppError::Insufficient(5));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(value(&kv, "balance").await, 5);
    assert_eq!(kv.get("audit").await.unwrap().count(), 0);
}

/// With `max_attempts`, a transaction that conflicts every time gives up with the typed
/// error after exactly that many attempts, writing nothing.
async fn max_attempts_gives_up(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let attempts = AtomicU32::new(0);
    let err = Stm::new(&kv)
        .max_attempts(3)
        .run(|txn| {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            let kv = &kv;
            async move {
                txn.get("hot").await?;
                kv.put("hot", n.to_string()).await?;
                txn.put("result", "stm")
            }
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(!err.may_have_been_applied());
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(kv.get("result").await.unwrap().count(), 0);
}

/// A `Kv` over a `KvClient` that counts the requests sent.
#[derive(Debug, Clone)]
struct Counting {
    kv: KvClient,
    requests: Arc<AtomicUsize>,
}

impl Kv for Counting {
    fn execute(
        &self,
        op: Op,
        options: CallOptions,
    ) -> BoxFuture<'static, etcdv3::Result<OpResponse>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.kv.execute(op, options)
    }

    fn execute_compact(
        &self,
        op: CompactOp,
        options: CallOptions,
    ) -> BoxFuture<'static, etcdv3::Result<CompactResponse>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.kv.execute_compact(op, options)
    }
}

/// Prefetched keys cost one request, the commit one more, and a retry reads nothing again:
/// the failed commit brought the keys back. Works over any `Kv` wrapper.
async fn round_trips(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let counting = Counting {
        kv: kv.clone(),
        requests: Arc::new(AtomicUsize::new(0)),
    };
    let attempts = AtomicU32::new(0);
    let moved = Stm::new(&counting)
        .prefetch(["x", "y"])
        .run(|txn| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let kv = &kv;
            async move {
                let x = number(txn.get("x").await?);
                let y = number(txn.get("y").await?);
                if n == 1 {
                    kv.put("x", "10").await?;
                }
                txn.put("x", (x - 1).to_string())?;
                txn.put("y", (y + 1).to_string())?;
                Ok::<_, Error>((x, y))
            }
        })
        .await
        .unwrap();
    assert_eq!(moved, (10, 0));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // Prefetch, commit (conflict), commit.
    assert_eq!(counting.requests.load(Ordering::SeqCst), 3);
    assert_eq!((value(&kv, "x").await, value(&kv, "y").await), (9, 1));
}

per_topology!(
    increments_are_never_lost,
    transfers_keep_the_total,
    conflicts_cause_retries,
    read_committed_commits,
    snapshot_checks_unread_writes,
    reads_share_a_snapshot,
    closure_error_aborts,
    max_attempts_gives_up,
    round_trips,
);
