//! The Lease API against real etcd: grant, revoke, time-to-live, list, keys attached to
//! leases, keep-alive once, the shared keep-alive stream (cadence, deadlines, failover,
//! close), and self-healing registrations.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, cluster, eventually};
use etcdv3::{
    Client, Code, Compare, ErrorKind, Kv, LeaseKeepAlive, MAX_LEASE_TTL, Op, Registration,
    RegistrationEvent,
};
use futures_util::{FutureExt, StreamExt};

/// Waits until `lease` is gone on the server (time-to-live says LeaseNotFound).
async fn wait_until_gone(c: &Client, lease: i64, limit: Duration) {
    eventually(limit, "the lease expires", || async move {
        match c.lease().time_to_live(lease).await {
            Ok(_) => None,
            Err(e) => {
                assert!(e.is_lease_not_found(), "{e:?}");
                Some(())
            }
        }
    })
    .await;
}

async fn grant_revoke_time_to_live_and_list(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let lease = c.lease();
    let granted = lease.grant(10).await.unwrap();
    assert!(granted.id() > 0);
    assert_eq!(granted.ttl(), 10);
    assert!(granted.error().is_empty());
    assert!(granted.header().revision() > 0);

    let ttl = lease.time_to_live(granted.id()).await.unwrap();
    assert_eq!(ttl.id(), granted.id());
    assert_eq!(ttl.granted_ttl(), 10);
    assert!((1..=10).contains(&ttl.ttl()), "{ttl:?}");
    assert!(ttl.keys().is_empty());

    let other = lease.grant(20).await.unwrap();
    let listed: Vec<i64> = lease.leases().await.unwrap().ids().collect();
    assert!(
        listed.contains(&granted.id()) && listed.contains(&other.id()),
        "{listed:?}"
    );

    lease.revoke(granted.id()).await.unwrap();
    let listed: Vec<i64> = lease.leases().await.unwrap().ids().collect();
    assert!(!listed.contains(&granted.id()) && listed.contains(&other.id()));

    // One rule for a missing lease: every call says LeaseNotFound.
    let gone = granted.id();
    let err = lease.time_to_live(gone).with_keys().await.unwrap_err();
    assert_eq!(err.code(), Some(Code::LeaseNotFound), "{err:?}");
    assert!(err.is_lease_not_found());
    let err = lease.revoke(gone).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
    let err = lease.keep_alive_once(gone).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Server);
    let err = c.kv().put("k", "v").lease(gone).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
    let mut kept = lease.keep_alive(gone);
    assert_eq!(kept.id(), gone);
    let err = tokio::time::timeout(Duration::from_secs(10), kept.message())
        .await
        .expect("etcd answers the keep-alive")
        .unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
    assert!(kept.message().await.unwrap().is_none(), "then it ends");
    // A lease that was never granted (ID 0 is "no lease").
    let err = lease.keep_alive_once(0).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
}

async fn a_chosen_id_is_used_once(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let lease = c.lease();
    let chosen = 0x7e57_0001;
    let granted = lease.grant(30).id(chosen).await.unwrap();
    assert_eq!(granted.id(), chosen);
    assert_eq!(lease.time_to_live(chosen).await.unwrap().granted_ttl(), 30);
    let err = lease.grant(30).id(chosen).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::LeaseExist), "{err:?}");
    assert!(!err.may_have_been_applied());

    let err = lease.grant(MAX_LEASE_TTL + 1).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::LeaseTtlTooLarge), "{err:?}");
    let longest = lease.grant(MAX_LEASE_TTL).await.unwrap();
    assert_eq!(longest.ttl(), MAX_LEASE_TTL);
    lease.revoke(longest.id()).await.unwrap();
}

