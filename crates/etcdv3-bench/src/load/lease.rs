//! Keeping many leases alive for a while, measured the same way for any client:
//! `lease-keepalive --leases N --ttl S --duration D`.
//!
//! [`hold`] runs three phases:
//!
//! 1. **grant**: `N` leases of `S` seconds, `--in-flight` grants at a time; the client starts
//!    keeping each one alive as soon as it is granted, so none expires while the others are
//!    being granted. Each grant's latency is recorded.
//! 2. **hold**: once all are granted, the leases are kept alive for `D`. Over exactly this
//!    window the tool takes the process's CPU time and counts the renewals etcd answered
//!    (answers with a TTL above 0, per lease).
//! 3. **check**: with every lease still kept alive, each is asked for with time-to-live,
//!    `--in-flight` at a time: a lease etcd no longer knows has expired.
//!
//! The client-specific parts (how a lease is granted and kept alive, how answers are counted,
//! how a lease is checked) are closures; everything measured is here.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use super::cpu::CpuTimes;
use super::report::Recorder;
use super::runner::{Part, RunOutput};

/// The most leases one run may ask for (each costs the tool a counter and a task or handle).
pub(crate) const MAX_LEASES: u64 = 10_000_000;

/// The targets: (leases, TTL in seconds), each kept alive from one client for
/// [`TARGET_HOLD`] with client CPU below [`TARGET_CPU_PERCENT`] of one core and no lease
/// expired.
const TARGETS: [(u64, i64); 2] = [(10_000, 10), (100_000, 60)];
const TARGET_HOLD: Duration = Duration::from_secs(60);
const TARGET_CPU_PERCENT: f64 = 5.0;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct HoldPlan {
    /// Leases to grant and keep alive (`--leases`).
    pub(crate) leases: u64,
    /// Their TTL in seconds (`--ttl`).
    pub(crate) ttl: i64,
    /// How long to keep them alive once all are granted (`--duration`).
    pub(crate) duration: Duration,
    /// Grants, and checks, in flight at once (`--in-flight`; 0 = all at once).
    pub(crate) in_flight: usize,
    /// Connections the leases are spread over (lease `i` on connection `i % conns`).
    pub(crate) conns: usize,
}

impl HoldPlan {
    /// Checks the flags before anything connects.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.leases == 0 || self.leases > MAX_LEASES {
            return Err(format!(
                "--leases must be between 1 and {MAX_LEASES}, got {}",
                self.leases
            ));
        }
        if self.ttl <= 0 {
            return Err(format!("--ttl must be at least 1 second, got {}", self.ttl));
        }
        if self.duration.is_zero() {
            return Err("--duration must be above 0".into());
        }
        Ok(())
    }
}

/// The renewals etcd answered during the hold window, per lease, and why keep-alives ended.
/// Shared by the client's keep-alive readers and [`hold`].
#[derive(Debug)]
pub(crate) struct Renewals {
    counting: AtomicBool,
    per_lease: Box<[AtomicU32]>,
    ended: Mutex<BTreeMap<String, u64>>,
}

impl Renewals {
    /// Counters for leases `0..leases`.
    pub(crate) fn new(leases: u64) -> Arc<Renewals> {
        let n = usize::try_from(leases.min(MAX_LEASES)).unwrap_or(0);
        Arc::new(Renewals {
            counting: AtomicBool::new(false),
            per_lease: (0..n).map(|_| AtomicU32::new(0)).collect(),
            ended: Mutex::new(BTreeMap::new()),
        })
    }

    /// etcd answered a renewal of lease `index` (with a TTL above 0). Counted only during the
    /// hold window.
    pub(crate) fn answered(&self, index: u64) {
        if !self.counting.load(Ordering::Relaxed) {
            return;
        }
        if let Some(n) = usize::try_from(index)
            .ok()
            .and_then(|i| self.per_lease.get(i))
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keeping a lease alive ended, for `reason` (whenever it happens).
    pub(crate) fn ended(&self, reason: &str) {
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        match ended.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                ended.insert(reason.to_owned(), 1);
            }
        }
    }

    fn count(&self, on: bool) {
        self.counting.store(on, Ordering::Relaxed);
    }

    /// The renewals of the leases at `indexes`: in all, and the fewest of any one of them.
    fn of(&self, indexes: &[u64]) -> (u64, u64) {
        let mut sum = 0;
        let mut fewest: Option<u64> = None;
        for &i in indexes {
            let n = usize::try_from(i)
                .ok()
                .and_then(|i| self.per_lease.get(i))
                .map_or(0, |n| u64::from(n.load(Ordering::Relaxed)));
            sum += n;
            fewest = Some(fewest.map_or(n, |f| f.min(n)));
        }
        (sum, fewest.unwrap_or(0))
    }

    fn ended_counts(&self) -> BTreeMap<String, u64> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a time-to-live check found: `Some(remaining TTL in seconds)` for a live lease, `None`
