//! Recording results and printing them: the Go tool's text report, or JSON.
//!
//! Latencies go into an HDR histogram (nanoseconds, 3 significant digits) for percentiles and
//! the response-time histogram; the fastest, slowest, average and standard deviation are
//! computed exactly from the raw values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::cpu::CpuTimes;
use super::lease::HoldReport;

/// The percentiles of the latency distribution, as in the Go tool.
pub(crate) const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// Number of equal-width buckets of the response-time histogram.
const HISTOGRAM_BUCKETS: usize = 10;

/// Longest bar of the response-time histogram, in characters.
const BAR_WIDTH: u64 = 40;

/// Results of one kind of request (e.g. "read" or "write"), possibly merged from several
/// recorders.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    hist: Histogram<u64>,
    ok: u64,
    sum_secs: f64,
    sum_sq_secs: f64,
    fastest: Duration,
    slowest: Duration,
    errors: BTreeMap<String, u64>,
    /// Per second since the start of the run: requests started in it and their latency sum.
    seconds: Vec<(u64, f64)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub(crate) fn new() -> Recorder {
        Recorder {
            // Auto-resizing, so any latency fits; 3 digits keep it small.
            hist: Histogram::new(3).expect("3 significant digits is a valid precision"),
            ok: 0,
            sum_secs: 0.0,
            sum_sq_secs: 0.0,
            fastest: Duration::MAX,
            slowest: Duration::ZERO,
            errors: BTreeMap::new(),
            seconds: Vec::new(),
        }
    }

    /// Records a successful request that started `started` after the run began and took
    /// `latency`.
    pub(crate) fn record_ok(&mut self, started: Duration, latency: Duration) {
        // The histogram cannot hold 0; a zero latency (an event that came before the put's
        // response) counts as 1 ns everywhere, so it lands in the first bucket.
        let latency = latency.max(Duration::from_nanos(1));
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if self.hist.record(ns).is_err() {
            self.hist.saturating_record(ns);
        }
        self.ok += 1;
        let secs = latency.as_secs_f64();
        self.sum_secs += secs;
        self.sum_sq_secs += secs * secs;
        self.fastest = self.fastest.min(latency);
        self.slowest = self.slowest.max(latency);
        let second = usize::try_from(started.as_secs()).unwrap_or(usize::MAX);
        if second < 1 << 24 {
            if self.seconds.len() <= second {
                self.seconds.resize(second + 1, (0, 0.0));
            }
            self.seconds[second].0 += 1;
            self.seconds[second].1 += secs;
        }
    }

    /// Records a failed request; errors are counted by their message.
    pub(crate) fn record_err(&mut self, message: &str) {
        self.record_errors(message, 1);
    }

    /// Records `count` failed requests with the same message.
    pub(crate) fn record_errors(&mut self, message: &str, count: u64) {
        if count == 0 {
            return;
        }
        match self.errors.get_mut(message) {
            Some(n) => *n += count,
            None => {
                self.errors.insert(message.to_owned(), count);
            }
        }
    }

    /// Adds everything `other` recorded.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        self.hist
            .add(&other.hist)
            .expect("auto-resizing histograms always merge");
        self.ok += other.ok;
        self.sum_secs += other.sum_secs;
        self.sum_sq_secs += other.sum_sq_secs;
        self.fastest = self.fastest.min(other.fastest);
        self.slowest = self.slowest.max(other.slowest);
        for (msg, n) in &other.errors {
            *self.errors.entry(msg.clone()).or_default() += n;
        }
        if self.seconds.len() < other.seconds.len() {
            self.seconds.resize(other.seconds.len(), (0, 0.0));
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(&other.seconds) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Number of successful requests.
    pub(crate) fn ok(&self) -> u64 {
        self.ok
    }

    /// Number of failed requests.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The summary statistics, for a run that took `elapsed`.
    pub(crate) fn stats(&self, elapsed: Duration) -> Stats {
        let errors = self.error_count();
        let elapsed_secs = elapsed.as_secs_f64();
        let latency = if self.ok == 0 {
            Latency::default()
        } else {
            let n = self.ok as f64;
            let average = self.sum_secs / n;
            let variance = (self.sum_sq_secs / n - average * average).max(0.0);
            let pct = |p: f64| {
                let ns = self.hist.value_at_quantile(p / 100.0);
                // HDR buckets round up; never report beyond the exact extremes.
                Duration::from_nanos(ns)
                    .clamp(self.fastest, self.slowest)
                    .as_secs_f64()
            };
            Latency {
                fastest: self.fastest.as_secs_f64(),
                slowest: self.slowest.as_secs_f64(),
                average,
                stddev: variance.sqrt(),
                p10: pct(10.0),
                p25: pct(25.0),
                p50: pct(50.0),
                p75: pct(75.0),
                p90: pct(90.0),
                p95: pct(95.0),
                p99: pct(99.0),
                p99_9: pct(99.9),
            }
        };
        Stats {
            total: self.ok + errors,
            ok: self.ok,
            errors,
            error_counts: self.errors.clone(),
            elapsed_secs,
            throughput: if elapsed_secs > 0.0 {
                self.ok as f64 / elapsed_secs
            } else {
                0.0
            },
            latency_secs: latency,
        }
    }

    /// The response-time histogram: `(upper bound in seconds, count)` for the fastest latency
    /// and then each of the equal-width buckets up to the slowest.
    pub(crate) fn histogram(&self) -> Vec<(f64, u64)> {
        if self.ok == 0 {
            return Vec::new();
        }
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let (fastest, slowest) = (nanos(self.fastest), nanos(self.slowest));
        let values = self.hist.iter_recorded().map(|v| {
            let at = v.value_iterated_to();
            // The buckets holding the extremes stand for the exact extremes.
            let ns = if self.hist.equivalent(at, fastest) {
                fastest
            } else if self.hist.equivalent(at, slowest) {
                slowest
            } else {
                self.hist.median_equivalent(at).clamp(fastest, slowest)
            };
            (ns as f64 / 1e9, v.count_at_value())
        });
        buckets(
            self.fastest.as_secs_f64(),
            self.slowest.as_secs_f64(),
            values,
        )
    }
}