async fn keys_live_and_die_with_their_lease(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let kv = c.kv();
    let id = c.lease().grant(60).await.unwrap().id();
    kv.put("svc/b", "2").lease(id).await.unwrap();
    kv.put("svc/a", "1").lease(id).await.unwrap();
    kv.put("plain", "x").await.unwrap();
    let got = kv.get("svc/a").await.unwrap();
    assert_eq!(got.kvs()[0].lease(), id);

    let ttl = c.lease().time_to_live(id).with_keys().await.unwrap();
    assert_eq!(ttl.keys(), [b"svc/a".to_vec(), b"svc/b".to_vec()]);
    let ttl = c.lease().time_to_live(id).await.unwrap();
    assert!(ttl.keys().is_empty(), "keys only when asked for");

    // ignore_lease updates the value and keeps the lease.
    kv.put("svc/a", "1b").ignore_lease().await.unwrap();
    let got = kv.get("svc/a").await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"1b");
    assert_eq!(got.kvs()[0].lease(), id);

    // The lease compares in a transaction.
    let txn = kv
        .txn()
        .when([Compare::lease("svc/a").eq(id)])
        .and_then([Op::put("seen", "yes")])
        .await
        .unwrap();
    assert!(txn.succeeded());
    let txn = kv
        .txn()
        .when([Compare::lease("svc/a").eq(id + 1)])
        .and_then([Op::put("seen", "no")])
        .await
        .unwrap();
    assert!(!txn.succeeded());

    c.lease().revoke(id).await.unwrap();
    assert_eq!(kv.get("svc/").prefix().await.unwrap().count(), 0);
    assert_eq!(kv.get("plain").await.unwrap().count(), 1);
}