/// for one etcd does not know (it expired).
pub(crate) type Checked = Option<i64>;

/// Runs `call(i)` for `i` in `0..n`, at most `in_flight` at once (0 = all at once), and
/// records each call's latency (from `start`) or error; returns the successes with their
/// index.
pub(crate) async fn windowed<T, F, Fut>(
    n: u64,
    in_flight: usize,
    start: Instant,
    mut call: F,
) -> (Recorder, Vec<(u64, T)>)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let window = if in_flight == 0 {
        usize::MAX
    } else {
        in_flight
    };
    let mut rec = Recorder::new();
    let mut done = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut running = FuturesUnordered::new();
    let mut asked = 0u64;
    loop {
        while asked < n && running.len() < window {
            let (i, fut) = (asked, call(asked));
            running.push(async move {
                let t0 = Instant::now();
                let r = fut.await;
                (i, t0, t0.elapsed(), r)
            });
            asked += 1;
        }
        let Some((i, t0, latency, r)) = running.next().await else {
            break;
        };
        match r {
            Ok(v) => {
                rec.record_ok(t0 - start, latency);
                done.push((i, v));
            }
            Err(msg) => rec.record_err(&msg),
        }
    }
    (rec, done)
}

/// Runs the three phases (see the module docs).
///
/// - `grant(i)` grants lease `i` (to be on connection `i % conns`), starts keeping it alive
///   and returns its ID with whatever keeps it alive (`H`);
/// - `keep(handles)` is called once all are granted, with every `(i, H)`; what it returns is
///   dropped after the check (it may start a task that reads the answers and reports them to
///   `renewals`);
/// - `check(i, id)` asks etcd for lease `i`'s time to live.
///
/// `renewals` must be the counters the client's readers report to.
pub(crate) async fn hold<H, K, G, GF, P, C, CF>(
    plan: &HoldPlan,
    renewals: &Renewals,
    mut grant: G,
    keep: P,
    mut check: C,
) -> RunOutput
where
    G: FnMut(u64) -> GF,
    GF: Future<Output = Result<(i64, H), String>>,
    P: FnOnce(Vec<(u64, H)>) -> K,
    C: FnMut(u64, i64) -> CF,
    CF: Future<Output = Result<Checked, String>>,
{
    let cpu_before = CpuTimes::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let (grants, granted) = windowed(plan.leases, plan.in_flight, start, &mut grant).await;
    let grant_elapsed = start.elapsed();
    let mut ids = Vec::with_capacity(granted.len());
    let mut handles = Vec::with_capacity(granted.len());
    for (i, (id, handle)) in granted {
        ids.push((i, id));
        handles.push((i, handle));
    }
    let kept = keep(handles);

    renewals.count(true);
    let hold_cpu_before = CpuTimes::now();
    let hold_start = Instant::now();
    tokio::time::sleep(plan.duration).await;
    let hold_cpu = CpuTimes::now().since(hold_cpu_before);
    let held = hold_start.elapsed();
    renewals.count(false);

    let check_start = Instant::now();
    let (checks, found) = windowed(ids.len() as u64, plan.in_flight, start, |k| {
        let (i, id) = ids[usize::try_from(k).unwrap_or(0)];
        check(i, id)
    })
    .await;
    let check_elapsed = check_start.elapsed();
    drop(kept);
    let cpu = CpuTimes::now().since(cpu_before);

    let indexes: Vec<u64> = ids.iter().map(|&(i, _)| i).collect();
    let (renewed, fewest) = renewals.of(&indexes);
    let alive: Vec<i64> = found.iter().filter_map(|&(_, c)| c).collect();
    let report = HoldReport {
        leases: plan.leases,
        granted: ids.len() as u64,
        ttl_secs: plan.ttl,
        conns: plan.conns,
        hold_secs: held.as_secs_f64(),
        cpu_user_secs: hold_cpu.user.as_secs_f64(),
        cpu_sys_secs: hold_cpu.sys.as_secs_f64(),
        cpu_percent: percent_of_one_core(hold_cpu, held),
        renewals: renewed,
        renewals_per_lease: if ids.is_empty() {
            0.0
        } else {
            renewed as f64 / ids.len() as f64
        },
        renewals_per_lease_at_ttl_thirds: held.as_secs_f64() * 3.0 / plan.ttl as f64,
        fewest_renewals: fewest,
        keepalive_ended: renewals.ended_counts(),
        checked: found.len() as u64,
        alive: alive.len() as u64,
        expired: (found.len() - alive.len()) as u64,
        check_failed: checks.error_count(),
        lowest_remaining_ttl_secs: alive.iter().copied().min(),
    };
    let part = |name, title: &str, elapsed, recorder| Part {
        name,
        title: Some(title.to_owned()),
        elapsed,
        recorder,
    };
    RunOutput {
        elapsed: start.elapsed(),
        start_unix,
        cpu,
        parts: vec![
            part("grant", "Lease grant summary", grant_elapsed, grants),
            part(
                "time-to-live",
                "Time-to-live check summary (after the hold)",
                check_elapsed,
                checks,
            ),
        ],
        primary: Some(0),
        notes: report.notes(),
        scale: None,
        leases: Some(report),
    }
}

