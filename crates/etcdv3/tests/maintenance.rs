//! The Maintenance API against real etcd: alarms and the NOSPACE recovery, member status,
//! hashes, defragmentation, leader transfer, downgrades, snapshots (streamed and saved), and
//! the old-cluster check at connect.

mod common;

use std::future::IntoFuture;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, cluster, cluster_with, eventually};
use etcdv3::{AlarmType, Client, Code, DowngradeAction, ErrorKind, Kv, SnapshotProgress};
use etcdv3_testkit::EtcdCluster;
use sha2::{Digest, Sha256};

/// The `(major, minor)` of the etcd the cluster runs.
fn etcd_minor(cl: &EtcdCluster) -> (u64, u64) {
    let mut parts = cl.etcd_version().split('.');
    let major = parts.next().unwrap().parse().unwrap();
    let minor = parts.next().unwrap().parse().unwrap();
    (major, minor)
}

/// The storage version a 3.6+ member reports: its `major.minor.0`.
fn storage_version(cl: &EtcdCluster) -> Option<String> {
    let (major, minor) = etcd_minor(cl);
    ((major, minor) >= (3, 6)).then(|| format!("{major}.{minor}.0"))
}

async fn metric(cl: &EtcdCluster, member: usize, selector: &str) -> f64 {
    cl.metric(member, selector).await.unwrap().unwrap_or(0.0)
}

/// Puts `n` values of `size` bytes under `prefix`.
async fn fill(c: &Client, prefix: &str, n: usize, size: usize) {
    let value = vec![b'x'; size];
    for i in 0..n {
        c.kv()
            .put(format!("{prefix}{i}"), value.clone())
            .await
            .unwrap();
    }
}