async fn an_expiring_lease_deletes_its_keys(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    // etcd raises a TTL below its minimum (1.5 election timeouts): 2 s covers both topologies.
    let c = &c;
    let granted = c.lease().grant(2).await.unwrap();
    assert!(granted.ttl() >= 2);
    c.kv().put("short", "v").lease(granted.id()).await.unwrap();
    let started = Instant::now();
    eventually(
        Duration::from_secs(20),
        "the key goes with its lease",
        || async move { (c.kv().get("short").await.unwrap().count() == 0).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the TTL ran out: {:?}",
        started.elapsed()
    );
    let err = c.lease().time_to_live(granted.id()).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
}

async fn keep_alive_once_renews(members: usize) {
    let cl = cluster(members).await;
    let c = client(&cl).await;
    let c = &c;
    let id = c.lease().grant(10).await.unwrap().id();
    eventually(
        Duration::from_secs(20),
        "the TTL runs down",
        || async move { (c.lease().time_to_live(id).await.unwrap().ttl() <= 7).then_some(()) },
    )
    .await;
    let renewed = c.lease().keep_alive_once(id).await.unwrap();
    assert_eq!(renewed.id(), id);
    assert_eq!(renewed.ttl(), 10);
    let ttl = c.lease().time_to_live(id).await.unwrap().ttl();
    assert!(ttl >= 8, "back near the granted TTL: {ttl}");
}

per_topology!(
    grant_revoke_time_to_live_and_list,
    a_chosen_id_is_used_once,
    keys_live_and_die_with_their_lease,
    an_expiring_lease_deletes_its_keys,
    keep_alive_once_renews,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_sending() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    // A frozen member: anything sent would wait for the timeout.
    cl.pause(0).unwrap();
    let started = Instant::now();
    for ttl in [0, -5] {
        let err = c
            .lease()
            .grant(ttl)
            .timeout(Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err:?}");
        assert!(!err.may_have_been_applied());
    }
    for id in [0, -1] {
        let err = c
            .lease()
            .grant(10)
            .id(id)
            .timeout(Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{err:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "nothing was sent: {:?}",
        started.elapsed()
    );
    cl.resume(0).unwrap();
}

/// What a reader saw on one keep-alive handle.
#[derive(Default)]
struct Seen {
    answers: Vec<Instant>,
    end: Option<(etcdv3::Error, Instant)>,
}

type Log = Arc<Mutex<Seen>>;

/// Reads `ka` until it ends, recording when each answer came and how it ended.
fn record(mut ka: LeaseKeepAlive) -> Log {
    let log = Log::default();
    let out = log.clone();
    tokio::spawn(async move {
        while let Some(answer) = ka.next().await {
            let mut seen = out.lock().unwrap();
            match answer {
                Ok(r) => {
                    assert_eq!(r.id(), ka.id());
                    assert!(r.ttl() > 0);
                    seen.answers.push(Instant::now());
                }
                Err(e) => seen.end = Some((e, Instant::now())),
            }
        }
    });
    log
}

fn last_answer(log: &Log) -> Option<Instant> {
    log.lock().unwrap().answers.last().copied()
}

fn assert_alive(log: &Log, what: &str) {
    if let Some((e, _)) = &log.lock().unwrap().end {
        panic!("{what}: keep-alive ended: {e:?}");
    }
}

/// Waits until every log has an answer after `since`, none having ended.
async fn all_answered_after(logs: &[Log], since: Instant, limit: Duration) {
    eventually(limit, "every lease renewed", || async move {
        for log in logs {
            assert_alive(log, "while waiting for renewals");
        }
        logs.iter()
            .all(|l| last_answer(l).is_some_and(|t| t > since))
            .then_some(())
    })
    .await;
}

async fn grant_kept(c: &Client, n: usize, ttl: i64, prefix: &str) -> (Vec<i64>, Vec<Log>) {
    let mut ids = Vec::new();
    let mut logs = Vec::new();
    for i in 0..n {
        let id = c.lease().grant(ttl).await.unwrap().id();
        c.kv()
            .put(format!("{prefix}/{i}"), "up")
            .lease(id)
            .await
            .unwrap();
        ids.push(id);
        logs.push(record(c.lease().keep_alive(id)));
    }
    (ids, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lease_ends_only_its_own_keep_alive() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let t0 = Instant::now();
    let (ids, logs) = grant_kept(&c, 10, 4, "k").await;
    all_answered_after(&logs, t0, Duration::from_secs(10)).await;

    let other = client(&cl).await;
    other.lease().revoke(ids[0]).await.unwrap();
    let revoked = Instant::now();
    let first = &logs[0];
    let err = eventually(
        Duration::from_secs(10),
        "the revoked lease's end",
        || async move {
            first
                .lock()
                .unwrap()
                .end
                .as_ref()
                .map(|(e, _)| (e.code(), e.is_lease_not_found(), e.kind()))
        },
    )
    .await;
    assert_eq!(err, (Some(Code::LeaseNotFound), true, ErrorKind::Server));

    // The others go on: renewed after the revoke, past their TTL, still alive on the server.
    all_answered_after(
        &logs[1..],
        revoked + Duration::from_secs(4),
        Duration::from_secs(15),
    )
    .await;
    for &id in &ids[1..] {
        assert!(c.lease().time_to_live(id).await.unwrap().ttl() > 0);
    }
    assert_eq!(c.kv().get("k/").prefix().await.unwrap().count(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_survives_losing_the_member_that_carries_it() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let ttl = 5;
    let t0 = Instant::now();
    let (ids, logs) = grant_kept(&c, 100, ttl, "reg").await;
    all_answered_after(&logs, t0, Duration::from_secs(10)).await;

    // SIGKILL the leader; then, with it back, whichever member carries the stream.
    for round in 0..2 {
        let victim = match round {
            0 => cl.leader().await.unwrap(),
            _ => common::keep_alive_carrier(&cl).await,
        };
        cl.kill(victim).await.unwrap();
        let killed = Instant::now();
        // Renewed by answers that came after the lease would have run out without them.
        all_answered_after(
            &logs,
            killed + Duration::from_secs(ttl as u64),
            Duration::from_secs(30),
        )
        .await;
        for &id in &ids {
            let left = c.lease().time_to_live(id).await.unwrap();
            assert!(left.ttl() > 0, "round {round}: {left:?}");
        }
        assert_eq!(c.kv().get("reg/").prefix().await.unwrap().count(), 100);
        cl.restart(victim).await.unwrap();
        cl.wait_healthy(Duration::from_secs(30)).await.unwrap();
    }
    for log in &logs {
        assert_alive(log, "after both failovers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_keep_alive_does_not_speed_up_renewals() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let renewed = "etcd_debugging_lease_renewed_total";
    let before = cl.metric(0, renewed).await.unwrap().unwrap_or(0.0);
    let id = c.lease().grant(30).await.unwrap().id();
    let mut unread = c.lease().keep_alive(id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // One renewal at once, the next due only 10 s later: the remaining TTL is not back at 29
    // or 30, and the server saw one renewal.
    let left = c.lease().time_to_live(id).await.unwrap().ttl();
    assert!((20..=28).contains(&left), "remaining TTL {left}");
    let count = cl.metric(0, renewed).await.unwrap().unwrap_or(0.0) - before;
    assert!((1.0..=2.0).contains(&count), "{count} renewals in 3 s");
    // The answer waited for the reader; there is only one.
    let first = unread.message().now_or_never().expect("an answer waits");
    assert_eq!(first.unwrap().unwrap().ttl(), 30);
    assert!(unread.message().now_or_never().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_renewing_only_that_lease() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let a = c.lease().grant(2).await.unwrap().id();
    let b = c.lease().grant(2).await.unwrap().id();
    let first_a = c.lease().keep_alive(a);
    let second_a = c.lease().keep_alive(a);
    let kept_b = record(c.lease().keep_alive(b));
    drop(first_a);
    // Well past the TTL: `a` lives on through its other handle (which nobody reads).
    let past_ttl = Instant::now() + Duration::from_secs(3);
    all_answered_after(
        std::slice::from_ref(&kept_b),
        past_ttl,
        Duration::from_secs(15),
    )
    .await;
    c.lease().time_to_live(a).await.unwrap();

    drop(second_a);
    wait_until_gone(&c, a, Duration::from_secs(15)).await;
    // `b` is still renewed.
    let later = Instant::now() + Duration::from_secs(2);
    all_answered_after(&[kept_b], later, Duration::from_secs(10)).await;
    c.lease().time_to_live(b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_keep_alive_with_closed() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let t0 = Instant::now();
    let (_, logs) = grant_kept(&c, 5, 10, "c").await;
    all_answered_after(&logs, t0, Duration::from_secs(10)).await;
    let closing = Instant::now();
    c.close().await;
    let all = &logs;
    eventually(
        Duration::from_secs(5),
        "every keep-alive ends",
        || async move {
            all.iter()
                .all(|l| l.lock().unwrap().end.is_some())
                .then_some(())
        },
    )
    .await;
    for log in &logs {
        let seen = log.lock().unwrap();
        let (err, at) = seen.end.as_ref().unwrap();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
        assert!(
            at.duration_since(closing) < Duration::from_secs(1),
            "{:?}",
            at.duration_since(closing)
        );
    }
    // Every other lease call fails at once too.
    let started = Instant::now();
    let err = c.lease().grant(5).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    let err = c.lease().revoke(1).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    let err = c.lease().keep_alive_once(1).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
    // Later keep-alives end at once the same way.
    let mut late = c.lease().keep_alive(1);
    let err = late.message().now_or_never().expect("at once").unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(late.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_and_the_client_leaves_nothing_running() {
    let cl = cluster(1).await;
    let observer = client(&cl).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let c = client(&cl).await;
    let id = c.lease().grant(2).await.unwrap().id();
    let mut kept = c.lease().keep_alive(id);
    kept.message().await.unwrap().expect("renewed");
    assert!(
        metrics.num_alive_tasks() > tasks_before,
        "the keep-alive task runs"
    );
    drop(kept);
    drop(c);
    let m = &metrics;
    eventually(Duration::from_secs(2), "no task left", || async move {
        (m.num_alive_tasks() <= tasks_before).then_some(())
    })
    .await;
    wait_until_gone(&observer, id, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_without_answers_ends_with_lease_expired() {
    let cl = cluster(1).await;
    let c = Client::builder()
        .endpoints(cl.endpoints())
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let id = c.lease().grant(30).await.unwrap().id();

    // No first answer: the deadline is the connect timeout + 1 s.
    cl.pause(0).unwrap();
    let started = Instant::now();
    let mut first = c.lease().keep_alive(id);
    let err = tokio::time::timeout(Duration::from_secs(15), first.message())
        .await
        .expect("the first-answer deadline")
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::LeaseExpired, "{err:?}");
    assert!(err.is_lease_expired() && !err.is_lease_not_found());
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    cl.resume(0).unwrap();

    // Answered once, then silence: the deadline is the TTL after the last answer.
    let id = c.lease().grant(3).await.unwrap().id();
    let mut kept = c.lease().keep_alive(id);
    tokio::time::timeout(Duration::from_secs(15), kept.message())
        .await
        .expect("answered")
        .unwrap()
        .expect("renewed");
    let answered = Instant::now();
    cl.pause(0).unwrap();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(15), kept.message())
            .await
            .expect("the TTL deadline")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("ended without an error"),
            Err(e) => break e,
        }
    };
    let took = answered.elapsed();
    assert!(err.is_lease_expired(), "{err:?}");
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    cl.resume(0).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_renews_across_a_short_quorum_loss() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let ttl = 15;
    let t0 = Instant::now();
    let (ids, logs) = grant_kept(&c, 3, ttl, "q").await;
    all_answered_after(&logs, t0, Duration::from_secs(10)).await;

    // Two of three members down: no quorum, so no leader once the last one steps down.
    let leader = cl.leader().await.unwrap();
    let down = [(leader + 1) % 3, (leader + 2) % 3];
    for &i in &down {
        cl.kill(i).await.unwrap();
    }
    // The length of the outage (restarting takes a few seconds more).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for &i in &down {
        cl.restart(i).await.unwrap();
    }
    let back = Instant::now();
    all_answered_after(&logs, back, Duration::from_secs(20)).await;
    for &id in &ids {
        assert!(c.lease().time_to_live(id).await.unwrap().ttl() > 0);
    }
    assert_eq!(c.kv().get("q/").prefix().await.unwrap().count(), 3);
    for log in &logs {
        assert_alive(log, "after the quorum came back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_require_leader_keep_alives_end_when_the_leader_is_lost() {
    let cl = cluster(3).await;
    let c = Client::connect([cl.endpoint(0)]).await.unwrap();
    let strict_id = c.lease().grant(60).await.unwrap().id();
    let lax_id = c.lease().grant(60).await.unwrap().id();
    let t0 = Instant::now();
    let strict = record(c.with_require_leader().lease().keep_alive(strict_id));
    let lax = record(c.lease().keep_alive(lax_id));
    let both = [strict.clone(), lax.clone()];
    all_answered_after(&both, t0, Duration::from_secs(10)).await;

    // Member 0 alone: it has no leader, and etcd ends its require-leader streams.
    cl.kill(1).await.unwrap();
    cl.kill(2).await.unwrap();
    let strict_log = &strict;
    let err = eventually(
        Duration::from_secs(30),
        "the require-leader handle ends",
        || async move {
            strict_log
                .lock()
                .unwrap()
                .end
                .as_ref()
                .map(|(e, _)| (e.code(), e.is_no_leader()))
        },
    )
    .await;
    assert_eq!(err, (Some(Code::NoLeader), true));
    // Give the other handle the time an end would take to reach its reader.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_alive(&lax, "a handle without require-leader waits for a leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_revoked_while_disconnected_ends_after_reconnecting() {
    let cl = cluster(1).await;
    let proxy = etcdv3_testkit::FaultProxy::start(&cl.endpoint(0))
        .await
        .unwrap();
    let c = Client::connect([proxy.endpoint()]).await.unwrap();
    let id = c.lease().grant(10).await.unwrap().id();
    let mut kept = c.lease().keep_alive(id);
    kept.message().await.unwrap().expect("renewed");

    // Cut the connection, revoke from elsewhere, then let the client back in.
    proxy.refuse();
    proxy.reset_connections();
    client(&cl).await.lease().revoke(id).await.unwrap();
    proxy.forward();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(15), kept.message())
            .await
            .expect("the keep-alive learns the lease is gone")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("ended without an error"),
            Err(e) => break e,
        }
    };
    assert!(err.is_lease_not_found(), "{err:?}");
    assert!(proxy.accepted() >= 2, "the client connected again");
}

/// The next event of `reg`, within `limit`.
async fn next_event(reg: &mut Registration, limit: Duration) -> Option<RegistrationEvent> {
    tokio::time::timeout(limit, reg.next_event())
        .await
        .unwrap_or_else(|_| panic!("no registration event within {limit:?}"))
}

/// The keys under `prefix`, with their values and leases.
async fn keys_under(c: &Client, prefix: &str) -> Vec<(String, String, i64)> {
    let got = c.kv().get(prefix).prefix().await.unwrap();
    got.kvs()
        .iter()
        .map(|kv| {
            let key = String::from_utf8(kv.key().to_vec()).unwrap();
            let value = String::from_utf8(kv.value().to_vec()).unwrap();
            (key, value, kv.lease())
        })
        .collect()
}

/// Checks for `window` that no key is under `prefix` and no lease exists (nothing restores a
/// registration that ended).
async fn stays_empty(c: &Client, prefix: &str, window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        let left = keys_under(c, prefix).await;
        assert!(left.is_empty(), "{left:?}");
        let leases: Vec<i64> = c.lease().leases().await.unwrap().ids().collect();
        assert!(leases.is_empty(), "no lease granted again: {leases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_comes_back_after_its_lease_is_revoked() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let mut reg = c
        .lease()
        .register(5, [("reg/a", "1"), ("reg/b", "2")])
        .await
        .unwrap();
    let first = reg.lease_id();
    let ttl = c.lease().time_to_live(first).with_keys().await.unwrap();
    assert_eq!(ttl.granted_ttl(), 5);
    assert_eq!(ttl.keys(), [b"reg/a".to_vec(), b"reg/b".to_vec()]);
    assert!(reg.next_event().now_or_never().is_none(), "no event yet");

    let other = client(&cl).await;
    other.lease().revoke(first).await.unwrap();
    let revoked = Instant::now();
    match next_event(&mut reg, Duration::from_secs(10)).await {
        Some(RegistrationEvent::Lost { lease, error }) => {
            assert_eq!(lease, first);
            assert!(error.is_lease_not_found(), "{error:?}");
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    let restored = match next_event(&mut reg, Duration::from_secs(10)).await {
        Some(RegistrationEvent::Restored { lease }) => lease,
        other => panic!("expected Restored, got {other:?}"),
    };
    assert!(
        revoked.elapsed() < Duration::from_secs(10),
        "{:?}",
        revoked.elapsed()
    );
    assert_ne!(restored, first);
    assert_eq!(reg.lease_id(), restored);

    // Both keys are back, attached to the new lease.
    let ttl = c.lease().time_to_live(restored).with_keys().await.unwrap();
    assert_eq!(ttl.granted_ttl(), 5);
    assert_eq!(ttl.keys(), [b"reg/a".to_vec(), b"reg/b".to_vec()]);
    assert_eq!(
        keys_under(&c, "reg/").await,
        [
            ("reg/a".to_string(), "1".to_string(), restored),
            ("reg/b".to_string(), "2".to_string(), restored),
        ]
    );

    // The new lease is kept alive: past its TTL it is still there, and nothing else happened.
    let past_ttl = Instant::now() + Duration::from_secs(6);
    let c2 = &c;
    eventually(
        Duration::from_secs(15),
        "the new lease outlives its TTL",
        || async move {
            let left = c2.lease().time_to_live(restored).await.unwrap().ttl();
            assert!(left > 0, "{left}");
            (Instant::now() > past_ttl).then_some(())
        },
    )
    .await;
    assert!(reg.next_event().now_or_never().is_none(), "no other event");
    assert_eq!(keys_under(&c, "reg/").await.len(), 2);

    reg.close().await.unwrap();
    let left = keys_under(&c, "reg/").await;
    assert!(left.is_empty(), "{left:?}");
    let err = c.lease().time_to_live(restored).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_or_dropping_a_registration_revokes_its_lease() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let reg = c.lease().register(30, [("reg/x", "1")]).await.unwrap();
    let id = reg.lease_id();
    assert_eq!(
        keys_under(&c, "reg/").await,
        [("reg/x".to_string(), "1".to_string(), id)]
    );

    // Once `close` returns, the lease and its key are gone, and they stay gone.
    reg.close().await.unwrap();
    let left = keys_under(&c, "reg/").await;
    assert!(left.is_empty(), "{left:?}");
    let err = c.lease().time_to_live(id).await.unwrap_err();
    assert!(err.is_lease_not_found(), "{err:?}");
    stays_empty(&c, "reg/", Duration::from_millis(1500)).await;

    // Dropping revokes too, in the background: gone long before the 30 s TTL.
    let reg = c.lease().register(30, [("reg/y", "2")]).await.unwrap();
    let id = reg.lease_id();
    assert_eq!(keys_under(&c, "reg/").await.len(), 1);
    drop(reg);
    wait_until_gone(&c, id, Duration::from_secs(5)).await;
    let left = keys_under(&c, "reg/").await;
    assert!(left.is_empty(), "{left:?}");
    stays_empty(&c, "reg/", Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_client_ends_its_registrations() {
    let cl = cluster(1).await;
    let observer = client(&cl).await;
    let c = client(&cl).await;
    let mut reg = c.lease().register(5, [("reg/c", "1")]).await.unwrap();
    let id = reg.lease_id();
    c.close().await;
    // The task ended: it owned the sending end of the events.
    let end = next_event(&mut reg, Duration::from_secs(2)).await;
    assert!(end.is_none(), "{end:?}");
    assert_eq!(reg.lease_id(), id);
    let err = reg.close().await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    // Not revoked, not restored: the lease expires after its TTL and the key goes with it.
    wait_until_gone(&observer, id, Duration::from_secs(15)).await;
    let left = keys_under(&observer, "reg/").await;
    assert!(left.is_empty(), "{left:?}");
    let leases: Vec<i64> = observer.lease().leases().await.unwrap().ids().collect();
    assert!(leases.is_empty(), "{leases:?}");
    // A registration on a closed client fails at once.
    let err = c.lease().register(5, [("reg/d", "1")]).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_bad_input_before_sending() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    // A frozen member: anything sent would wait for the timeout.
    cl.pause(0).unwrap();
    let started = Instant::now();
    let bad = [
        (0, vec![("reg/a", "1")]),
        (-5, vec![("reg/a", "1")]),
        (5, vec![]),
        (5, vec![("reg/a", "1"), ("", "2")]),
        (5, vec![("reg/a", "1"), ("reg/a", "2")]),
    ];
    for (ttl, keys) in bad {
        let err = c
            .lease()
            .register(ttl, keys.clone())
            .timeout(Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidRequest,
            "{ttl} {keys:?}: {err:?}"
        );
        assert!(!err.may_have_been_applied());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "nothing was sent: {:?}",
        started.elapsed()
    );
    cl.resume(0).unwrap();
    let leases: Vec<i64> = c.lease().leases().await.unwrap().ids().collect();
    assert!(leases.is_empty(), "no lease was granted: {leases:?}");
}

/// Go's TestV3LeaseFailureOverlap: grants and keep-alives keep being issued before, during and
/// after a quorum loss. During it they fail with typed, retryable errors within their
/// deadline (never hang, never another kind of error); after it they succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_keep_alives_through_a_quorum_loss() {
    let cl = cluster(3).await;
    let c = common::client_with_timeout(&cl, Duration::from_secs(2)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let (c, stop) = (c.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = async {
                        let id = c.lease().grant(5).await?.id();
                        c.lease().keep_alive_once(id).await
                    }
                    .await;
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "a call outlived its deadline: {:?}",
                        started.elapsed()
                    );
                    match result {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            assert!(
                                e.is_unavailable() || e.is_timeout() || e.is_no_leader(),
                                "only availability errors: {e:?}"
                            );
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader = cl.leader().await.unwrap();
    let down = [(leader + 1) % 3, (leader + 2) % 3];
    for &i in &down {
        cl.stop(i).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for &i in &down {
        cl.restart(i).await.unwrap();
    }
    cl.wait_healthy(Duration::from_secs(30)).await.unwrap();
    // Working again: a grant and a renewal succeed.
    eventually(Duration::from_secs(20), "grants work again", || async {
        let id = c.lease().grant(5).await.ok()?.id();
        c.lease().keep_alive_once(id).await.ok()
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    assert!(ok > 0 && failed > 0, "{ok} succeeded, {failed} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_restorations_are_reported_then_it_comes_back() {
    let cl = cluster(1).await;
    let proxy = etcdv3_testkit::FaultProxy::start(&cl.endpoint(0))
        .await
        .unwrap();
    let c = Client::builder()
        .endpoints([proxy.endpoint()])
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let mut reg = c.lease().register(2, [("cut/a", "1")]).await.unwrap();
    let first = reg.lease_id();
    // Cut the client off: the keep-alive gets no answer within the TTL, and restoring fails
    // while the cut lasts.
    proxy.refuse();
    proxy.reset_connections();
    match next_event(&mut reg, Duration::from_secs(15)).await {
        Some(RegistrationEvent::Lost { lease, error }) => {
            assert_eq!(lease, first);
            assert!(
                error.is_lease_expired() || error.is_unavailable(),
                "{error:?}"
            );
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    for want in 1..=2 {
        match next_event(&mut reg, Duration::from_secs(15)).await {
            Some(RegistrationEvent::RestoreFailed { attempt, error }) => {
                assert_eq!(attempt, want);
                assert!(error.is_connect() || error.is_timeout(), "{error:?}");
            }
            other => panic!("expected RestoreFailed, got {other:?}"),
        }
    }
    proxy.forward();
    let restored = loop {
        match next_event(&mut reg, Duration::from_secs(15)).await {
            Some(RegistrationEvent::RestoreFailed { .. }) => continue,
            Some(RegistrationEvent::Restored { lease }) => break lease,
            other => panic!("expected Restored, got {other:?}"),
        }
    };
    assert_ne!(restored, first);
    let direct = client(&cl).await;
    assert_eq!(
        keys_under(&direct, "cut/").await,
        [("cut/a".to_string(), "1".to_string(), restored)]
    );
    reg.close().await.unwrap();
}
