//! `/metrics`: the server's counters, rendered as Prometheus text (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;

/// Upper bounds of the run latency histogram, in seconds: from a cached no-op run (well
/// under a millisecond) to runs that reach a wall limit of seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Counters kept by the server; gauges (workers, queue) are read when rendered.
#[derive(Default)]
pub struct Metrics {
    runs: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    rejections: BTreeMap<String, u64>,
    denials: BTreeMap<(String, String), u64>,
    restarts: BTreeMap<String, u64>,
    forged: BTreeMap<String, u64>,
    connections_refused: u64,
    /// Reloads (SIGHUP, `POST /v1/reload`) by result: `ok`, or `failed` when a manifest
    /// could not be loaded (the others may have been).
    reloads: BTreeMap<&'static str, u64>,
    /// Connections closed or requests refused by the front door, by reason.
    closed: BTreeMap<&'static str, u64>,
}

/// One identity's gauges at rendering time.
pub struct Gauges<'a> {
    pub name: &'a str,
    pub workers: usize,
    pub queued: usize,
    pub in_flight: usize,
}

impl Metrics {
    pub fn run(&mut self, name: &str, outcome: &str, seconds: f64) {
        *self.runs.entry((name.into(), outcome.into())).or_default() += 1;
        let h = self.latency.entry(name.into()).or_default();
        if h.buckets.is_empty() {
            h.buckets = vec![0; LATENCY_BUCKETS.len()];
        }
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn rejection(&mut self, name: &str) {
        *self.rejections.entry(name.into()).or_default() += 1;
    }

    pub fn denial(&mut self, name: &str, capability: &str) {
        *self
            .denials
            .entry((name.into(), capability.into()))
            .or_default() += 1;
    }

    pub fn restart(&mut self, name: &str) {
        *self.restarts.entry(name.into()).or_default() += 1;
    }

    /// A connection past `--max-connections`, closed as it was accepted.
    pub fn connection_refused(&mut self) {
        self.connections_refused += 1;
    }

    /// A connection closed (header or idle timeout) or a body refused (body memory) by the
    /// front door.
    pub fn connection_closed(&mut self, why: &'static str) {
        *self.closed.entry(why).or_default() += 1;
    }

    /// A reload ended: `ok` when every manifest loaded (or was unchanged).
    pub fn reload(&mut self, ok: bool) {
        *self
            .reloads
            .entry(if ok { "ok" } else { "failed" })
            .or_default() += 1;
    }

    pub fn forged(&mut self, name: &str) {
        *self.forged.entry(name.into()).or_default() += 1;
    }

    /// The Prometheus text of `GET /metrics`: the counters and histograms here, and the
    /// per-identity `gauges` read at the request.
    ///
    /// Kept whole: one metric family after another in the order they are exposed, each its
    /// `# HELP`, `# TYPE` and samples.
    pub fn render(&self, gauges: &[Gauges<'_>]) -> String {
        let mut o = String::new();
        let h = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        h(
            &mut o,
            "warden_runs_total",
            "counter",
            "Answered runs by identity and outcome.",
        );
        for ((name, outcome), n) in &self.runs {
            let _ = writeln!(
                o,
                "warden_runs_total{{identity=\"{}\",outcome=\"{}\"}} {n}",
                esc(name),
                esc(outcome)
            );
        }
        h(
            &mut o,
            "warden_run_seconds",
            "histogram",
            "Time from accepting a run request to its answer.",
        );
        for (name, hist) in &self.latency {
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&hist.buckets) {
                let _ = writeln!(
                    o,
                    "warden_run_seconds_bucket{{identity=\"{}\",le=\"{bound}\"}} {n}",
                    esc(name)
                );
            }
            let name = esc(name);
            let _ = writeln!(
                o,
                "warden_run_seconds_bucket{{identity=\"{name}\",le=\"+Inf\"}} {}",
                hist.count
            );
            let _ = writeln!(
                o,
                "warden_run_seconds_sum{{identity=\"{name}\"}} {}",
                hist.sum
            );
            let _ = writeln!(
                o,
                "warden_run_seconds_count{{identity=\"{name}\"}} {}",
                hist.count
            );
        }
        h(
            &mut o,
            "warden_rejections_total",
            "counter",
            "Run requests refused with 429 because the identity's queue was full.",
        );
        for (name, n) in &self.rejections {
            let _ = writeln!(
                o,
                "warden_rejections_total{{identity=\"{}\"}} {n}",
                esc(name)
            );
        }
        h(
            &mut o,
            "warden_denials_total",
            "counter",
            "Operations refused by the policy, by identity and capability.",
        );
        for ((name, cap), n) in &self.denials {
            let _ = writeln!(
                o,
                "warden_denials_total{{identity=\"{}\",capability=\"{}\"}} {n}",
                esc(name),
                esc(cap)
            );
        }
        h(
            &mut o,
            "warden_worker_restarts_total",
            "counter",
            "Worker processes that died (killed by their seccomp filter, the kernel, or the server past a wall limit) and were replaced.",
        );
        for (name, n) in &self.restarts {
            let _ = writeln!(
                o,
                "warden_worker_restarts_total{{identity=\"{}\"}} {n}",
                esc(name)
            );
        }
        h(
            &mut o,
            "warden_forged_records_total",
            "counter",
            "Audit records a worker sent for another identity or run (dropped).",
        );
        for (name, n) in &self.forged {
            let _ = writeln!(
                o,
                "warden_forged_records_total{{identity=\"{}\"}} {n}",
                esc(name)
            );
        }
        h(
            &mut o,
            "warden_connections_refused_total",
            "counter",
            "Client connections closed as they were accepted, past --max-connections.",
        );
        let _ = writeln!(
            o,
            "warden_connections_refused_total {}",
            self.connections_refused
        );
        h(
            &mut o,
            "warden_front_door_total",
            "counter",
            "Connections closed for a header or idle timeout, and bodies refused for the body memory bound.",
        );
        for (why, n) in &self.closed {
            let _ = writeln!(o, "warden_front_door_total{{reason=\"{}\"}} {n}", esc(why));
        }
        h(
            &mut o,
            "warden_reloads_total",
            "counter",
            "Reloads of the manifests (SIGHUP, POST /v1/reload): ok, or failed when one could not be loaded.",
        );
        for result in ["ok", "failed"] {
            let n = self.reloads.get(result).copied().unwrap_or(0);
            let _ = writeln!(o, "warden_reloads_total{{result=\"{result}\"}} {n}");
        }
        h(
            &mut o,
            "warden_workers",
            "gauge",
            "Worker processes by identity.",
        );
        for g in gauges {
            let _ = writeln!(
                o,
                "warden_workers{{identity=\"{}\"}} {}",
                esc(g.name),
                g.workers
            );
        }
        h(
            &mut o,
            "warden_queued_runs",
            "gauge",
            "Run requests waiting for a worker.",
        );
        for g in gauges {
            let _ = writeln!(
                o,
                "warden_queued_runs{{identity=\"{}\"}} {}",
                esc(g.name),
                g.queued
            );
        }
        h(
            &mut o,
            "warden_runs_in_flight",
            "gauge",
            "Runs a worker is running now.",
        );
        for g in gauges {
            let _ = writeln!(
                o,
                "warden_runs_in_flight{{identity=\"{}\"}} {}",
                esc(g.name),
                g.in_flight
            );
        }
        o
    }
}

/// A label value, escaped as the text format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