/// Checks a saved snapshot: size % 512 == 32, and the last 32 bytes are the sha256 of the rest.
fn assert_snapshot_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 512, 32, "{} bytes", bytes.len());
    let (data, sum) = bytes.split_at(bytes.len() - 32);
    assert_eq!(
        Sha256::digest(data).as_slice(),
        sum,
        "the trailer is the sha256"
    );
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_space_is_listed_and_compact_defragment_disarm_restore_writes() {
    let cl = common::quota_cluster().await;
    let c = client(&cl).await;
    let m = c.maintenance();
    let ep = cl.endpoint(0);
    let member = cl.member_id(0).unwrap();
    assert!(m.alarm_list().await.unwrap().alarms().is_empty());

    let err = common::put_until_failure(&c).await;
    assert!(err.is_no_space(), "{err:?}");
    assert!(!err.may_have_been_applied());

    let alarms = m.alarm_list().await.unwrap();
    assert_eq!(alarms.alarms().len(), 1, "{alarms:?}");
    assert_eq!(alarms.alarms()[0].member_id(), member);
    assert_eq!(alarms.alarms()[0].alarm(), AlarmType::NoSpace);
    let status = m.status(&ep).await.unwrap();
    assert!(
        status.errors().iter().any(|e| e.contains("NOSPACE")),
        "{:?}",
        status.errors()
    );
    if storage_version(&cl).is_some() {
        assert_eq!(status.db_size_quota(), common::SMALL_QUOTA);
    }
    // Still refused while the alarm is up, even a small write.
    assert!(c.kv().put("small", "v").await.unwrap_err().is_no_space());

    // Deletes and compactions are allowed under the alarm; they free pages that a
    // defragmentation gives back, after which the alarm can go.
    let deleted = c.kv().delete("k").prefix().await.unwrap();
    assert!(deleted.deleted() > 0);
    c.kv()
        .compact(deleted.header().revision())
        .physical()
        .await
        .unwrap();
    let before = m.status(&ep).await.unwrap().db_size();
    m.defragment(&ep).await.unwrap();
    let after = m.status(&ep).await.unwrap();
    assert!(
        after.db_size() < before && after.db_size() < common::SMALL_QUOTA,
        "{before} -> {}",
        after.db_size()
    );
    let disarmed = m.alarm_disarm(0, AlarmType::None).await.unwrap();
    assert_eq!(disarmed.alarms().len(), 1, "{disarmed:?}");
    assert_eq!(disarmed.alarms()[0].member_id(), member);
    assert!(m.alarm_list().await.unwrap().alarms().is_empty());
    assert!(m.status(&ep).await.unwrap().errors().is_empty());
    c.kv().put("k", "v").await.expect("writes work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_raised_and_disarmed_exactly_or_by_wildcard() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let m = c.maintenance();
    let member = cl.member_id(0).unwrap();
    let other = 0xdead_beef;

    let raised = m.alarm_activate(member, AlarmType::NoSpace).await.unwrap();
    assert_eq!(raised.alarms().len(), 1);
    assert_eq!(raised.alarms()[0].member_id(), member);
    m.alarm_activate(other, AlarmType::NoSpace).await.unwrap();
    assert_eq!(m.alarm_list().await.unwrap().alarms().len(), 2);
    let err = c.kv().put("k", "v").await.unwrap_err();
    assert!(
        err.is_no_space(),
        "a raised NOSPACE refuses writes: {err:?}"
    );

    // Exact: one member's alarm.
    let one = m.alarm_disarm(other, AlarmType::NoSpace).await.unwrap();
    assert_eq!(one.alarms().len(), 1);
    assert_eq!(one.alarms()[0].member_id(), other);
    let left = m.alarm_list().await.unwrap();
    assert_eq!(left.alarms().len(), 1);
    assert_eq!(left.alarms()[0].member_id(), member);
    // Not active: nothing to do.
    let none = m.alarm_disarm(other, AlarmType::NoSpace).await.unwrap();
    assert!(none.alarms().is_empty());
    let none = m.alarm_disarm(member, AlarmType::Corrupt).await.unwrap();
    assert!(none.alarms().is_empty());
    assert_eq!(m.alarm_list().await.unwrap().alarms().len(), 1);

    // Wildcards: every kind of one member, then every member of one kind.
    let all_kinds = m.alarm_disarm(member, AlarmType::None).await.unwrap();
    assert_eq!(all_kinds.alarms().len(), 1);
    assert!(m.alarm_list().await.unwrap().alarms().is_empty());
    c.kv().put("k", "v").await.expect("writes work again");
    m.alarm_activate(member, AlarmType::NoSpace).await.unwrap();
    m.alarm_activate(other, AlarmType::NoSpace).await.unwrap();
    let every_member = m.alarm_disarm(0, AlarmType::NoSpace).await.unwrap();
    let mut ids: Vec<u64> = every_member
        .alarms()
        .iter()
        .map(|a| a.member_id())
        .collect();
    ids.sort_unstable();
    let mut want = vec![member, other];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(m.alarm_list().await.unwrap().alarms().is_empty());
    c.kv().put("k", "v").await.unwrap();

    // Refused before sending: no member, no kind, a kind etcd does not know.
    for (id, alarm) in [
        (0, AlarmType::NoSpace),
        (member, AlarmType::None),
        (member, AlarmType::Other(9)),
    ] {
        let err = m.alarm_activate(id, alarm).await.unwrap_err();
        assert!(err.is_invalid_request(), "{id} {alarm}: {err:?}");
    }
    assert!(m.alarm_list().await.unwrap().alarms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_each_member_agrees_with_the_cluster() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    c.kv().put("k", "v").await.unwrap();
    let leader = cl.leader().await.unwrap();
    let m = c.maintenance();
    // A 3.6 member records its storage version shortly after the cluster version is set.
    let expected = storage_version(&cl);
    eventually(
        Duration::from_secs(10),
        "every storage version is set",
        || async {
            for ep in cl.endpoints() {
                if m.status(&ep).await.unwrap().storage_version() != expected.as_deref() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let mut leaders = Vec::new();
    for i in 0..3 {
        let s = m.status(cl.endpoint(i)).await.unwrap();
        assert_eq!(s.header().member_id(), cl.member_id(i).unwrap());
        assert_eq!(s.version(), cl.etcd_version());
        assert!(s.db_size() > 0 && s.db_size_in_use() > 0 && s.db_size_in_use() <= s.db_size());
        assert!(s.raft_term() > 0 && s.raft_index() > 0 && s.raft_applied_index() > 0);
        assert!(s.errors().is_empty(), "{:?}", s.errors());
        assert!(!s.is_learner());
        assert_eq!(s.storage_version(), expected.as_deref());
        if expected.is_some() {
            // Without --quota-backend-bytes a 3.6 member reports etcd's default, 2 GiB.
            assert_eq!(s.db_size_quota(), 2 << 30);
            let d = s.downgrade_info().expect("3.6 reports its downgrade state");
            assert!(!d.enabled() && d.target_version().is_empty());
        }
        assert_eq!(s.is_leader(), i == leader, "member {i}");
        leaders.push(s.leader());
    }
    assert!(leaders.iter().all(|l| *l == cl.member_id(leader).unwrap()));

    // A malformed endpoint is a configuration error; nothing is dialled.
    let err = m.status("http://[::1").await.unwrap_err();
    assert!(err.is_config(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_are_equal_across_members_after_writes() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let m = c.maintenance();
    let mut rev = 0;
    for i in 0..30 {
        rev = c
            .kv()
            .put(format!("k{}", i % 7), format!("{i}"))
            .await
            .unwrap()
            .header()
            .revision();
    }
    c.kv().delete("k3").await.unwrap();
    let mut kv_hashes = Vec::new();
    let mut db_hashes = Vec::new();
    for ep in cl.endpoints() {
        // A linearizable read through the member: it has applied everything up to `rev`.
        c.for_endpoint(&ep).unwrap().kv().get("k0").await.unwrap();
        let h = m.hash_kv(&ep, rev).await.unwrap();
        if storage_version(&cl).is_some() {
            assert_eq!(h.hash_revision(), rev);
        }
        kv_hashes.push((h.hash(), h.compact_revision()));
        db_hashes.push(m.hash(&ep).await.unwrap().hash());
    }
    assert!(
        kv_hashes.iter().all(|h| *h == kv_hashes[0]),
        "{kv_hashes:?}"
    );
    assert!(
        db_hashes.iter().all(|h| *h == db_hashes[0]),
        "{db_hashes:?}"
    );

    // The hash up to an earlier revision differs; a future or negative one is refused.
    let earlier = m.hash_kv(cl.endpoint(0), rev - 5).await.unwrap();
    assert_ne!(earlier.hash(), kv_hashes[0].0);
    let err = m.hash_kv(cl.endpoint(0), rev + 100).await.unwrap_err();
    assert!(err.is_future_revision(), "{err:?}");
    let err = m.hash_kv(cl.endpoint(0), -1).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
}

/// Go's `TestCompactionHash`, smaller: the hash of a revision is the same before and after
/// compacting at it and defragmenting, cycle after cycle of puts and deletes. (etcd 3.5 and
/// later: 3.4 hashes a compacted revision from the new compaction on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_kv_is_stable_across_compaction_and_defragmentation() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let m = c.maintenance();
    let ep = cl.endpoint(0);
    let names = ["ann", "bob", "cyd", "dan", "eve"];
    let mut previous_compaction = -1;
    for cycle in 0..4u32 {
        let mut rev = 0;
        for i in 0..37u32 {
            let n = cycle * 37 + i;
            rev = if n % 11 == 0 {
                c.kv()
                    .delete(names[(n as usize + 2) % 5])
                    .await
                    .unwrap()
                    .header()
                    .revision()
            } else {
                c.kv()
                    .put(names[n as usize % 5], n.to_string())
                    .await
                    .unwrap()
                    .header()
                    .revision()
            };
        }
        let before = m.hash_kv(&ep, rev).await.unwrap();
        c.kv().compact(rev).physical().await.unwrap();
        m.defragment(&ep).await.unwrap();
        let after = m.hash_kv(&ep, rev).await.unwrap();
        assert_eq!(after.hash(), before.hash(), "cycle {cycle}, revision {rev}");
        // The hash covers the revisions after the compaction before it (-1: none yet).
        assert_eq!(after.compact_revision(), previous_compaction);
        assert_eq!(before.compact_revision(), previous_compaction);
        assert_eq!(after.header().revision(), rev);
        previous_compaction = rev;
        let err = m.hash_kv(&ep, rev - 1).await.unwrap_err();
        assert!(err.is_compacted(), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_leader_finds_the_leader_and_followers_answer_not_leader() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let leader = cl.leader().await.unwrap();
    let target = (leader + 1) % 3;
    let target_id = cl.member_id(target).unwrap();

    // Go's TestMaintenanceMoveLeader: sent to a follower, the request is refused.
    let follower = c.for_endpoint(&cl.endpoint(target)).unwrap();
    let err = follower
        .maintenance()
        .move_leader(target_id)
        .await
        .unwrap_err();
    assert!(err.is_not_leader(), "{err:?}");
    assert_eq!(err.code(), Some(Code::NotLeader));
    assert_eq!(cl.leader().await.unwrap(), leader);

    // Through the whole client, it finds the leader and moves leadership.
    c.maintenance().move_leader(target_id).await.unwrap();
    eventually(Duration::from_secs(5), "the target leads", || async {
        (cl.leader().await.ok() == Some(target)).then_some(())
    })
    .await;

    // A client that knows only a follower finds the leader through the member list.
    let third = (target + 1) % 3;
    let only_followers = Client::connect([cl.endpoint(third)]).await.unwrap();
    only_followers
        .maintenance()
        .move_leader(cl.member_id(third).unwrap())
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the third member leads", || async {
        (cl.leader().await.ok() == Some(third)).then_some(())
    })
    .await;

    // Bad targets: none (before sending), and a member that does not exist.
    let err = c.maintenance().move_leader(0).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    let err = c.maintenance().move_leader(0xbad).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::BadLeaderTransferee), "{err:?}");
    assert_eq!(cl.leader().await.unwrap(), third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defragment_works_per_member() {
    let cl = cluster(3).await;
    let c = client(&cl).await;
    let m = c.maintenance();
    fill(&c, "big/", 40, 64 * 1024).await;
    let deleted = c.kv().delete("big/").prefix().await.unwrap();
    c.kv()
        .compact(deleted.header().revision())
        .physical()
        .await
        .unwrap();
    // Every member applied the compaction before sizes are compared.
    for ep in cl.endpoints() {
        c.for_endpoint(&ep).unwrap().kv().get("x").await.unwrap();
    }
    let mut sizes = Vec::new();
    for ep in cl.endpoints() {
        sizes.push(m.status(&ep).await.unwrap().db_size());
    }
    for i in 0..3 {
        m.defragment(cl.endpoint(i)).await.unwrap();
        for (j, before) in sizes.iter().enumerate() {
            let now = m.status(cl.endpoint(j)).await.unwrap().db_size();
            if j <= i {
                assert!(
                    now < *before,
                    "member {j} after defragmenting {i}: {before} -> {now}"
                );
            } else {
                // Only a defragmentation shrinks a database file.
                assert!(
                    now >= *before,
                    "member {j} is untouched by defragmenting {i}"
                );
            }
        }
    }
    c.kv().put("k", "v").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrade_validates_enables_and_cancels() {
    let cl = cluster(1).await;
    let (major, minor) = etcd_minor(&cl);
    assert!(
        (major, minor) >= (3, 6),
        "this test checks 3.6's downgrade rules; etcd {} runs",
        cl.etcd_version()
    );
    let c = client(&cl).await;
    let m = c.maintenance();
    // Downgrade answers with the cluster version, major.minor.
    let current = format!("{major}.{minor}");
    let target = format!("{major}.{}.0", minor - 1);

    let validated = m
        .downgrade(DowngradeAction::Validate, &target)
        .await
        .unwrap();
    assert_eq!(validated.version(), current);
    let err = m
        .downgrade(
            DowngradeAction::Validate,
            format!("{major}.{}.0", minor - 2),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(Code::InvalidDowngradeTargetVersion),
        "{err:?}"
    );
    let err = m
        .downgrade(DowngradeAction::Validate, "three")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(Code::WrongDowngradeVersionFormat),
        "{err:?}"
    );
    // etcd 3.6 answers a cancel with nothing to cancel without an error.
    let cancelled = m.downgrade(DowngradeAction::Cancel, "").await.unwrap();
    assert_eq!(cancelled.version(), current);
    let err = m.downgrade(DowngradeAction::Enable, "").await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");

    m.downgrade(DowngradeAction::Enable, &target).await.unwrap();
    let status = m.status(cl.endpoint(0)).await.unwrap();
    let info = status.downgrade_info().unwrap();
    assert!(info.enabled());
    assert_eq!(info.target_version(), target);
    let err = m
        .downgrade(DowngradeAction::Enable, &target)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::DowngradeInProcess), "{err:?}");
    m.downgrade(DowngradeAction::Cancel, "").await.unwrap();
    let status = m.status(cl.endpoint(0)).await.unwrap();
    assert!(!status.downgrade_info().unwrap().enabled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_stream_carries_the_database_and_its_checksum() {
    // etcd 3.6 writes its storage version into the database at its first raft snapshot.
    let cl = cluster_with(1, &["--snapshot-count=1"]).await;
    let c = client(&cl).await;
    fill(&c, "k", 20, 1000).await;
    let mut snap = c.maintenance().snapshot(cl.endpoint(0)).await.unwrap();
    assert_eq!(snap.version(), storage_version(&cl).as_deref());
    assert_eq!(snap.endpoint(), cl.endpoint(0));
    let mut bytes = Vec::new();
    let mut last = None;
    while let Some(msg) = snap.message().await.unwrap() {
        assert_eq!(msg.version(), storage_version(&cl).as_deref());
        bytes.extend_from_slice(msg.blob());
        last = Some(msg);
    }
    assert!(snap.message().await.unwrap().is_none(), "ended stays ended");
    let last = last.unwrap();
    assert_eq!(last.blob().len(), 32, "the checksum comes alone, last");
    assert_eq!(last.remaining_bytes(), 0);
    assert_eq!(bytes.len() as u64, snap.total_bytes());
    // Go's TestMaintenanceSnapshotContentDigest.
    assert_eq!(bytes.len() % 512, 32);
    let (data, sum) = bytes.split_at(bytes.len() - 32);
    assert_eq!(Sha256::digest(data).as_slice(), sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_save_writes_a_checked_0600_file_and_reports_progress() {
    // etcd 3.6 writes its storage version into the database at its first raft snapshot.
    let cl = cluster_with(1, &["--snapshot-count=1"]).await;
    let c = client(&cl).await;
    fill(&c, "k", 50, 4096).await;
    let dir = cl.temp_dir().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("snap.db");
    // An older backup is replaced, and a `.part` left by a crashed save does not lend its mode.
    std::fs::write(&path, b"old backup").unwrap();
    let part = dir.join("snap.db.part");
    std::fs::write(&part, b"left over").unwrap();
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o644)).unwrap();

    let seen: Arc<Mutex<Vec<SnapshotProgress>>> = Arc::default();
    let record = seen.clone();
    let saved = c
        .maintenance()
        .snapshot_save(cl.endpoint(0), &path)
        .progress(move |p| record.lock().unwrap().push(p))
        .await
        .unwrap();

    let bytes = assert_snapshot_file(&path);
    assert_eq!(saved.size(), bytes.len() as u64);
    assert_eq!(saved.path(), path);
    // Go's TestSaveSnapshotVersion and TestMaintenanceSnapshotWithVersionVersion.
    assert_eq!(saved.version(), storage_version(&cl).as_deref());
    // Go's TestSaveSnapshotFilePermissions.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(!part.exists(), "the partial file was renamed");

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].written(), 0);
    assert!(seen.windows(2).all(|w| w[0].written() < w[1].written()));
    assert!(seen.iter().all(|p| p.total() == Some(saved.size())));
    assert_eq!(seen.last().unwrap().written(), saved.size());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_interrupted_by_killing_the_member_leaves_nothing() {
    let cl = Arc::new(cluster(1).await);
    let c = client(&cl).await;
    // 10 MiB: far more than can be on the way when the member stops (the stream's window
    // is 2 MiB).
    fill(&c, "big/", 10, 1024 * 1024).await;
    let path = cl.temp_dir().join("interrupted.db");
    let (stopped_tx, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    let freeze = cl.clone();
    let once = AtomicBool::new(false);
    let save = c
        .maintenance()
        .snapshot_save(cl.endpoint(0), &path)
        .progress(move |_| {
            if !once.swap(true, Ordering::SeqCst) {
                // Freeze the member mid-stream, so that it is killed with data still to send.
                freeze.pause(0).unwrap();
                let _ = stopped_tx.send(());
            }
        })
        .into_future();
    let saving = tokio::spawn(save);
    stopped.recv().await.expect("the save started");
    assert!(cl.temp_dir().join("interrupted.db.part").exists());
    cl.kill(0).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), saving)
        .await
        .expect("the save ends once the member is gone")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(!path.exists(), "nothing at the destination");
    assert!(
        !cl.temp_dir().join("interrupted.db.part").exists(),
        "no partial file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_to_an_unwritable_path_fails_before_streaming() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    let m = c.maintenance();
    let started = "grpc_server_started_total{grpc_method=\"Snapshot\"}";

    let missing_dir = cl.temp_dir().join("no/such/dir/snap.db");
    let err = m
        .snapshot_save(cl.endpoint(0), &missing_dir)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(err.to_string().contains("snap.db.part"), "{err}");
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    let a_dir = cl.temp_dir().join("a-directory");
    std::fs::create_dir(&a_dir).unwrap();
    let err = m.snapshot_save(cl.endpoint(0), &a_dir).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(!cl.temp_dir().join("a-directory.part").exists());

    let path = cl.temp_dir().join("snap.db");
    let err = m.snapshot_save("http://[::1", &path).await.unwrap_err();
    assert!(err.is_config(), "{err:?}");
    assert!(!path.exists() && !cl.temp_dir().join("snap.db.part").exists());

    assert_eq!(
        metric(&cl, 0, started).await,
        0.0,
        "no snapshot was asked of etcd"
    );
    // The same call to a writable path streams.
    m.snapshot_save(cl.endpoint(0), &path).await.unwrap();
    assert_eq!(metric(&cl, 0, started).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_dead_member_fails_within_the_request_timeout() {
    let cl = cluster(1).await;
    let c = common::client_with_timeout(&cl, Duration::from_secs(1)).await;
    let path = cl.temp_dir().join("dead.db");
    cl.kill(0).await.unwrap();
    let started = std::time::Instant::now();
    let err = c
        .maintenance()
        .snapshot_save(cl.endpoint(0), &path)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.endpoint(), Some(cl.endpoint(0).as_str()));
    assert!(!path.exists() && !cl.temp_dir().join("dead.db.part").exists());
}

/// Go's TestMaintenanceSnapshot{,WithVersion}Timeout and ...ErrorInflight (timeouts): a
/// deadline set on the call bounds the whole transfer, before and during reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_deadline_bounds_the_whole_transfer() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    fill(&c, "big/", 6, 1024 * 1024).await;
    let m = c.maintenance();
    let ep = cl.endpoint(0);

    // Expired before reading.
    let mut snap = m
        .snapshot(&ep)
        .timeout(Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = snap.message().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(snap.message().await.unwrap().is_none(), "the stream ended");

    // Expires while reading slowly.
    let mut snap = m
        .snapshot(&ep)
        .timeout(Duration::from_secs(1))
        .await
        .unwrap();
    let mut read = 0u64;
    let err = loop {
        match snap.message().await {
            Ok(Some(msg)) => {
                read += msg.blob().len() as u64;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(None) => panic!("a 6 MiB snapshot read at 32 KiB per 20 ms outlived 1 s"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(read > 0 && read < snap.total_bytes());

    // Without a deadline it completes however long it takes.
    let mut snap = m.snapshot(&ep).await.unwrap();
    let mut n = 0;
    while let Some(msg) = snap.message().await.unwrap() {
        n += msg.blob().len() as u64;
    }
    assert_eq!(n, snap.total_bytes());
}

/// Go's TestMaintenanceSnapshotCancel and ...ErrorInflight (cancel): dropping the stream
/// cancels the transfer on the server; closing the client ends it with `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_snapshot_cancels_it_and_close_ends_it() {
    let cl = cluster(1).await;
    let c = client(&cl).await;
    fill(&c, "big/", 6, 1024 * 1024).await;
    let m = c.maintenance();
    let ep = cl.endpoint(0);
    let handled = "grpc_server_handled_total{grpc_method=\"Snapshot\"}";

    let mut snap = m.snapshot(&ep).await.unwrap();
    snap.message().await.unwrap().unwrap();
    drop(snap);
    eventually(Duration::from_secs(5), "etcd's handler ends", || async {
        (metric(&cl, 0, handled).await == 1.0).then_some(())
    })
    .await;
    c.kv().put("k", "v").await.expect("the client goes on");

    let mut snap = m.snapshot(&ep).await.unwrap();
    snap.message().await.unwrap().unwrap();
    c.close().await;
    let err = loop {
        match snap.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a closed client's snapshot does not complete"),
            Err(e) => break e,
        }
    };
    assert!(err.is_closed(), "{err:?}");
    let err = m.snapshot(&ep).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}

mod old_cluster {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use etcdv3::Client;
    use etcdv3_proto::etcdserverpb as pb;
    use http::{HeaderMap, HeaderValue, Response};
    use prost::Message;
    use tokio::net::TcpListener;

    /// A gRPC server on loopback that answers every Status with `version`, and every other
    /// call with Unimplemented: a member of whatever version a test needs.
    async fn fake_member(version: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        let status = req.uri().path() == "/etcdserverpb.Maintenance/Status";
                        let head = Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let Ok(mut send) = respond.send_response(head, false) else {
                            continue;
                        };
                        let mut trailers = HeaderMap::new();
                        if status {
                            let msg = pb::StatusResponse {
                                version: version.into(),
                                ..Default::default()
                            }
                            .encode_to_vec();
                            let mut frame = vec![0u8];
                            frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                            frame.extend_from_slice(&msg);
                            let _ = send.send_data(Bytes::from(frame), false);
                            trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        } else {
                            trailers.insert("grpc-status", HeaderValue::from_static("12"));
                        }
                        let _ = send.send_trailers(trailers);
                    }
                });
            }
        });
        addr
    }

    async fn connect(endpoints: Vec<String>) -> etcdv3::Result<Client> {
        Client::builder()
            .endpoints(endpoints)
            .reject_old_cluster(true)
            .connect()
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_older_than_3_4_are_refused_at_connect() {
        let old = fake_member("3.3.27").await;
        let err = connect(vec![format!("http://{old}")]).await.unwrap_err();
        assert!(err.is_old_cluster(), "{err:?}");
        assert!(err.to_string().contains("3.3.27"), "{err}");
        assert_eq!(err.endpoint(), Some(format!("http://{old}").as_str()));

        // Without the option the same member is accepted.
        Client::connect([format!("http://{old}")]).await.unwrap();

        let supported = fake_member("3.4.0").await;
        connect(vec![format!("http://{supported}")]).await.unwrap();

        // One old member among supported ones is enough.
        let err = connect(vec![format!("http://{supported}"), format!("http://{old}")])
            .await
            .unwrap_err();
        assert!(err.is_old_cluster(), "{err:?}");

        let garbage = fake_member("not a version").await;
        let err = connect(vec![format!("http://{garbage}")])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), etcdv3::ErrorKind::Protocol, "{err:?}");
    }

    /// Go's TestRejectOldCluster: the check passes against the current cluster, with an
    /// endpoint down skipped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_current_cluster_passes_with_a_dead_endpoint_skipped() {
        use etcdv3::Kv;

        let cl = super::cluster(3).await;
        let c = connect(cl.endpoints()).await.unwrap();
        c.kv().put("k", "v").await.unwrap();
        cl.kill(2).await.unwrap();
        let c = connect(cl.endpoints()).await.unwrap();
        c.kv().put("k", "v").await.unwrap();
    }
}