/// CPU time `cpu` over wall time `over`, in percent of one core.
fn percent_of_one_core(cpu: CpuTimes, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        cpu.total().as_secs_f64() * 100.0 / over.as_secs_f64()
    }
}

/// What `lease-keepalive --leases` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HoldReport {
    /// Leases asked for.
    pub(crate) leases: u64,
    /// Leases etcd granted (the others are errors of the grant part).
    pub(crate) granted: u64,
    pub(crate) ttl_secs: i64,
    /// Connections (clients) the leases were spread over.
    pub(crate) conns: usize,
    /// The hold window: from the last grant until the check.
    pub(crate) hold_secs: f64,
    /// The process's CPU time during the hold window.
    pub(crate) cpu_user_secs: f64,
    pub(crate) cpu_sys_secs: f64,
    /// That CPU time over the window, in percent of one core.
    pub(crate) cpu_percent: f64,
    /// Renewals etcd answered during the window (answers with a TTL above 0).
    pub(crate) renewals: u64,
    pub(crate) renewals_per_lease: f64,
    /// What one renewal per TTL/3 would give over the window, per lease.
    pub(crate) renewals_per_lease_at_ttl_thirds: f64,
    /// The fewest renewals any granted lease got during the window.
    pub(crate) fewest_renewals: u64,
    /// Keep-alives that ended (at any time), by reason.
    pub(crate) keepalive_ended: BTreeMap<String, u64>,
    /// Leases asked for with time-to-live after the window, and what etcd said.
    pub(crate) checked: u64,
    pub(crate) alive: u64,
    /// Leases etcd no longer knew.
    pub(crate) expired: u64,
    /// Checks that failed (no answer).
    pub(crate) check_failed: u64,
    /// The lowest remaining TTL of a live lease at the check.
    pub(crate) lowest_remaining_ttl_secs: Option<i64>,
}