/// Spreads `(latency, count)` pairs over the marks `fastest + k * width` (k = 0..=10, the last
/// one being `slowest`): each latency is counted at the first mark not below it.
fn buckets(
    fastest: f64,
    slowest: f64,
    values: impl Iterator<Item = (f64, u64)>,
) -> Vec<(f64, u64)> {
    let width = (slowest - fastest) / HISTOGRAM_BUCKETS as f64;
    let mut marks: Vec<(f64, u64)> = (0..HISTOGRAM_BUCKETS)
        .map(|k| (fastest + width * k as f64, 0))
        .collect();
    marks.push((slowest, 0));
    for (v, count) in values {
        let i = marks
            .iter()
            .position(|&(mark, _)| v <= mark)
            .unwrap_or(HISTOGRAM_BUCKETS);
        marks[i].1 += count;
    }
    marks
}

/// Summary statistics of one set of requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Stats {
    /// Requests completed, successful or not.
    pub(crate) total: u64,
    /// Successful requests.
    pub(crate) ok: u64,
    /// Failed requests.
    pub(crate) errors: u64,
    /// Failed requests by error message.
    pub(crate) error_counts: BTreeMap<String, u64>,
    /// Wall-clock time of the whole run.
    pub(crate) elapsed_secs: f64,
    /// Successful requests per second.
    pub(crate) throughput: f64,
    /// Latency of successful requests.
    pub(crate) latency_secs: Latency,
}

/// Latency figures in seconds; all zero when nothing succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub(crate) fastest: f64,
    pub(crate) slowest: f64,
    pub(crate) average: f64,
    pub(crate) stddev: f64,
    pub(crate) p10: f64,
    pub(crate) p25: f64,
    pub(crate) p50: f64,
    pub(crate) p75: f64,
    pub(crate) p90: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    #[serde(rename = "p99.9")]
    pub(crate) p99_9: f64,
}

