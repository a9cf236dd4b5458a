//! The Cluster API against real etcd: listing members, adding voters and learners, a learner
//! that joins, serves serializable reads only and is promoted then removed, updating peer
//! URLs, and the errors etcd and the client give (Go's `cluster_test.go`, plus
//! `TestKVForLearner` and `TestBalancerSupportLearner`).

mod common;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use common::{client, cluster, eventually};
use etcdv3::{Client, Code, Kv, Member, Result};
use etcdv3_testkit::EtcdCluster;

/// Runs a membership change until etcd stops refusing it as unsafe: for 5 s after it
/// connected to its peers (so just after the cluster started), a member answers
/// `Unhealthy` to changes that need its peers. Any other answer is returned.
async fn when_safe<T, F, Fut>(mut change: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match change().await {
            Err(e) if e.code() == Some(Code::Unhealthy) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

/// The member of `members` with ID `id`, or a panic that lists them.
fn find(members: &[Member], id: u64) -> &Member {
    members
        .iter()
        .find(|m| m.id() == id)
        .unwrap_or_else(|| panic!("no member {id:x} in {members:?}"))
}

fn learners(members: &[Member]) -> usize {
    members.iter().filter(|m| m.is_learner()).count()
}

/// A member ID no member has.
fn unknown_id(members: &[Member]) -> u64 {
    (1..)
        .map(|n: u64| 0x5eed_0000_0000_0000 + n)
        .find(|id| members.iter().all(|m| m.id() != *id))
        .expect("a free ID")
}

/// A client pinned to a follower of `cl`'s original members.
async fn follower(cl: &EtcdCluster, c: &Client) -> Client {
    let leader = cl.leader().await.expect("leader");
    c.for_endpoint(&cl.endpoint((leader + 1) % 3))
        .expect("pin a follower")
}

/// How many `method` calls member `i` finished, per its metrics, with `code` if given.
async fn handled(cl: &EtcdCluster, i: usize, method: &str, code: Option<&str>) -> f64 {
    let selector = match code {
        Some(code) => {
            format!(r#"grpc_server_handled_total{{grpc_method="{method}",grpc_code="{code}"}}"#)
        }
        None => format!(r#"grpc_server_handled_total{{grpc_method="{method}"}}"#),
    };
    cl.metric(i, &selector).await.unwrap().unwrap_or(0.0)
}

/// TestMemberList: every member, with the IDs, names and URLs it was started with, in the
/// linearizable and the serializable list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_list_names_every_member() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let list = c.cluster().member_list().await.unwrap();
    assert_eq!(list.members().len(), 3, "{list:?}");
    assert_ne!(list.header().cluster_id(), 0);
    assert!(list.header().raft_term() > 0);
    assert!(
        list.member(list.header().member_id()).is_some(),
        "the answering member is in the list"
    );
    for i in 0..3 {
        let id = cl.member_id(i).expect("id");
        let m = find(list.members(), id);
        assert_eq!(m.name(), cl.member_name(i));
        assert_eq!(m.peer_urls(), [cl.peer_url(i)]);
        assert_eq!(m.client_urls(), [cl.endpoint(i)]);
        assert!(!m.is_learner());
        assert!(m.is_started());
        assert_eq!(list.member(id), Some(m));
    }

    // Serializable: each member answers from its own view; on a settled cluster it is the same.
    for i in 0..3 {
        let pinned = c.for_endpoint(&cl.endpoint(i)).unwrap();
        let local = pinned.cluster().member_list().serializable().await.unwrap();
        assert_eq!(local.header().member_id(), cl.member_id(i).unwrap());
        let mut ids: Vec<u64> = local.members().iter().map(Member::id).collect();
        let mut want: Vec<u64> = list.members().iter().map(Member::id).collect();
        ids.sort_unstable();
        want.sort_unstable();
        assert_eq!(ids, want);
    }
}

/// The whole life of a learner, on three members: TestMemberAddForLearner,
/// TestMaxLearnerInCluster (etcd's default of one learner), TestMemberPromote (through a
/// follower, refused until the learner caught up), TestKVForLearner,
/// TestBalancerSupportLearner and TestMemberRemove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_joins_serves_serializable_reads_then_is_promoted_and_removed() {
    let mut cl = cluster(3).await;
    let c = client(&cl).await;
    let cluster_api = c.cluster();
    c.kv().put("joined/before", "1").await.unwrap();

    // Add it as a learner; etcd knows only its peer URL until it starts.
    let (i, peer_url) = cl.add_member().unwrap();
    let added = when_safe(|| cluster_api.member_add_as_learner([peer_url.as_str()]))
        .await
        .unwrap();
    let id = added.member().id();
    assert!(added.member().is_learner());
    assert_eq!(added.member().peer_urls(), [peer_url.as_str()]);
    assert!(added.member().name().is_empty() && added.member().client_urls().is_empty());
    assert!(!added.member().is_started());
    assert_eq!(added.members().len(), 4);
    assert_eq!(learners(added.members()), 1);

    // A learner that has not started is not ready to be promoted; the follower forwards the
    // request to the leader, which says so.
    let via_follower = follower(&cl, &c).await;
    let err = via_follower.cluster().member_promote(id).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::LearnerNotReady), "{err:?}");

    // etcd allows one learner unless --max-learners says more.
    let err = when_safe(|| cluster_api.member_add_as_learner(["http://127.0.0.1:1234"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::TooManyLearners), "{err:?}");

    // Start it with the --initial-cluster the response gives.
    cl.start_member(i, &added.initial_cluster(&cl.member_name(i)))
        .await
        .unwrap();
    assert_eq!(cl.member_id(i), Some(id));
    let joined = eventually(
        Duration::from_secs(10),
        "the learner publishes itself",
        || {
            let cluster_api = cluster_api.clone();
            async move {
                let list = cluster_api.member_list().await.unwrap();
                list.member(id).filter(|m| m.is_started()).cloned()
            }
        },
    )
    .await;
    assert_eq!(joined.name(), cl.member_name(i));
    assert_eq!(joined.client_urls(), [cl.endpoint(i)]);
    assert!(joined.is_learner());

    // TestKVForLearner: pinned to the learner, serializable reads work (once it caught up);
    // linearizable reads, writes and the member list are refused, and nothing was applied.
    let on_learner = c.for_endpoint(&cl.endpoint(i)).unwrap();
    eventually(Duration::from_secs(10), "the learner catches up", || {
        let kv = on_learner.kv();
        async move {
            let got = kv.get("joined/before").serializable().await.unwrap();
            (got.count() == 1).then_some(())
        }
    })
    .await;
    let err = on_learner.kv().get("joined/before").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotSupportedForLearner), "{err:?}");
    let err = on_learner
        .kv()
        .put("joined/learner", "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotSupportedForLearner), "{err:?}");
    assert!(!err.may_have_been_applied(), "{err:?}");
    assert_eq!(c.kv().get("joined/learner").await.unwrap().count(), 0);
    let err = on_learner
        .cluster()
        .member_list()
        .serializable()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotSupportedForLearner), "{err:?}");

    // TestBalancerSupportLearner: a client that also knows voters gets answers; the calls
    // the learner refused moved to a voter.
    let mut endpoints = vec![cl.endpoint(i)];
    endpoints.extend((0..3).map(|v| cl.endpoint(v)));
    let mixed = Client::builder()
        .endpoints(endpoints)
        .connect()
        .await
        .unwrap();
    let refused_before = handled(&cl, i, "Range", Some("FailedPrecondition")).await;
    for n in 0..20 {
        let got = mixed.kv().get("joined/before").await.unwrap();
        assert_eq!(got.count(), 1, "get {n}");
        assert_ne!(
            got.header().member_id(),
            id,
            "get {n} answered by the learner"
        );
    }
    mixed.kv().put("joined/mixed", "1").await.unwrap();
    let refused = handled(&cl, i, "Range", Some("FailedPrecondition")).await - refused_before;
    assert!(
        refused >= 1.0,
        "no get reached the learner first ({refused})"
    );

    // TestMemberPromote: once it caught up, the promotion goes through (through a follower).
    let promoted = eventually(Duration::from_secs(20), "the learner is ready", || {
        let via = via_follower.cluster();
        async move {
            match via.member_promote(id).await {
                Ok(r) => Some(r),
                Err(e) if e.code() == Some(Code::LearnerNotReady) => None,
                Err(e) => panic!("promote: {e:?}"),
            }
        }
    })
    .await;
    assert!(!find(promoted.members(), id).is_learner());
    assert_eq!(learners(promoted.members()), 0);
    // A voter now: it serves linearizable reads once it has applied its own promotion (the
    // leader answers as soon as the change is committed).
    let got = eventually(
        Duration::from_secs(10),
        "the member applies its promotion",
        || {
            let kv = on_learner.kv();
            async move {
                match kv.get("joined/mixed").await {
                    Ok(got) => Some(got),
                    Err(e) if e.code() == Some(Code::NotSupportedForLearner) => None,
                    Err(e) => panic!("linearizable get on the promoted member: {e:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(got.count(), 1);

    // TestMemberRemove: removed through a member that stays, it leaves the list and shuts
    // itself down.
    let stays = c.for_endpoint(&cl.endpoint(0)).unwrap();
    let left = when_safe(|| stays.cluster().member_remove(id))
        .await
        .unwrap();
    assert!(left.member(id).is_none());
    assert_eq!(left.members().len(), 3);
    let list = c.cluster().member_list().await.unwrap();
    assert_eq!(list.members().len(), 3);
    assert!(list.member(id).is_none());
    cl.wait_exit(i, Duration::from_secs(30)).await.unwrap();
    cl.wait_healthy(Duration::from_secs(10)).await.unwrap();
    c.kv().put("joined/after", "1").await.unwrap();
}

/// TestMemberAdd, TestMemberAddWithExistingURLs and TestMemberRemove of a member that never
/// started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_add_returns_the_member_and_refuses_taken_urls() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let api = c.cluster();

    let err = when_safe(|| api.member_add([cl.peer_url(1)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::PeerUrlExist), "{err:?}");
    assert!(!err.may_have_been_applied());

    let urls = ["http://127.0.0.1:1234"];
    let added = when_safe(|| api.member_add(urls)).await.unwrap();
    let id = added.member().id();
    assert_eq!(added.member().peer_urls(), urls);
    assert!(!added.member().is_learner());
    assert_eq!(added.members().len(), 4);
    assert_eq!(learners(added.members()), 0);
    assert_eq!(find(added.members(), id).peer_urls(), urls);
    let list = api.member_list().await.unwrap();
    assert_eq!(find(list.members(), id).peer_urls(), urls);

    // A voter that never started may be removed: it is not part of the active quorum.
    let left = when_safe(|| api.member_remove(id)).await.unwrap();
    assert_eq!(left.members().len(), 3);
    assert!(left.member(id).is_none());
    c.kv().put("still/writable", "1").await.unwrap();
}

/// TestMemberUpdate and TestMemberUpdateLearner: new peer URLs show in the list, a learner
/// stays a learner, and etcd refuses unknown members and URLs another member has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_update_changes_peer_urls() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let api = c.cluster();

    // A running voter gets a second peer URL, then its own back; the cluster stays usable.
    let id = cl.member_id(2).unwrap();
    let two = [cl.peer_url(2), "http://127.0.0.1:1235".to_owned()];
    let updated = api.member_update(id, two.clone()).await.unwrap();
    assert_eq!(find(updated.members(), id).peer_urls(), two);
    let listed = api.member_list().await.unwrap();
    assert_eq!(find(listed.members(), id).peer_urls(), two);
    let back = api.member_update(id, [cl.peer_url(2)]).await.unwrap();
    assert_eq!(find(back.members(), id).peer_urls(), [cl.peer_url(2)]);
    c.kv().put("after/update", "1").await.unwrap();

    // A learner (not started) keeps being a learner.
    let added = when_safe(|| api.member_add_as_learner(["http://127.0.0.1:1234"]))
        .await
        .unwrap();
    let learner = added.member().id();
    let updated = api
        .member_update(learner, ["http://127.0.0.1:5678"])
        .await
        .unwrap();
    let m = find(updated.members(), learner);
    assert_eq!(m.peer_urls(), ["http://127.0.0.1:5678"]);
    assert!(m.is_learner());
    let listed = api.member_list().await.unwrap();
    let m = find(listed.members(), learner);
    assert_eq!(m.peer_urls(), ["http://127.0.0.1:5678"]);
    assert!(m.is_learner());

    // Another member's URL, an unknown member.
    let err = api
        .member_update(learner, [cl.peer_url(0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::PeerUrlExist), "{err:?}");
    let err = api
        .member_update(unknown_id(listed.members()), ["http://127.0.0.1:5679"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::MemberNotFound), "{err:?}");

    when_safe(|| api.member_remove(learner)).await.unwrap();
}

/// Bad input: TestMemberAddUpdateWrongURLs (refused on the client: etcd never sees the
/// request), TestMemberPromoteMemberNotLearner and TestMemberPromoteMemberNotExist (through a
/// follower), and removing an unknown member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let api = c.cluster();
    let members = api.member_list().await.unwrap().members().to_vec();

    let wrong: [&[&str]; 9] = [
        &["://127.0.0.1:2379"],
        &["mailto://127.0.0.1:2379"],
        &["http://127.0.0.1"],
        &["http://127.0.0.1:2379/path"],
        &["http://127.0.0.1:2379/"],
        &["127.0.0.1:1234"],
        &["localhost:1234"],
        &["http://127.0.0.1:1234", "http://127.0.0.1"],
        &[],
    ];
    for urls in wrong {
        let err = api.member_add(urls.iter().copied()).await.unwrap_err();
        assert!(err.is_invalid_request(), "add {urls:?}: {err:?}");
        let err = api
            .member_add_as_learner(urls.iter().copied())
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "add learner {urls:?}: {err:?}");
        let err = api
            .member_update(members[0].id(), urls.iter().copied())
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "update {urls:?}: {err:?}");
        assert!(!err.may_have_been_applied());
    }
    for i in 0..3 {
        for method in ["MemberAdd", "MemberUpdate"] {
            assert_eq!(
                handled(&cl, i, method, None).await,
                0.0,
                "m{i} saw {method}"
            );
        }
    }

    let via_follower = follower(&cl, &c).await;
    for m in &members {
        // etcd first checks that the member is in sync with the leader; a voter that lags a
        // moment (a busy machine) gets LearnerNotReady until it catches up.
        let err = common::eventually(Duration::from_secs(10), "MemberNotLearner", || async {
            let err = via_follower
                .cluster()
                .member_promote(m.id())
                .await
                .unwrap_err();
            (err.code() != Some(Code::LearnerNotReady)).then_some(err)
        })
        .await;
        assert_eq!(err.code(), Some(Code::MemberNotLearner), "{err:?}");
    }
    let unknown = unknown_id(&members);
    let err = via_follower
        .cluster()
        .member_promote(unknown)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::MemberNotFound), "{err:?}");

    let err = when_safe(|| api.member_remove(unknown)).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::MemberNotFound), "{err:?}");
    assert!(!err.may_have_been_applied());
    assert_eq!(api.member_list().await.unwrap().members().len(), 3);
}
