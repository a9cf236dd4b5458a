//! `lease-keepalive`, run with the etcdv3 client, in two modes.
//!
//! - **Go's** (`--total`): each of `--clients` workers grants a lease of 100 s on its
//!   connection (`i % --conns`), then the workers share `--total` keep-alive-once requests,
//!   each renewing the worker's own lease; the report is their latency. The leases are revoked
//!   afterwards (Go's tool leaves them to expire).
//! - **etcdv3's** (`--leases N --ttl S --duration D`): `N` leases, lease `i` granted on
//!   connection `i % --conns` and kept alive there with `keep_alive` (all leases of a
//!   connection share its one keep-alive stream), held for `D` after the last grant, then
//!   checked with `time_to_live`; see [`crate::load::lease`]. One task reads every
//!   `LeaseKeepAlive` handle (a `select_all` over them) and counts the answers, as an
//!   application reading each renewal would. The leases are not revoked: they expire `S`
//!   seconds after the tool exits.

use std::sync::Arc;

use etcdv3::{Client, LeaseClient, LeaseKeepAlive};
use futures_util::FutureExt;
use futures_util::stream::{StreamExt, select_all};
use tokio::task::{JoinHandle, JoinSet};

use crate::cli::{Global, LeaseKeepaliveArgs};
use crate::load::lease::{HoldPlan, Renewals, hold};
use crate::load::runner::{Plan, RunOutput, run};

/// The TTL of the workers' leases in Go's mode, as in Go's tool.
const GO_TTL: i64 = 100;

/// A validated `lease-keepalive`.
#[derive(Debug)]
pub(crate) enum Job {
    /// Go's mode: `--total` keep-alive-once requests.
    Once { total: u64 },
    /// etcdv3's mode: keep `--leases` alive for `--duration`.
    Hold(HoldPlan),
}

impl Job {
    /// Checks the flags before anything connects.
    pub(crate) fn new(a: &LeaseKeepaliveArgs, g: &Global) -> Result<Job, String> {
        let Some(leases) = a.leases else {
            return Ok(Job::Once { total: a.total });
        };
        let plan = HoldPlan {
            leases,
            ttl: a.ttl,
            duration: a.duration,
            in_flight: a.in_flight,
            conns: g.conns,
        };
        plan.validate()?;
        Ok(Job::Hold(plan))
    }

    /// Runs it on `clients` (one per `--conns`).
    pub(crate) async fn run(self, g: &Global, clients: &[Client]) -> Result<RunOutput, String> {
        let leases: Vec<LeaseClient> = clients.iter().map(Client::lease).collect();
        match self {
            Job::Once { total } => keep_alive_once(total, g, &leases).await,
            Job::Hold(plan) => Ok(keep_alive_many(&plan, leases).await),
        }
    }
}

/// Go's mode: a lease per worker, then `total` keep-alive-once requests.
async fn keep_alive_once(
    total: u64,
    g: &Global,
    leases: &[LeaseClient],
) -> Result<RunOutput, String> {
    let mut granting = JoinSet::new();
    for w in 0..g.clients {
        let lease = leases[w % leases.len()].clone();
        granting.spawn(async move {
            let r = lease.grant(GO_TTL).await;
            (w, lease, r)
        });
    }
    let mut workers = Vec::with_capacity(g.clients);
    while let Some(joined) = granting.join_next().await {
        let (w, lease, r) = joined.map_err(|e| format!("a grant task failed: {e}"))?;
        let granted = r.map_err(|e| format!("cannot grant a lease: {e}"))?;
        workers.push((w, lease, granted.id()));
    }
    workers.sort_by_key(|&(w, _, _)| w);
    let workers: Vec<(LeaseClient, i64)> = workers
        .into_iter()
        .map(|(_, lease, id)| (lease, id))
        .collect();

    let plan = Plan {
        clients: g.clients,
        total,
        rate: 0.0,
        parts: vec!["keepalive"],
        progress: !g.json,
    };
    let out = run(&plan, &workers, |(lease, id), _, _| async move {
        let r = lease.keep_alive_once(id).await;
        ((lease, id), 0, r.map(drop).map_err(|e| e.to_string()))
    })
    .await;

    // Best effort: a lease left behind expires after its TTL anyway.
    let mut revoking = JoinSet::new();
    for (lease, id) in workers {
        revoking.spawn(async move { lease.revoke(id).await });
    }
    revoking.join_all().await;
    Ok(out)
}

/// etcdv3's mode: see the module docs.
async fn keep_alive_many(plan: &HoldPlan, leases: Vec<LeaseClient>) -> RunOutput {
    let renewals = Renewals::new(plan.leases);
    let conns = leases.len();
    let ttl = plan.ttl;
    let on = |i: u64| leases[usize::try_from(i).unwrap_or(0) % conns].clone();
    hold(
        plan,
        &renewals,
        |i| {
            let lease = on(i);
            async move {
                let granted = lease.grant(ttl).await.map_err(|e| e.to_string())?;
                let id = granted.id();
                Ok((id, lease.keep_alive(id)))
            }
        },
        |mut handles| {
            // Answers from before the hold (the first renewal of each lease, sent when it was
            // granted) wait in the handles: take them out, so that only the hold's count.
            for (_, handle) in &mut handles {
                if let Some(Err(e)) = handle.message().now_or_never() {
                    renewals.ended(&ended_reason(&e));
                }
            }
            AbortOnDrop(tokio::spawn(read_answers(handles, renewals.clone())))
        },
        |i, id| {
            let lease = on(i);
            async move {
                match lease.time_to_live(id).await {
                    Ok(resp) => Ok(Some(resp.ttl())),
                    Err(e) if e.is_lease_not_found() => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await
}

/// Reads every handle's answers in one task and reports them to `renewals`; the handles (and
/// so the keep-alives) live as long as the task.
async fn read_answers(handles: Vec<(u64, LeaseKeepAlive)>, renewals: Arc<Renewals>) {
    let mut answers = select_all(
        handles
            .into_iter()
            .map(|(i, handle)| handle.map(move |answer| (i, answer))),
    );
    while let Some((i, answer)) = answers.next().await {
        match answer {
            Ok(_) => renewals.answered(i),
            Err(e) => renewals.ended(&ended_reason(&e)),
        }
    }
}

/// Why a keep-alive ended, without the lease ID (so that reasons add up).
fn ended_reason(e: &etcdv3::Error) -> String {
    if e.is_lease_not_found() {
        "lease not found (etcd answered TTL 0: revoked or expired)".to_owned()
    } else if e.is_lease_expired() {
        "no keep-alive answer within the lease's TTL (it may have expired)".to_owned()
    } else {
        format!("{:?}: {e}", e.kind())
    }
}

/// Aborts the task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