impl Latency {
    fn percentiles(&self) -> [f64; 8] {
        [
            self.p10, self.p25, self.p50, self.p75, self.p90, self.p95, self.p99, self.p99_9,
        ]
    }
}

/// CPU time the client process used during the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CpuReport {
    pub(crate) user_secs: f64,
    pub(crate) sys_secs: f64,
    pub(crate) total_secs: f64,
    /// Microseconds of CPU (user + system) per completed request.
    pub(crate) per_op_us: f64,
}

impl CpuReport {
    /// CPU use `cpu` spread over `requests` requests.
    pub(crate) fn new(cpu: CpuTimes, requests: u64) -> CpuReport {
        let total = cpu.total().as_secs_f64();
        CpuReport {
            user_secs: cpu.user.as_secs_f64(),
            sys_secs: cpu.sys.as_secs_f64(),
            total_secs: total,
            per_op_us: if requests == 0 {
                0.0
            } else {
                total * 1e6 / requests as f64
            },
        }
    }
}

/// Statistics of one named part of a run (txn-mixed has "read" and "write").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NamedStats {
    pub(crate) name: String,
    #[serde(flatten)]
    pub(crate) stats: Stats,
}

/// The `--json` document: what ran, the statistics over all requests, CPU, and per-part
/// statistics when there is more than one part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JsonReport {
    /// Which program produced it.
    pub(crate) tool: String,
    /// The subcommand (workload).
    pub(crate) command: String,
    pub(crate) clients: usize,
    pub(crate) conns: usize,
    #[serde(flatten)]
    pub(crate) stats: Stats,
    pub(crate) cpu: CpuReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) parts: Vec<NamedStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scale: Option<ScaleReport>,
    /// What `lease-keepalive --leases` found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) leases: Option<HoldReport>,
}

/// What `watch-scale` found besides latencies: creation time and the client's memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ScaleReport {
    /// Watches asked for.
    pub(crate) watchers: u64,
    /// Watches etcd created.
    pub(crate) created: u64,
    /// From the first creation request to the last confirmation.
    pub(crate) create_secs: f64,
    /// This process's resident memory (VmRSS) before the first watch and after the last one
    /// was created; 0 when /proc does not say.
    pub(crate) rss_before_bytes: u64,
    pub(crate) rss_after_bytes: u64,
    /// The growth divided by the watches created.
    pub(crate) rss_per_watcher_bytes: f64,
    /// From the put to the last watch that got its event; `None` when some never did.
    pub(crate) deliver_secs: Option<f64>,
    /// Watches that got the event.
    pub(crate) delivered: u64,
}

/// How to print the text report.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TextOptions {
    /// Full float precision instead of 4 decimals (`--precise`).
    pub(crate) precise: bool,
    /// Add the per-second series (`--sample`).
    pub(crate) sample: bool,
}

fn secs(v: f64, opts: TextOptions) -> String {
    if opts.precise {
        format!("{v}")
    } else {
        format!("{v:.4}")
    }
}