impl HoldReport {
    /// The text lines: what the run found, then the targets.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            "Lease keep-alive:".to_owned(),
            format!(
                "  Leases:\t{} asked, {} granted, TTL {} s, over {} connection(s)",
                self.leases, self.granted, self.ttl_secs, self.conns
            ),
            format!(
                "  Kept alive for:\t{:.4} secs. after the last grant",
                self.hold_secs
            ),
            format!(
                "  Client CPU:\t{:.4} secs. (user {:.4}, system {:.4}): {:.2} % of one core",
                self.cpu_user_secs + self.cpu_sys_secs,
                self.cpu_user_secs,
                self.cpu_sys_secs,
                self.cpu_percent
            ),
            format!(
                "  Renewals answered:\t{} ({:.2} per lease; one per TTL/3 would be {:.2}); \
                 fewest for one lease: {}",
                self.renewals,
                self.renewals_per_lease,
                self.renewals_per_lease_at_ttl_thirds,
                self.fewest_renewals
            ),
        ];
        if self.keepalive_ended.is_empty() {
            notes.push("  Keep-alives ended:\tnone".to_owned());
        } else {
            notes.push("  Keep-alives ended:".to_owned());
            for (reason, n) in &self.keepalive_ended {
                notes.push(format!("    [{n}]\t{reason}"));
            }
        }
        let lowest = self
            .lowest_remaining_ttl_secs
            .map_or(String::new(), |t| format!("; lowest remaining TTL {t} s"));
        notes.push(format!(
            "  Checked with time-to-live:\t{}: {} alive, {} expired, {} not answered{lowest}",
            self.checked, self.alive, self.expired, self.check_failed
        ));
        notes.push("Targets:".to_owned());
        for (leases, ttl) in TARGETS {
            let what = format!(
                "  {leases} leases, TTL {ttl} s, {} s, one connection: client CPU below \
                 {TARGET_CPU_PERCENT} % of one core, no lease expired",
                TARGET_HOLD.as_secs()
            );
            let judged = self.leases >= leases
                && self.ttl_secs == ttl
                && self.conns == 1
                && self.hold_secs >= TARGET_HOLD.as_secs_f64();
            if judged {
                notes.push(format!(
                    "{what}: {}",
                    if self.meets_bounds() { "met" } else { "missed" }
                ));
            } else {
                notes.push(format!(
                    "{what}: not judged (this run: {} leases, TTL {} s, {:.0} s, {} \
                     connection(s))",
                    self.leases, self.ttl_secs, self.hold_secs, self.conns
                ));
            }
        }
        notes
    }

    /// CPU below the bound, every lease granted, checked and alive.
    fn meets_bounds(&self) -> bool {
        self.cpu_percent < TARGET_CPU_PERCENT
            && self.granted == self.leases
            && self.checked == self.granted
            && self.expired == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(leases: u64, ttl: i64, cpu: f64, expired: u64) -> HoldReport {
        HoldReport {
            leases,
            granted: leases,
            ttl_secs: ttl,
            conns: 1,
            hold_secs: 60.2,
            cpu_user_secs: 0.5,
            cpu_sys_secs: 0.1,
            cpu_percent: cpu,
            renewals: leases * 17,
            renewals_per_lease: 17.0,
            renewals_per_lease_at_ttl_thirds: 18.06,
            fewest_renewals: 16,
            keepalive_ended: BTreeMap::new(),
            checked: leases,
            alive: leases - expired,
            expired,
            check_failed: 0,
            lowest_remaining_ttl_secs: Some(ttl - 3),
        }
    }

    #[test]
    fn targets_are_judged_only_at_their_scale() {
        let text = report(10_000, 10, 1.0, 0).notes().join("\n");
        assert!(text.contains("10000 leases, TTL 10 s, 60 s"), "{text}");
        assert!(text.contains("no lease expired: met"), "{text}");
        assert!(text.contains("not judged (this run: 10000 leases, TTL 10 s"));
        assert!(text.contains("Keep-alives ended:\tnone"), "{text}");
        let text = report(10_000, 10, 6.0, 0).notes().join("\n");
        assert!(text.contains("expired: missed"), "{text}");
        let text = report(100_000, 60, 1.0, 1).notes().join("\n");
        assert!(text.contains("expired: missed"), "{text}");
        assert!(text.contains("99999 alive, 1 expired"), "{text}");
        let mut short = report(10_000, 10, 1.0, 0);
        short.hold_secs = 5.0;
        assert!(!short.notes().join("\n").contains(": met"));
        let mut two = report(10_000, 10, 1.0, 0);
        two.conns = 2;
        assert!(!two.notes().join("\n").contains(": met"));
        let mut failed = report(10_000, 10, 1.0, 0);
        failed.granted = 9_999;
        failed.checked = 9_999;
        assert!(failed.notes().join("\n").contains(": missed"));
    }

    #[test]
    fn renewals_count_only_while_holding() {
        let r = Renewals::new(3);
        r.answered(0);
        r.count(true);
        r.answered(0);
        r.answered(0);
        r.answered(2);
        r.answered(7); // not a lease of this run
        r.count(false);
        r.answered(2);
        r.ended("gone");
        r.ended("gone");
        assert_eq!(r.of(&[0, 1, 2]), (3, 0));
        assert_eq!(r.of(&[0, 2]), (3, 1));
        assert_eq!(r.of(&[]), (0, 0));
        assert_eq!(r.ended_counts()["gone"], 2);
    }

    #[test]
    fn bad_plans_are_refused() {
        let plan = HoldPlan {
            leases: 10,
            ttl: 10,
            duration: Duration::from_secs(1),
            in_flight: 0,
            conns: 1,
        };
        assert!(plan.validate().is_ok());
        for bad in [
            HoldPlan {
                leases: 0,
                ..plan.clone()
            },
            HoldPlan {
                ttl: 0,
                ..plan.clone()
            },
            HoldPlan {
                duration: Duration::ZERO,
                ..plan
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn windowed_keeps_the_window_and_records_everything() {
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (rec, done) = windowed(50, 4, Instant::now(), |i| {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if i % 10 == 0 {
                    Err("boom".to_owned())
                } else {
                    Ok(i * 2)
                }
            }
        })
        .await;
        assert_eq!((rec.ok(), rec.error_count()), (45, 5));
        assert!(done.iter().all(|&(i, v)| v == i * 2));
        assert!(most.load(Ordering::SeqCst) <= 4);
    }
}
