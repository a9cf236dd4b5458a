//! Running a workload: `--clients` workers spread over `--conns` connections issue `--total`
//! requests between them, optionally rate limited, and record every result.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::task::JoinSet;

use super::cpu::CpuTimes;
use super::lease::HoldReport;
use super::limiter::Limiter;
use super::report::{
    CpuReport, JsonReport, NamedStats, Recorder, ScaleReport, TextOptions, text_report,
};

/// Results are recorded into this many locked shards, so workers rarely wait for each other
/// while memory stays independent of `--clients`.
const SHARDS: usize = 16;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Concurrent workers (`--clients`).
    pub(crate) clients: usize,
    /// Requests over all workers (`--total`).
    pub(crate) total: u64,
    /// Requests per second over all workers; 0 = unlimited (`--rate`).
    pub(crate) rate: f64,
    /// Names of the report parts; a request says which part it belongs to by index.
    pub(crate) parts: Vec<&'static str>,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub(crate) progress: bool,
}

/// The result of one request: the connection handle back, the report part, and the error
/// message if it failed.
pub(crate) type Outcome<C> = (C, usize, Result<(), String>);

/// Everything a run recorded.
#[derive(Debug)]
pub(crate) struct RunOutput {
    /// From the first request to the last response.
    pub(crate) elapsed: Duration,
    /// The start of the run as a Unix time in seconds.
    pub(crate) start_unix: u64,
    /// CPU time the whole process used during the run.
    pub(crate) cpu: CpuTimes,
    /// The recorded results, per part.
    pub(crate) parts: Vec<Part>,
    /// The part whose statistics head the JSON document; `None`: all parts merged.
    pub(crate) primary: Option<usize>,
    /// Lines printed after the text report (findings of a run that are not latencies).
    pub(crate) notes: Vec<String>,
    /// Figures of `watch-scale` for the JSON document.
    pub(crate) scale: Option<ScaleReport>,
    /// Figures of `lease-keepalive --leases` for the JSON document.
    pub(crate) leases: Option<HoldReport>,
}

/// One part of a run: one kind of request (txn-mixed's reads) or one phase (watch creation).
#[derive(Debug)]
pub(crate) struct Part {
    /// Its name in the JSON document.
    pub(crate) name: &'static str,
    /// Its heading in the text report, if any.
    pub(crate) title: Option<String>,
    /// The wall-clock time its requests ran in (the run's, unless it is a phase of its own).
    pub(crate) elapsed: Duration,
    /// What it recorded.
    pub(crate) recorder: Recorder,
}