/// The text report of one recorder, laid out as the Go tool's: summary, response-time
/// histogram, latency distribution, error distribution, and with `--sample` the per-second
/// series (`start_unix` is the run's start as a Unix time in seconds).
pub(crate) fn text_report(
    rec: &Recorder,
    elapsed: Duration,
    start_unix: u64,
    opts: TextOptions,
) -> String {
    let st = rec.stats(elapsed);
    let l = &st.latency_secs;
    let mut out = String::new();
    let _ = writeln!(out, "\nSummary:");
    let _ = writeln!(out, "  Total:\t{} secs.", secs(st.elapsed_secs, opts));
    let _ = writeln!(out, "  Slowest:\t{} secs.", secs(l.slowest, opts));
    let _ = writeln!(out, "  Fastest:\t{} secs.", secs(l.fastest, opts));
    let _ = writeln!(out, "  Average:\t{} secs.", secs(l.average, opts));
    let _ = writeln!(out, "  Stddev:\t{} secs.", secs(l.stddev, opts));
    let _ = writeln!(out, "  Requests/sec:\t{:.4}", st.throughput);

    let hist = rec.histogram();
    if !hist.is_empty() {
        let _ = writeln!(out, "\nResponse time histogram:");
        let max = hist.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1);
        for (mark, count) in hist {
            let bar = usize::try_from(count * BAR_WIDTH / max).unwrap_or(0);
            let _ = writeln!(
                out,
                "  {} [{count}]\t|{}",
                secs(mark, opts),
                "∎".repeat(bar)
            );
        }
        let _ = writeln!(out, "\nLatency distribution:");
        for (p, v) in PERCENTILES.iter().zip(l.percentiles()) {
            if v > 0.0 {
                let _ = writeln!(out, "  {p}% in {} secs.", secs(v, opts));
            }
        }
    }

    if !st.error_counts.is_empty() {
        let _ = writeln!(out, "\nError distribution:");
        for (msg, n) in &st.error_counts {
            let _ = writeln!(out, "  [{n}]\t{msg}");
        }
    }

    if opts.sample {
        let _ = writeln!(
            out,
            "\nSamples per second (unix second, average latency in secs, requests):"
        );
        for (i, &(count, sum)) in rec.seconds.iter().enumerate() {
            let avg = if count == 0 { 0.0 } else { sum / count as f64 };
            let _ = writeln!(
                out,
                "  {} {} {count}",
                start_unix + i as u64,
                secs(avg, opts)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn rec_of(lats: &[u64]) -> Recorder {
        let mut r = Recorder::new();
        for (i, &l) in lats.iter().enumerate() {
            r.record_ok(ms(i as u64 * 100), ms(l));
        }
        r
    }

    #[test]
    fn summary_math() {
        let r = rec_of(&[1, 2, 3, 4, 10]);
        let st = r.stats(Duration::from_secs(2));
        assert_eq!((st.total, st.ok, st.errors), (5, 5, 0));
        assert!((st.throughput - 2.5).abs() < 1e-9);
        let l = &st.latency_secs;
        assert_eq!((l.fastest, l.slowest), (0.001, 0.010));
        assert!((l.average - 0.004).abs() < 1e-12);
        // Population stddev of 1,2,3,4,10 ms: sqrt(10) ms.
        assert!(
            (l.stddev - 0.001 * 10f64.sqrt()).abs() < 1e-9,
            "{}",
            l.stddev
        );
        // Nearest-rank percentiles within HDR precision (0.1 %).
        let close = |a: f64, b: f64| (a - b).abs() <= b * 1e-3;
        assert!(close(l.p50, 0.003), "{}", l.p50);
        assert!(close(l.p10, 0.001), "{}", l.p10);
        assert!(close(l.p90, 0.010), "{}", l.p90);
        assert!(close(l.p99_9, 0.010), "{}", l.p99_9);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let lats: Vec<u64> = (1..=1000).collect();
        let l = rec_of(&lats).stats(Duration::from_secs(1)).latency_secs;
        for (p, v) in PERCENTILES.iter().zip(l.percentiles()) {
            let want = p / 100.0; // p% of 1..=1000 ms, in seconds
            assert!(
                (v - want).abs() <= want * 2e-3 + 1e-3,
                "p{p}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn errors_are_counted_by_message_and_excluded_from_latency() {
        let mut r = rec_of(&[5]);
        r.record_err("etcdserver: request timed out");
        r.record_err("etcdserver: request timed out");
        r.record_err("connection refused");
        let st = r.stats(Duration::from_secs(1));
        assert_eq!((st.total, st.ok, st.errors), (4, 1, 3));
        assert_eq!(st.error_counts["etcdserver: request timed out"], 2);
        assert_eq!(st.error_counts["connection refused"], 1);
        assert_eq!(st.latency_secs.average, 0.005);
        assert_eq!(st.throughput, 1.0);
    }

    #[test]
    fn empty_run_reports_zeros() {
        let st = Recorder::new().stats(Duration::ZERO);
        assert_eq!((st.total, st.throughput), (0, 0.0));
        assert_eq!(st.latency_secs, Latency::default());
        assert!(Recorder::new().histogram().is_empty());
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = rec_of(&[1, 2]);
        let mut b = rec_of(&[3, 4, 10]);
        b.record_err("x");
        a.merge(&b);
        let merged = a.stats(Duration::from_secs(1));
        let mut all = rec_of(&[1, 2, 3, 4, 10]);
        all.record_err("x");
        let direct = all.stats(Duration::from_secs(1));
        assert_eq!((merged.ok, merged.errors), (5, 1));
        assert_eq!(merged.error_counts, direct.error_counts);
        let (m, d) = (&merged.latency_secs, &direct.latency_secs);
        assert_eq!(
            (m.fastest, m.slowest, m.p50, m.p99),
            (d.fastest, d.slowest, d.p50, d.p99)
        );
        assert!((m.average - d.average).abs() < 1e-12);
        assert!((m.stddev - d.stddev).abs() < 1e-9);
        assert_eq!(a.seconds.iter().map(|s| s.0).sum::<u64>(), 5);
    }

    #[test]
    fn histogram_has_eleven_marks_from_fastest_to_slowest() {
        let marks = buckets(
            1.0,
            2.0,
            [(1.0, 1), (1.05, 2), (1.1, 3), (1.95, 4), (2.0, 5)].into_iter(),
        );
        assert_eq!(marks.len(), 11);
        assert_eq!(marks[0], (1.0, 1));
        assert!((marks[1].0 - 1.1).abs() < 1e-12);
        assert_eq!(marks[1].1, 5); // 1.05 and 1.1 both land at the 1.1 mark
        assert_eq!(marks[10], (2.0, 9));
        assert_eq!(marks.iter().map(|m| m.1).sum::<u64>(), 15);
        // All latencies equal: everything at the first mark.
        let same = buckets(0.5, 0.5, [(0.5, 7)].into_iter());
        assert_eq!(same[0], (0.5, 7));
        // The recorder's histogram accounts for every success.
        let r = rec_of(&[1, 2, 3, 4, 10]);
        assert_eq!(r.histogram().iter().map(|m| m.1).sum::<u64>(), 5);
    }

    #[test]
    fn text_report_has_the_go_sections() {
        let mut r = rec_of(&[1, 2, 3]);
        r.record_err("boom");
        let text = text_report(
            &r,
            Duration::from_secs(1),
            1_700_000_000,
            TextOptions {
                precise: false,
                sample: true,
            },
        );
        for needle in [
            "Summary:",
            "  Total:\t1.0000 secs.",
            "  Slowest:\t0.0030 secs.",
            "  Fastest:\t0.0010 secs.",
            "  Average:\t0.0020 secs.",
            "  Requests/sec:\t3.0000",
            "Response time histogram:",
            "  0.0010 [1]\t|",
            "Latency distribution:",
            "  50% in 0.0020 secs.",
            "  99.9% in 0.0030 secs.",
            "Error distribution:\n  [1]\tboom",
            "  1700000000 0.0020 3",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let precise = text_report(&r, Duration::from_secs(1), 0, TextOptions::default());
        assert!(!precise.contains("Samples"));
    }

    #[test]
    fn cpu_per_op() {
        let cpu = CpuTimes {
            user: Duration::from_millis(300),
            sys: Duration::from_millis(100),
        };
        let c = CpuReport::new(cpu, 1000);
        assert!((c.total_secs - 0.4).abs() < 1e-12);
        assert!((c.per_op_us - 400.0).abs() < 1e-9);
        assert_eq!(CpuReport::new(cpu, 0).per_op_us, 0.0);
    }
}
