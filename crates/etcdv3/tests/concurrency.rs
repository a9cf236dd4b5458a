//! Sessions, mutexes and elections against real etcd, including interop both ways with etcd's
//! own Lock and Election services (which run Go's `concurrency` package inside the server).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{client, cluster, eventually};
use etcdv3::{Client, Election, ErrorKind, Kv, Mutex, Op, Session};
use std::future::IntoFuture;

/// Whether `key` exists.
async fn exists(c: &Client, key: &[u8]) -> bool {
    c.kv().get(key.to_vec()).await.unwrap().count() == 1
}

/// Waits until `key` is gone.
async fn gone(c: &Client, key: &[u8], what: &str) {
    eventually(Duration::from_secs(10), what, || async move {
        (!exists(c, key).await).then_some(())
    })
    .await;
}

/// `future` has not resolved within `d`.
async fn still_pending<F: std::future::Future + Unpin>(future: &mut F, d: Duration) {
    let done = tokio::time::timeout(d, future).await.is_ok();
    assert!(!done, "resolved while it should still wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tasks_increment_a_counter_under_the_mutex_exactly() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    c.kv().put("counter", "0").await.unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = c.clone();
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            let session = Session::new(&c).ttl(10).await.unwrap();
            let m = Mutex::new(&session, "counter-lock").unwrap();
            for _ in 0..20 {
                m.lock().await.unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                let now = c.kv().get("counter").await.unwrap();
                let n: u64 = now.kvs()[0].value_str().unwrap().parse().unwrap();
                tokio::task::yield_now().await;
                c.kv().put("counter", (n + 1).to_string()).await.unwrap();
                inside.store(false, Ordering::SeqCst);
                m.unlock().await.unwrap();
            }
            session.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = c.kv().get("counter").await.unwrap();
    assert_eq!(end.kvs()[0].value(), b"200");
    assert_eq!(
        c.kv().get("counter-lock/").prefix().await.unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_key_layout_ownership_and_is_owner() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let m = Mutex::new(&s, "layout").unwrap();
    assert_eq!(m.key(), format!("layout/{:x}", s.lease()).as_bytes());
    let guarded = || {
        c.kv()
            .txn()
            .when([m.is_owner()])
            .and_then([Op::put("guarded", "x")])
    };
    assert!(
        !guarded().await.unwrap().succeeded(),
        "not owner before lock"
    );
    m.lock().await.unwrap();
    let kv = c.kv().get(m.key().to_vec()).await.unwrap();
    let kv = &kv.kvs()[0];
    assert_eq!(kv.value(), b"");
    assert_eq!(kv.lease(), s.lease());
    assert_eq!(kv.create_revision(), m.revision());
    assert!(m.header().is_some());
    assert!(guarded().await.unwrap().succeeded());
    // Re-entrant per session, also through another Mutex value.
    let again = Mutex::new(&s, "layout").unwrap();
    again.lock().timeout(Duration::from_secs(2)).await.unwrap();
    assert_eq!(again.revision(), m.revision());
    m.unlock().await.unwrap();
    assert!(
        !guarded().await.unwrap().succeeded(),
        "not owner after unlock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_lock_waits_and_try_lock_is_locked_until_unlock() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s1 = Session::new(&c).await.unwrap();
    let s2 = Session::new(&c).await.unwrap();
    let m1 = Mutex::new(&s1, "ex").unwrap();
    let m2 = Mutex::new(&s2, "ex").unwrap();
    m1.lock().await.unwrap();

    let e = m2.try_lock().await.unwrap_err();
    assert!(e.is_locked(), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Locked);
    assert!(!exists(&c, m2.key()).await, "try_lock deletes its key");

    let mut waiting = m2.lock().into_future();
    still_pending(&mut waiting, Duration::from_millis(700)).await;
    m1.unlock().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter locks once released")
        .unwrap();
    m2.unlock().await.unwrap();
    m1.try_lock().await.unwrap();
    m1.unlock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_when_not_held_is_lock_released() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let m = Mutex::new(&s, "rel").unwrap();
    let e = m.unlock().await.unwrap_err();
    assert!(e.is_lock_released(), "{e:?}");
    m.lock().await.unwrap();
    m.unlock().await.unwrap();
    let e = m.unlock().await.unwrap_err();
    assert!(e.is_lock_released(), "{e:?}");
    assert!(!e.may_have_been_applied());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_session_is_revoked_gets_session_expired() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s1 = Session::new(&c).await.unwrap();
    // A short TTL: a revoked lease is noticed at its next renewal (a third of the TTL), as in Go.
    let s2 = Session::new(&c).ttl(3).await.unwrap();
    let m1 = Mutex::new(&s1, "exp").unwrap();
    let m2 = Mutex::new(&s2, "exp").unwrap();
    m1.lock().await.unwrap();
    let mut waiting = tokio::spawn(m2.lock().into_future());
    eventually(Duration::from_secs(5), "the waiter's key", || {
        let c = c.clone();
        let key = m2.key().to_vec();
        async move { exists(&c, &key).await.then_some(()) }
    })
    .await;
    c.lease().revoke(s2.lease()).await.unwrap();
    still_pending(&mut waiting, Duration::from_millis(300)).await;
    m1.unlock().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter ends")
        .unwrap()
        .unwrap_err();
    assert!(e.is_session_expired(), "{e:?}");
    tokio::time::timeout(Duration::from_secs(5), s2.done())
        .await
        .expect("the revoked session is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_holders_lease_ends_its_session_and_the_next_waiter_locks() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let other = client(&cl).await;
    // A short TTL: a revoked lease is noticed at its next renewal (a third of the TTL), as in Go.
    let s1 = Session::new(&c).ttl(3).await.unwrap();
    let s2 = Session::new(&c).await.unwrap();
    let m1 = Mutex::new(&s1, "rv").unwrap();
    let m2 = Mutex::new(&s2, "rv").unwrap();
    m1.lock().await.unwrap();
    let waiting = tokio::spawn(m2.lock().into_future());
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.lease().revoke(s1.lease()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), s1.done())
        .await
        .expect("done() resolves once the lease is revoked");
    assert!(s1.is_done());
    let owner = c
        .kv()
        .txn()
        .when([m1.is_owner()])
        .and_then([Op::put("x", "y")])
        .await
        .unwrap();
    assert!(
        !owner.succeeded(),
        "the revoked holder no longer owns the lock"
    );
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the next waiter locks")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ttl_lease_orphan_and_close() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).ttl(90).await.unwrap();
    let ttl = c.lease().time_to_live(s.lease()).await.unwrap();
    assert_eq!(ttl.granted_ttl(), 90);
    assert!((70..90).contains(&ttl.ttl()), "{ttl:?}");

    // An existing lease is reused, not replaced.
    let lease = c.lease().grant(30).await.unwrap().id();
    let reused = Session::new(&c).lease(lease).await.unwrap();
    assert_eq!(reused.lease(), lease);
    assert_eq!(
        c.lease().time_to_live(lease).await.unwrap().granted_ttl(),
        30
    );

    // Orphan: done at once, the lease is left to expire (not revoked).
    let t0 = Instant::now();
    reused.orphan().await;
    assert!(reused.is_done());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    drop(reused);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.lease().time_to_live(lease).await.unwrap();

    // Close: revoked.
    s.close().await.unwrap();
    assert!(s.is_done());
    let e = c.lease().time_to_live(s.lease()).await.unwrap_err();
    assert!(e.is_lease_not_found(), "{e:?}");

    // Dropping the last handle of a live session revokes its lease.
    let dropped = Session::new(&c).ttl(30).await.unwrap();
    let id = dropped.lease();
    drop(dropped);
    eventually(
        Duration::from_secs(5),
        "the dropped session's lease is revoked",
        || {
            let c = c.clone();
            async move { c.lease().time_to_live(id).await.is_err().then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_and_sends_nothing() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    assert!(Mutex::new(&s, "").unwrap_err().is_invalid_request());
    assert!(Election::new(&s, "").unwrap_err().is_invalid_request());
    assert!(
        Election::resume(&s, "e", "other/1", 5)
            .unwrap_err()
            .is_invalid_request()
    );
    assert!(
        Election::resume(&s, "e", "e/1", 0)
            .unwrap_err()
            .is_invalid_request()
    );
    // A closed client proves nothing was sent: validation comes first.
    let closed = client(&cl).await;
    closed.close().await;
    for b in [
        Session::new(&closed).ttl(0),
        Session::new(&closed).ttl(-5),
        Session::new(&closed).lease(0),
        Session::new(&closed).lease(-1),
    ] {
        let e = b.await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e:?}");
    }
    let e = Session::new(&closed).await.unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    let locks = closed.lock_service();
    let elections = closed.election_service();
    let errors = [
        locks.lock("", 1).await.unwrap_err(),
        locks.lock("l", 0).await.unwrap_err(),
        locks.unlock("").await.unwrap_err(),
        elections.campaign("", 1, "v").await.unwrap_err(),
        elections.campaign("e", -1, "v").await.unwrap_err(),
        elections.leader("").await.unwrap_err(),
        elections.observe("").await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncontended_lock_and_unlock_are_one_txn_and_one_delete() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let m = Mutex::new(&s, "cheap").unwrap();
    let count = |method: &'static str| {
        let cl = &cl;
        async move {
            cl.metric(
                0,
                &format!(r#"grpc_server_handled_total{{grpc_method="{method}"}}"#),
            )
            .await
            .unwrap()
            .unwrap_or(0.0)
        }
    };
    let (txn0, del0, range0) = (
        count("Txn").await,
        count("DeleteRange").await,
        count("Range").await,
    );
    m.lock().await.unwrap();
    m.unlock().await.unwrap();
    assert_eq!(count("Txn").await - txn0, 1.0);
    assert_eq!(count("DeleteRange").await - del0, 1.0);
    assert_eq!(count("Range").await - range0, 0.0);
}

/// Our mutex and etcd's Lock service (Go's Mutex in the server) exclude each other both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_and_the_lock_service_exclude_each_other() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let m = Mutex::new(&s, "shared").unwrap();
    let lease = c.lease().grant(30).await.unwrap().id();
    let _alive = c.lease().keep_alive(lease);
    let locks = c.lock_service();

    // We hold: the Lock RPC waits until we unlock. (The attempt that times out uses a lease of
    // its own: the server deletes its key when it gives up, which would race with a later
    // attempt of the same lease.)
    m.lock().await.unwrap();
    let impatient = c.lease().grant(30).await.unwrap().id();
    let e = locks
        .lock("shared", impatient)
        .timeout(Duration::from_millis(700))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let mut rpc = tokio::spawn(locks.lock("shared", lease).into_future());
    still_pending(&mut rpc, Duration::from_millis(700)).await;
    m.unlock().await.unwrap();
    let held = tokio::time::timeout(Duration::from_secs(5), rpc)
        .await
        .expect("the Lock RPC returns once we unlock")
        .unwrap()
        .unwrap();
    assert_eq!(held.key(), format!("shared/{lease:x}").as_bytes());

    // The Lock RPC holds: try_lock is locked, lock waits until the Unlock RPC.
    let e = m.try_lock().await.unwrap_err();
    assert!(e.is_locked(), "{e:?}");
    let mut ours = m.lock().into_future();
    still_pending(&mut ours, Duration::from_millis(700)).await;
    locks.unlock(held.key()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), ours)
        .await
        .expect("we lock once the Lock RPC's key is gone")
        .unwrap();
    m.unlock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_or_timed_out_lock_and_campaign_delete_their_keys() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s1 = Session::new(&c).await.unwrap();
    let s2 = Session::new(&c).await.unwrap();
    let s3 = Session::new(&c).await.unwrap();
    let m1 = Mutex::new(&s1, "drop").unwrap();
    let m2 = Mutex::new(&s2, "drop").unwrap();
    m1.lock().await.unwrap();

    // A dropped lock() future.
    let mut waiting = m2.lock().into_future();
    still_pending(&mut waiting, Duration::from_millis(500)).await;
    assert!(exists(&c, m2.key()).await);
    drop(waiting);
    gone(&c, m2.key(), "the dropped attempt's key is deleted").await;

    // A lock() that times out.
    let e = m2
        .lock()
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    gone(&c, m2.key(), "the timed-out attempt's key is deleted").await;

    // Nothing of the abandoned attempts blocks the next locker.
    m1.unlock().await.unwrap();
    Mutex::new(&s3, "drop").unwrap().try_lock().await.unwrap();

    // The same for a campaign.
    let e1 = Election::new(&s1, "drop-e").unwrap();
    let e2 = Election::new(&s2, "drop-e").unwrap();
    e1.campaign("one").await.unwrap();
    let key2 = format!("drop-e/{:x}", s2.lease()).into_bytes();
    let mut campaigning = e2.campaign("two").into_future();
    still_pending(&mut campaigning, Duration::from_millis(500)).await;
    assert!(exists(&c, &key2).await);
    drop(campaigning);
    gone(&c, &key2, "the dropped campaign's key is deleted").await;
    let e = e2
        .campaign("two")
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    gone(&c, &key2, "the timed-out campaign's key is deleted").await;
    assert!(e2.key().is_empty());
    e1.resign().await.unwrap();
    let e3 = Election::new(&s3, "drop-e").unwrap();
    tokio::time::timeout(Duration::from_secs(5), e3.campaign("three"))
        .await
        .expect("nothing left blocks the next candidate")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_campaign_proclaim_resign_leader() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s1 = Session::new(&c).await.unwrap();
    let s2 = Session::new(&c).await.unwrap();
    let e1 = Election::new(&s1, "el").unwrap();
    let e2 = Election::new(&s2, "el").unwrap();

    let err = e1.leader().await.unwrap_err();
    assert!(err.is_no_election_leader(), "{err:?}");
    let err = e1.proclaim("x").await.unwrap_err();
    assert!(err.is_not_election_leader(), "{err:?}");
    e1.resign().await.unwrap(); // not leader: Ok

    e1.campaign("one").await.unwrap();
    assert_eq!(e1.key(), format!("el/{:x}", s1.lease()).as_bytes());
    let leader = e2.leader().await.unwrap();
    assert_eq!(leader.kvs()[0].value(), b"one");
    assert_eq!(leader.kvs()[0].create_revision(), e1.rev());

    let mut second = e2.campaign("two").into_future();
    still_pending(&mut second, Duration::from_millis(700)).await;
    e1.proclaim("uno").await.unwrap();
    assert_eq!(e2.leader().await.unwrap().kvs()[0].value(), b"uno");
    e1.resign().await.unwrap();
    assert!(e1.key().is_empty());
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second candidate wins after the first resigns")
        .unwrap();
    assert_eq!(e1.leader().await.unwrap().kvs()[0].value(), b"two");

    // Campaigning again with the same session keeps the key and proclaims the new value.
    let rev = e2.rev();
    e2.campaign("dos").await.unwrap();
    assert_eq!(e2.rev(), rev);
    assert_eq!(e1.leader().await.unwrap().kvs()[0].value(), b"dos");

    // A leader whose key was deleted behind its back can no longer proclaim.
    c.kv().delete(e2.key()).await.unwrap();
    let err = e2.proclaim("tres").await.unwrap_err();
    assert!(err.is_not_election_leader(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_follows_leaders_and_proclamations() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s1 = Session::new(&c).await.unwrap();
    let s2 = Session::new(&c).await.unwrap();
    let e1 = Election::new(&s1, "obs").unwrap();
    let e2 = Election::new(&s2, "obs").unwrap();
    let mut leaders = e1.observe();
    // No leader yet: the first candidate that appears.
    let first = tokio::spawn({
        let e1 = e1.clone();
        async move { e1.campaign("a").await }
    });
    let l = next(&mut leaders).await;
    assert_eq!(l.kvs()[0].value(), b"a");
    first.await.unwrap().unwrap();
    e1.proclaim("b").await.unwrap();
    assert_eq!(next(&mut leaders).await.kvs()[0].value(), b"b");
    let second = tokio::spawn(e2.campaign("c").into_future());
    tokio::time::sleep(Duration::from_millis(200)).await;
    e1.resign().await.unwrap();
    assert_eq!(next(&mut leaders).await.kvs()[0].value(), b"c");
    second.await.unwrap().unwrap();
    // Unrelated keys are ignored.
    c.kv().put("obsolete", "x").await.unwrap();
    c.kv().put("other/1", "x").await.unwrap();
    e2.proclaim("d").await.unwrap();
    let l = next(&mut leaders).await;
    assert_eq!(l.kvs()[0].value(), b"d");
    assert_eq!(l.header().revision(), l.kvs()[0].mod_revision());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_election_proclaims_resigns_and_observes() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let e = Election::new(&s, "resume").unwrap();
    e.campaign("candidate1").await.unwrap();
    let (key, rev) = (e.key(), e.rev());

    // As after a restart: the same lease, the leader key and revision.
    let s2 = Session::new(&c).lease(s.lease()).await.unwrap();
    let resumed = Election::resume(&s2, "resume", key.clone(), rev).unwrap();
    let mut leaders = resumed.observe();
    let first = leaders.message().await.unwrap().unwrap();
    assert_eq!(first.kvs()[0].value(), b"candidate1");
    c.kv().put("resume-unrelated", "x").await.unwrap();
    resumed.proclaim("candidate1b").await.unwrap();
    let next = leaders.message().await.unwrap().unwrap();
    assert_eq!(next.kvs()[0].value(), b"candidate1b");
    resumed.resign().await.unwrap();
    assert!(!exists(&c, &key).await);

    let other = Session::new(&c).await.unwrap();
    Election::new(&other, "resume")
        .unwrap()
        .campaign("candidate2")
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), leaders.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.kvs()[0].value(), b"candidate2");
    assert!(next.kvs()[0].key().starts_with(b"resume/"));
}

/// Our election and etcd's Election service (Go's Election in the server) see each other's
/// leaders both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_and_the_election_service_see_each_other() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let ours = Election::new(&s, "mixed").unwrap();
    let lease = c.lease().grant(30).await.unwrap().id();
    let _alive = c.lease().keep_alive(lease);
    let rpc = c.election_service();

    let e = rpc.leader("mixed").await.unwrap_err();
    assert!(e.is_no_election_leader(), "{e:?}");

    // We lead: the service sees us; its campaign waits until we resign.
    ours.campaign("rust").await.unwrap();
    let seen = rpc.leader("mixed").await.unwrap();
    assert_eq!(seen.kv().unwrap().value(), b"rust");
    let mut observed = rpc.observe("mixed").await.unwrap();
    let o = observed.message().await.unwrap().unwrap();
    assert_eq!(o.kv().unwrap().value(), b"rust");
    let mut campaign = tokio::spawn(rpc.campaign("mixed", lease, "go").into_future());
    still_pending(&mut campaign, Duration::from_millis(700)).await;
    ours.proclaim("rust2").await.unwrap();
    let o = observed.message().await.unwrap().unwrap();
    assert_eq!(o.kv().unwrap().value(), b"rust2");
    ours.resign().await.unwrap();
    let won = tokio::time::timeout(Duration::from_secs(5), campaign)
        .await
        .expect("the service's campaign wins once we resign")
        .unwrap()
        .unwrap();
    let leader = won.leader().unwrap().clone();
    assert_eq!(leader.key(), format!("mixed/{lease:x}").as_bytes());
    assert_eq!(leader.lease(), lease);
    let o = observed.message().await.unwrap().unwrap();
    assert_eq!(o.kv().unwrap().value(), b"go");

    // The service leads: we see it; our campaign waits until it resigns.
    assert_eq!(ours.leader().await.unwrap().kvs()[0].value(), b"go");
    let mut ours_observe = ours.observe();
    assert_eq!(
        ours_observe.message().await.unwrap().unwrap().kvs()[0].value(),
        b"go"
    );
    rpc.proclaim(&leader, "go2").await.unwrap();
    assert_eq!(
        ours_observe.message().await.unwrap().unwrap().kvs()[0].value(),
        b"go2"
    );
    let mut mine = ours.campaign("rust3").into_future();
    still_pending(&mut mine, Duration::from_millis(700)).await;
    rpc.resign(&leader).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), mine)
        .await
        .expect("we win once the service's leader resigns")
        .unwrap();
    assert_eq!(
        rpc.leader("mixed").await.unwrap().kv().unwrap().value(),
        b"rust3"
    );
    let e = rpc.proclaim(&leader, "stale").await.unwrap_err();
    assert!(e.is_not_election_leader(), "{e:?}");
}

/// The next leader of `leaders`, within 5 s.
async fn next(leaders: &mut etcdv3::LeaderStream) -> etcdv3::GetResponse {
    tokio::time::timeout(Duration::from_secs(5), leaders.message())
        .await
        .expect("a leader in time")
        .unwrap()
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_locks_survive_killing_the_keep_alive_member() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let ttl = 5;
    let s1 = Session::new(&c).ttl(ttl).await.unwrap();
    let s2 = Session::new(&c).ttl(ttl).await.unwrap();
    let m1 = Mutex::new(&s1, "survive").unwrap();
    let m2 = Mutex::new(&s2, "survive").unwrap();
    m1.lock().await.unwrap();
    let mut waiting = m2.lock().into_future();
    still_pending(&mut waiting, Duration::from_millis(300)).await;

    let carrier = common::keep_alive_carrier(&cl).await;
    cl.kill(carrier).await.unwrap();
    // Well past the TTL: the leases must have been renewed through another member.
    let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::from_secs(3 * ttl as u64)));
    tokio::select! {
        () = &mut sleep => {}
        r = &mut waiting => panic!("the waiter locked while the holder lives: {r:?}"),
    }
    assert!(!s1.is_done() && !s2.is_done());
    let owner = c
        .kv()
        .txn()
        .when([m1.is_owner()])
        .and_then([Op::put("survived", "yes")])
        .await
        .unwrap();
    assert!(owner.succeeded(), "the holder still owns the lock");
    m1.unlock().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter locks after the unlock")
        .unwrap();
    assert!(waiting_is_owner(&c, &m2).await);
}

async fn waiting_is_owner(c: &Client, m: &Mutex) -> bool {
    c.kv()
        .txn()
        .when([m.is_owner()])
        .await
        .map(|r| r.succeeded())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_client_ends_sessions_and_fails_calls() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let s = Session::new(&c).await.unwrap();
    let m = Mutex::new(&s, "closed").unwrap();
    c.close().await;
    tokio::time::timeout(Duration::from_secs(5), s.done())
        .await
        .expect("a closed client ends its sessions");
    let e = tokio::time::timeout(Duration::from_secs(5), m.lock())
        .await
        .expect("fails at once")
        .unwrap_err();
    assert!(e.is_closed(), "{e:?}");
}