/// Runs `plan`. Worker `i` starts with a clone of `conns[i % conns.len()]`; each request is
/// made by `request(handle, request_index, rng)`, which gives the handle back with the
/// outcome, so no handle is cloned per request.
pub(crate) async fn run<C, F, Fut>(plan: &Plan, conns: &[C], request: F) -> RunOutput
where
    C: Clone + Send + 'static,
    F: Fn(C, u64, &mut SmallRng) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome<C>> + Send + 'static,
{
    assert!(!conns.is_empty(), "at least one connection");
    let parts = plan.parts.len().max(1);
    let shards: Arc<Vec<Mutex<Vec<Recorder>>>> = Arc::new(
        (0..SHARDS)
            .map(|_| Mutex::new(vec![Recorder::new(); parts]))
            .collect(),
    );
    let progress = (plan.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(plan.total);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] {per_sec}")
        {
            bar.set_style(style);
        }
        bar
    });
    let next = Arc::new(AtomicU64::new(0));
    let limiter = Arc::new(Limiter::new(plan.rate));
    let request = Arc::new(request);
    let total = plan.total;

    let cpu_before = CpuTimes::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for w in 0..plan.clients.max(1) {
        let mut conn = conns[w % conns.len()].clone();
        let (next, limiter, request) = (next.clone(), limiter.clone(), request.clone());
        let (shards, progress) = (shards.clone(), progress.clone());
        workers.spawn(async move {
            let mut rng = SmallRng::from_rng(&mut rand::rng());
            let shard = &shards[w % SHARDS];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                limiter.wait().await;
                let fut = request(conn, i, &mut rng);
                let t0 = Instant::now();
                let (back, part, result) = fut.await;
                let latency = t0.elapsed();
                conn = back;
                {
                    let mut recs = shard.lock().unwrap_or_else(|e| e.into_inner());
                    let rec = &mut recs[part.min(parts - 1)];
                    match result {
                        Ok(()) => rec.record_ok(t0 - start, latency),
                        Err(msg) => rec.record_err(&msg),
                    }
                }
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let elapsed = start.elapsed();
    let cpu = CpuTimes::now().since(cpu_before);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let mut merged = vec![Recorder::new(); parts];
    for shard in shards.iter() {
        let recs = shard.lock().unwrap_or_else(|e| e.into_inner());
        for (m, r) in merged.iter_mut().zip(recs.iter()) {
            m.merge(r);
        }
    }
    let names = if plan.parts.is_empty() {
        vec!["all"]
    } else {
        plan.parts.clone()
    };
    let several = names.len() > 1;
    RunOutput {
        elapsed,
        start_unix,
        cpu,
        parts: names
            .into_iter()
            .zip(merged)
            .map(|(name, recorder)| Part {
                name,
                title: several.then(|| format!("{} requests", capitalize(name))),
                elapsed,
                recorder,
            })
            .collect(),
        primary: None,
        notes: Vec::new(),
        scale: None,
        leases: None,
    }
}

impl RunOutput {
    /// All parts merged.
    pub(crate) fn combined(&self) -> Recorder {
        let mut all = Recorder::new();
        for p in &self.parts {
            all.merge(&p.recorder);
        }
        all
    }

    /// The `--json` document: the primary part's statistics (all parts merged when there is
    /// none), and each part's when there are several.
    pub(crate) fn json(
        &self,
        tool: &str,
        command: &str,
        clients: usize,
        conns: usize,
    ) -> JsonReport {
        let stats = match self.primary.and_then(|i| self.parts.get(i)) {
            Some(p) => p.recorder.stats(p.elapsed),
            None => self.combined().stats(self.elapsed),
        };
        let parts = if self.parts.len() > 1 {
            self.parts
                .iter()
                .map(|p| NamedStats {
                    name: p.name.to_owned(),
                    stats: p.recorder.stats(p.elapsed),
                })
                .collect()
        } else {
            Vec::new()
        };
        JsonReport {
            tool: tool.to_owned(),
            command: command.to_owned(),
            clients,
            conns,
            cpu: CpuReport::new(self.cpu, stats.total),
            stats,
            parts,
            scale: self.scale.clone(),
            leases: self.leases.clone(),
        }
    }

    /// The text report: one per part, under its title if it has one, then the notes.
    pub(crate) fn text(&self, opts: TextOptions) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if let Some(title) = &p.title {
                out.push_str(&format!("\n{title}:"));
            }
            out.push_str(&text_report(&p.recorder, p.elapsed, self.start_unix, opts));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for line in &self.notes {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_runs_once_on_its_workers_connection() {
        let plan = Plan {
            clients: 7,
            total: 1000,
            rate: 0.0,
            parts: vec!["read", "write"],
            progress: false,
        };
        let seen = Arc::new(Mutex::new(vec![0u32; 1000]));
        let conns = [0usize, 1, 2];
        let s = seen.clone();
        let out = run(&plan, &conns, move |conn: usize, i, _rng| {
            s.lock().unwrap()[i as usize] += 1;
            async move {
                let result = if i % 100 == 0 {
                    Err(format!("failed on conn {conn}"))
                } else {
                    Ok(())
                };
                (conn, (i % 2) as usize, result)
            }
        })
        .await;
        assert!(seen.lock().unwrap().iter().all(|&n| n == 1));
        let all = out.combined();
        assert_eq!((all.ok(), all.error_count()), (990, 10));
        assert_eq!(out.parts[0].name, "read");
        let read = &out.parts[0].recorder;
        assert_eq!(read.ok() + read.error_count(), 500);
        let json = out.json("t", "c", 7, 3);
        assert_eq!((json.stats.total, json.stats.ok), (1000, 990));
        assert_eq!(json.parts.len(), 2);
        let text = out.text(TextOptions::default());
        assert!(text.contains("Read requests:") && text.contains("Write requests:"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_bounds_throughput() {
        let plan = Plan {
            clients: 4,
            total: 21,
            rate: 100.0,
            parts: vec!["put"],
            progress: false,
        };
        let out = run(&plan, &[()], |c: (), _, _| async move { (c, 0, Ok(())) }).await;
        assert!(
            out.elapsed >= Duration::from_millis(195),
            "{:?}",
            out.elapsed
        );
        assert_eq!(out.combined().ok(), 21);
        assert!(out.json("t", "put", 4, 1).parts.is_empty());
    }
}
