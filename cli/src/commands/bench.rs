//! `warden bench`: a workload under warden against a native command, both as child processes.
//!
//! [`run`] runs the two commands alternately (native first in even rounds, warden first in odd
//! ones, so neither always gets the warmer cache), after unmeasured warm-up rounds. For every
//! measured run it records the wall time from spawn to exit and, from `wait4(2)`, the CPU time
//! (user + system) and peak resident memory of that one child. [`Report`] holds the statistics
//! (median and 90th percentile of the wall time, median CPU time, largest peak RSS) and renders
//! them as a table or JSON, with the ratio warden / native of each.
//!
//! The kernel counts in a child's peak RSS the peak RSS of the process that spawned it, at the
//! spawn (it is the memory the child starts from). So a command smaller than `warden bench`
//! itself shows `warden bench`'s few megabytes instead of its own: [`Summary::peak_rss_at_most`]
//! says when that happened, and the table then shows the figure as an upper bound (`≤`).
//!
//! Each run gets the same stdin (a file, or `/dev/null`); its stdout is discarded and its
//! stderr kept only to explain a failed run. Every run must exit with 0.

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use warden::{Manifest, Policy};

use crate::fail;

/// A command to run: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Cmd {
    /// Splits a command line into words the way a shell does in simple cases: whitespace
    /// separates words; `'…'` keeps everything inside as is; `"…"` too, except that `\"` and
    /// `\\` stand for `"` and `\`; outside quotes a backslash keeps the next character as is.
    /// No variables, globs, pipes or redirections.
    ///
    /// # Errors
    /// [`BenchError::BadCommand`] for an empty line or an unclosed quote.
    pub fn parse(line: &str) -> Result<Cmd, BenchError> {
        let words = split_words(line)?;
        let mut words = words.into_iter();
        let program = words
            .next()
            .ok_or_else(|| BenchError::BadCommand("the native command is empty".into()))?;
        Ok(Cmd {
            program: program.into(),
            args: words.collect(),
        })
    }

    /// The command line, for display: words with spaces or quotes are single-quoted.
    pub fn display(&self) -> String {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().cloned())
            .map(|w| {
                if !w.is_empty() && !w.contains([' ', '\t', '\n', '\'', '"', '\\']) {
                    w
                } else {
                    format!("'{}'", w.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The program and its arguments as JSON strings.
    fn to_json(&self) -> Value {
        let mut words = vec![Value::from(self.program.to_string_lossy().into_owned())];
        words.extend(self.args.iter().map(|a| Value::from(a.as_str())));
        Value::Array(words)
    }
}

fn split_words(line: &str) -> Result<Vec<String>, BenchError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(BenchError::BadCommand("unclosed `'`".into())),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(BenchError::BadCommand("unclosed `\"`".into())),
                        },
                        Some(c) => w.push(c),
                        None => return Err(BenchError::BadCommand("unclosed `\"`".into())),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(c) = chars.next() {
                    w.push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Finds a program as a shell does: a name with a `/` is a path (relative to the current
/// folder); any other name is looked up in the folders of `PATH`. `None` unless it names an
/// executable file.
pub fn resolve_program(program: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.to_string_lossy().contains('/') {
        return executable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Why a benchmark could not be run or finished.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--native: {0}")]
    BadCommand(String),
    #[error("native command not found: {0}")]
    NotFound(String),
    #[error("--stdin {}: {source}", path.display())]
    Stdin { path: PathBuf, source: io::Error },
    #[error("cannot run the {side} command `{command}`: {source}")]
    Spawn {
        side: Side,
        command: String,
        source: io::Error,
    },
    /// A run exited with something other than 0; `detail` is the last line of its stderr.
    #[error(
        "the {side} command failed ({status}) in {phase} {round}{}",
        detail_suffix(detail)
    )]
    Failed {
        side: Side,
        status: String,
        phase: &'static str,
        round: usize,
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Which of the two commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Native,
    Warden,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Native => "native",
            Side::Warden => "warden",
        })
    }
}

/// What to compare, and how often.
#[derive(Debug, Clone)]
pub struct Spec {
    pub native: Cmd,
    /// The warden side: typically this executable with `run …`.
    pub warden: Cmd,
    /// Measured runs of each command.
    pub runs: usize,
    /// Unmeasured runs of each command before the measured ones.
    pub warmup: usize,
    /// Every run's stdin; `/dev/null` when `None`.
    pub stdin: Option<PathBuf>,
}

/// Where the benchmark is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Whether this round is a warm-up.
    pub warmup: bool,
    /// This round's number among its kind, from 1.
    pub round: usize,
    /// How many rounds of its kind there are.
    pub of: usize,
}

/// What one run cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// From spawn to exit.
    pub wall: Duration,
    /// User + system CPU time of the child.
    pub cpu: Duration,
    /// The child's peak resident set size, in bytes, as `wait4(2)` reports it.
    pub max_rss: u64,
    /// The spawning process's own peak RSS at the spawn, in bytes, which the kernel counts in
    /// the child's too: a `max_rss` no larger than this says only that the child's own peak
    /// was at most this much. Zero where unknown.
    pub rss_floor: u64,
}

/// The statistics of one command's measured runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub wall_median: Duration,
    pub wall_p90: Duration,
    pub cpu_median: Duration,
    /// The largest peak RSS of any run, in bytes.
    pub peak_rss: u64,
    /// The largest [`Sample::rss_floor`] of any run, in bytes.
    pub rss_floor: u64,
    /// Every run, in the order they ran.
    pub samples: Vec<Sample>,
}

impl Summary {
    /// The statistics of `samples` (at least one).
    pub fn of(samples: Vec<Sample>) -> Summary {
        let wall: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        let cpu: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
        Summary {
            wall_median: median(&wall),
            wall_p90: percentile(&wall, 90),
            cpu_median: median(&cpu),
            peak_rss: samples.iter().map(|s| s.max_rss).max().unwrap_or(0),
            rss_floor: samples.iter().map(|s| s.rss_floor).max().unwrap_or(0),
            samples,
        }
    }

    /// Whether `peak_rss` is only an upper bound: no run's peak exceeded what the kernel
    /// counted for it from the spawning process.
    pub fn peak_rss_at_most(&self) -> bool {
        self.peak_rss <= self.rss_floor
    }

    fn to_json(&self, command: &Cmd) -> Value {
        json!({
            "command": command.to_json(),
            "wall_median_ms": ms(self.wall_median),
            "wall_p90_ms": ms(self.wall_p90),
            "cpu_median_ms": ms(self.cpu_median),
            "peak_rss_bytes": self.peak_rss,
            "peak_rss_at_most": self.peak_rss_at_most(),
            "rss_floor_bytes": self.rss_floor,
            "wall_ms": self.samples.iter().map(|s| ms(s.wall)).collect::<Vec<_>>(),
            "cpu_ms": self.samples.iter().map(|s| ms(s.cpu)).collect::<Vec<_>>(),
            "max_rss_bytes": self.samples.iter().map(|s| s.max_rss).collect::<Vec<_>>(),
        })
    }
}

fn ms(d: Duration) -> f64 {
    // Microsecond precision is all wait4 gives for CPU time; keep the JSON short.
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The median: the middle value, or the mean of the two middle ones. Zero for no values.
pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// The `p`th percentile by the nearest-rank method: the smallest value that at least `p`% of
/// the values are no larger than. Zero for no values.
pub fn percentile(values: &[Duration], p: u32) -> Duration {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = (v.len() * p.min(100) as usize).div_ceil(100).max(1);
    v[rank - 1]
}

/// The result of a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub runs: usize,
    pub warmup: usize,
    pub native_cmd: Cmd,
    pub warden_cmd: Cmd,
    pub native: Summary,
    pub warden: Summary,
}

/// warden / native, per statistic; `None` where native's value is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    pub wall_median: Option<f64>,
    pub wall_p90: Option<f64>,
    pub cpu_median: Option<f64>,
    /// Also `None` when both peaks are only upper bounds ([`Summary::peak_rss_at_most`]).
    pub peak_rss: Option<f64>,
}

fn ratio(warden: f64, native: f64) -> Option<f64> {
    (native > 0.0).then(|| warden / native)
}

impl Report {
    /// The ratios warden / native.
    pub fn ratios(&self) -> Ratios {
        let (w, n) = (&self.warden, &self.native);
        let secs = |d: Duration| d.as_secs_f64();
        Ratios {
            wall_median: ratio(secs(w.wall_median), secs(n.wall_median)),
            wall_p90: ratio(secs(w.wall_p90), secs(n.wall_p90)),
            cpu_median: ratio(secs(w.cpu_median), secs(n.cpu_median)),
            peak_rss: ratio(w.peak_rss as f64, n.peak_rss as f64)
                .filter(|_| !(w.peak_rss_at_most() && n.peak_rss_at_most())),
        }
    }

    /// A table: a row for native, one for warden and one for the ratios, after two lines
    /// naming the commands.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let warmup = match self.warmup {
            0 => "no warm-up".to_string(),
            1 => "after 1 warm-up run each".to_string(),
            n => format!("after {n} warm-up runs each"),
        };
        let _ = writeln!(out, "{} runs each, alternating, {warmup}", self.runs);
        let _ = writeln!(out, "native: {}", self.native_cmd.display());
        let _ = writeln!(out, "warden: {}", self.warden_cmd.display());
        let _ = writeln!(out);
        let header = ["", "wall median", "wall p90", "cpu median", "peak rss"];
        let at_most = |s: &Summary| if s.peak_rss_at_most() { "≤ " } else { "" };
        let row = |s: &Summary| {
            [
                format_duration(s.wall_median),
                format_duration(s.wall_p90),
                format_duration(s.cpu_median),
                format!("{}{}", at_most(s), format_size(s.peak_rss)),
            ]
        };
        let r = self.ratios();
        let mut ratios = [r.wall_median, r.wall_p90, r.cpu_median, r.peak_rss].map(format_ratio);
        // An upper bound over a true value is an upper bound, and the other way round.
        match (
            self.warden.peak_rss_at_most(),
            self.native.peak_rss_at_most(),
        ) {
            (true, false) => ratios[3] = format!("≤ {}", ratios[3]),
            (false, true) => ratios[3] = format!("≥ {}", ratios[3]),
            _ => {}
        }
        let rows = [
            ("native", row(&self.native)),
            ("warden", row(&self.warden)),
            ("warden/native", ratios),
        ];
        let _ = writeln!(
            out,
            "{:<13}  {:>11}  {:>11}  {:>11}  {:>11}",
            header[0], header[1], header[2], header[3], header[4]
        );
        for (name, cells) in rows {
            let _ = writeln!(
                out,
                "{name:<13}  {:>11}  {:>11}  {:>11}  {:>11}",
                cells[0], cells[1], cells[2], cells[3]
            );
        }
        if self.native.peak_rss_at_most() || self.warden.peak_rss_at_most() {
            let floor = self.native.rss_floor.max(self.warden.rss_floor);
            let _ = writeln!(
                out,
                "\n≤: at most; the kernel counts warden bench's own {} in the peak RSS of \
                 what it runs",
                format_size(floor)
            );
        }
        out
    }

    /// The report as JSON: `runs`, `warmup`, `native` and `warden` (each with its `command`,
    /// statistics in milliseconds and bytes, and every run's figures) and `ratio`.
    pub fn to_json(&self) -> Value {
        let r = self.ratios();
        json!({
            "runs": self.runs,
            "warmup": self.warmup,
            "native": self.native.to_json(&self.native_cmd),
            "warden": self.warden.to_json(&self.warden_cmd),
            "ratio": {
                "wall_median": r.wall_median,
                "wall_p90": r.wall_p90,
                "cpu_median": r.cpu_median,
                "peak_rss": r.peak_rss,
            },
        })
    }
}

/// A duration with three significant digits: `812 µs`, `12.3 ms`, `1.23 s`.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    let (value, unit) = if us < 1e3 {
        (us, "µs")
    } else if us < 1e6 {
        (us / 1e3, "ms")
    } else {
        (us / 1e6, "s")
    };
    format!("{} {unit}", three_digits(value))
}

/// A byte count with three significant digits: `812 B`, `12.3 KiB`, `1.23 MiB`.
pub fn format_size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1000.0 || unit == "GiB" {
            return format!("{} {unit}", three_digits(value));
        }
        value /= 1024.0;
    }
    unreachable!("GiB ends the loop")
}

fn format_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{r:.2}x"),
        None => "-".into(),
    }
}

fn three_digits(v: f64) -> String {
    if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Runs the benchmark: `spec.warmup` unmeasured rounds, then `spec.runs` measured ones, each
/// round running both commands once (native first in even rounds, warden first in odd ones).
/// `progress` is told each round before it starts. Resets this process's own peak RSS first
/// (see the [module docs](self)).
///
/// # Errors
/// A command could not be started or exited with something other than 0, or the stdin file
/// cannot be opened.
pub fn run(spec: &Spec, progress: &mut dyn FnMut(Progress)) -> Result<Report, BenchError> {
    reset_own_peak_rss();
    let mut native = Vec::with_capacity(spec.runs);
    let mut warden = Vec::with_capacity(spec.runs);
    let rounds = (0..spec.warmup)
        .map(|i| (true, i, spec.warmup))
        .chain((0..spec.runs).map(|i| (false, i, spec.runs)));
    for (n, (warmup, i, of)) in rounds.enumerate() {
        progress(Progress {
            warmup,
            round: i + 1,
            of,
        });
        let order = if n % 2 == 0 {
            [Side::Native, Side::Warden]
        } else {
            [Side::Warden, Side::Native]
        };
        for side in order {
            let cmd = match side {
                Side::Native => &spec.native,
                Side::Warden => &spec.warden,
            };
            let phase = if warmup { "warm-up run" } else { "run" };
            let sample = run_once(cmd, side, spec.stdin.as_deref(), phase, i + 1)?;
            if !warmup {
                match side {
                    Side::Native => native.push(sample),
                    Side::Warden => warden.push(sample),
                }
            }
        }
    }
    Ok(Report {
        runs: spec.runs,
        warmup: spec.warmup,
        native_cmd: spec.native.clone(),
        warden_cmd: spec.warden.clone(),
        native: Summary::of(native),
        warden: Summary::of(warden),
    })
}

fn run_once(
    cmd: &Cmd,
    side: Side,
    stdin: Option<&Path>,
    phase: &'static str,
    round: usize,
) -> Result<Sample, BenchError> {
    let stdin = match stdin {
        Some(path) => Stdio::from(File::open(path).map_err(|source| BenchError::Stdin {
            path: path.to_owned(),
            source,
        })?),
        None => Stdio::null(),
    };
    let spawn_err = |source| BenchError::Spawn {
        side,
        command: cmd.display(),
        source,
    };
    // stderr goes to an unnamed temporary file, read only if the run fails.
    let mut stderr = tempfile::tempfile().map_err(spawn_err)?;
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().map_err(spawn_err)?);
    let rss_floor = own_peak_rss();
    let started = Instant::now();
    let child = command.spawn().map_err(spawn_err)?;
    let (status, usage) = wait_with_usage(child).map_err(spawn_err)?;
    let wall = started.elapsed();
    drop(command);
    if !status.success() {
        let mut text = String::new();
        let _ = stderr.rewind();
        let _ = stderr.read_to_string(&mut text);
        let detail = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        return Err(BenchError::Failed {
            side,
            status: describe_status(status),
            phase,
            round,
            detail: detail.chars().take(300).collect(),
        });
    }
    Ok(Sample {
        wall,
        cpu: usage.cpu,
        max_rss: usage.max_rss,
        rss_floor,
    })
}

/// This process's peak RSS so far (`VmHWM`), in bytes; zero where unknown.
fn own_peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Lowers this process's recorded peak RSS to its current RSS (Linux's `clear_refs`), so that
/// a peak it had earlier does not count in the children's. Best effort.
fn reset_own_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// What `wait4(2)` reports a child used.
struct Usage {
    cpu: Duration,
    max_rss: u64,
}

/// Waits for `child` to exit and returns its status and what it used, from `wait4(2)`: std
/// offers no way to get a child's resource usage, and `getrusage(RUSAGE_CHILDREN)` would sum
/// all children and give the largest peak RSS of any of them, not this one's.
#[allow(unsafe_code)] // Two libc calls: wait4 and a zeroed `rusage` for it to fill in.
fn wait_with_usage(child: Child) -> io::Result<(ExitStatus, Usage)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("child pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers (and `timeval`s of integers), for which
    // all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are live, writable and of the types wait4 writes.
        // `pid` is our own child and has not been reaped: only `Child::wait`/`try_wait` would
        // reap it and `child` is never used again, so the pid cannot name another process.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    drop(child);
    let timeval = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    // Linux reports ru_maxrss in KiB; the BSDs' and macOS's in bytes.
    let rss_unit = if cfg!(any(target_os = "macos", target_os = "ios")) {
        1
    } else {
        1024
    };
    Ok((
        ExitStatus::from_raw(status),
        Usage {
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * rss_unit,
        },
    ))
}

/// Shows [`Progress`] on stderr once a benchmark has taken more than a second: in place on a
/// terminal (`run 7/20`), else one line per round.
#[derive(Debug)]
pub struct ProgressLine {
    started: Instant,
    terminal: bool,
    shown: bool,
}

impl Default for ProgressLine {
    fn default() -> Self {
        ProgressLine::new()
    }
}

impl ProgressLine {
    /// Starts the clock.
    pub fn new() -> ProgressLine {
        ProgressLine {
            started: Instant::now(),
            terminal: io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Shows where the benchmark is, if it has been running for more than a second.
    pub fn update(&mut self, p: Progress) {
        if self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let what = if p.warmup { "warm-up" } else { "run" };
        let mut err = io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[Kwarden bench: {what} {}/{}", p.round, p.of);
        } else {
            let _ = writeln!(err, "warden bench: {what} {}/{}", p.round, p.of);
        }
        let _ = err.flush();
        self.shown = true;
    }

    /// Clears the progress from a terminal.
    pub fn finish(&mut self) {
        if self.terminal && self.shown {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
        self.shown = false;
    }
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The manifest the workload runs under.
    #[arg(long, short = 'm', value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// The native command to compare with, as one string: "PROGRAM ARGS..." (split into
    /// words at whitespace; quotes group words, as in a shell).
    #[arg(long, value_name = "CMD ARGS")]
    native: String,
    /// Measured runs of each.
    #[arg(short = 'n', long = "runs", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Unmeasured runs of each first.
    #[arg(long, value_name = "W", default_value_t = 1)]
    warmup: u32,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Every run's stdin (default: /dev/null). The guest reads it only if its manifest grants
    /// `[stdio] stdin = "inherit"`.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// The module to run; overrides the manifest's `[workload] module`.
    module: Option<PathBuf>,
    /// Arguments for the guest, appended to the manifest's `[workload] args`.
    #[arg(last = true)]
    args: Vec<String>,
}

/// `warden bench`: checks what it can before the first run, so that a typo is a one-line error
/// rather than a failed run; the loop, statistics and rendering are in `bench`.
pub(crate) fn bench(args: BenchArgs) -> ExitCode {
    let policy = match &args.manifest {
        Some(path) => match Manifest::from_file(path) {
            Ok(m) => Policy::from_manifest(m),
            Err(e) => return fail(e),
        },
        None => Policy::anonymous(),
    };
    match args.module.as_ref().or(policy.module.as_ref()) {
        None => {
            return fail("no module to run: give MODULE or set [workload] module in the manifest");
        }
        // The file itself is read by each `warden run`; here only whether it is one (a
        // metadata lookup, which does not block on a FIFO).
        Some(m) => match std::fs::metadata(m) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return fail(format!("{}: module not found", m.display()));
            }
            Err(e) => return fail(format!("{}: cannot read module: {e}", m.display())),
            Ok(meta) if !meta.is_file() => {
                return fail(format!(
                    "{}: cannot read module: not a regular file",
                    m.display()
                ));
            }
            Ok(_) => {}
        },
    }
    let mut native = match Cmd::parse(&args.native) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    native.program = match resolve_program(&native.program) {
        Some(p) => p,
        None => {
            let program = native.program.display().to_string();
            return fail(BenchError::NotFound(program));
        }
    };
    if let Some(path) = &args.stdin {
        if let Err(e) = std::fs::File::open(path) {
            return fail(format!("--stdin {}: {e}", path.display()));
        }
        if policy.stdio.stdin != warden::manifest::StdinMode::Inherit {
            eprintln!(
                "warden: warning: --stdin: the manifest does not grant stdin ([stdio] stdin = \"inherit\"), so the guest reads nothing"
            );
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot find the warden executable: {e}")),
    };
    let mut run_args = vec!["run".to_string()];
    if let Some(m) = &args.manifest {
        run_args.extend(["--manifest".to_string(), m.display().to_string()]);
    }
    if let Some(m) = &args.module {
        run_args.push(m.display().to_string());
    }
    if !args.args.is_empty() {
        run_args.push("--".into());
        run_args.extend(args.args);
    }
    let spec = Spec {
        native,
        warden: Cmd {
            program: exe,
            args: run_args,
        },
        runs: args.runs as usize,
        warmup: args.warmup as usize,
        stdin: args.stdin,
    };
    let mut progress = ProgressLine::new();
    let result = run(&spec, &mut |p| progress.update(p));
    progress.finish();
    let text = match result {
        Ok(report) if args.json => format!("{:#}\n", report.to_json()),
        Ok(report) => report.render_table(),
        Err(e) => return fail(e),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(wall: u64, cpu: u64, rss_kib: u64) -> Sample {
        Sample {
            wall: ms(wall),
            cpu: ms(cpu),
            max_rss: rss_kib * 1024,
            rss_floor: 1024 * 1024,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(median(&[ms(7)]), ms(7));
        assert_eq!(median(&[ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(&[ms(4), ms(1), ms(10), ms(2)]), ms(3));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let ten: Vec<Duration> = (1..=10).rev().map(ms).collect();
        assert_eq!(percentile(&ten, 90), ms(9));
        assert_eq!(percentile(&ten, 50), ms(5));
        assert_eq!(percentile(&ten, 100), ms(10));
        assert_eq!(percentile(&ten, 0), ms(1));
        assert_eq!(percentile(&[ms(3), ms(1), ms(2)], 90), ms(3));
        let twenty: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&twenty, 90), ms(18));
        assert_eq!(percentile(&[], 90), Duration::ZERO);
    }

    #[test]
    fn summary_takes_medians_and_the_largest_rss() {
        let s = Summary::of(vec![
            sample(10, 8, 100),
            sample(30, 9, 300),
            sample(20, 7, 200),
        ]);
        assert_eq!(s.wall_median, ms(20));
        assert_eq!(s.wall_p90, ms(30));
        assert_eq!(s.cpu_median, ms(8));
        assert_eq!(s.peak_rss, 300 * 1024);
        assert_eq!(s.samples.len(), 3);
    }

    fn report() -> Report {
        Report {
            runs: 3,
            warmup: 1,
            native_cmd: Cmd::parse("/bin/hello world").unwrap(),
            warden_cmd: Cmd::parse("/usr/bin/warden run 'my guest.wasm'").unwrap(),
            native: Summary::of(vec![
                sample(2, 1, 2048),
                sample(2, 1, 2048),
                sample(4, 2, 1024),
            ]),
            warden: Summary::of(vec![
                sample(5, 4, 30720),
                sample(6, 5, 30720),
                sample(7, 6, 30720),
            ]),
        }
    }

    #[test]
    fn ratios_are_warden_over_native() {
        let r = report().ratios();
        assert_eq!(r.wall_median, Some(3.0));
        assert_eq!(r.wall_p90, Some(7.0 / 4.0));
        assert_eq!(r.cpu_median, Some(5.0));
        assert_eq!(r.peak_rss, Some(15.0));
        let mut zero = report();
        zero.native.cpu_median = Duration::ZERO;
        assert_eq!(zero.ratios().cpu_median, None);
    }

    #[test]
    fn table_has_a_row_per_side_and_the_ratios() {
        let table = report().render_table();
        let expected = "\
3 runs each, alternating, after 1 warm-up run each
native: /bin/hello world
warden: /usr/bin/warden run 'my guest.wasm'

               wall median     wall p90   cpu median     peak rss
native             2.00 ms      4.00 ms      1.00 ms     2.00 MiB
warden             6.00 ms      7.00 ms      5.00 ms     30.0 MiB
warden/native        3.00x        1.75x        5.00x       15.00x
";
        assert_eq!(table, expected);
        let mut zero = report();
        zero.native.cpu_median = Duration::ZERO;
        assert!(
            zero.render_table()
                .lines()
                .last()
                .unwrap()
                .contains("  -  ")
        );
    }

    #[test]
    fn a_peak_rss_within_the_floor_is_an_upper_bound() {
        let mut r = report();
        r.native = Summary::of(vec![sample(2, 1, 700), sample(2, 1, 1024)]);
        assert!(r.native.peak_rss_at_most());
        assert!(!r.warden.peak_rss_at_most());
        let table = r.render_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[5].ends_with("≤ 1.00 MiB"), "{table}");
        assert!(lines[7].ends_with("≥ 30.00x"), "{table}");
        assert_eq!(
            lines[9],
            "≤: at most; the kernel counts warden bench's own 1.00 MiB in the peak RSS of what \
             it runs"
        );
        let v = r.to_json();
        assert_eq!(v["native"]["peak_rss_at_most"], true);
        assert_eq!(v["native"]["rss_floor_bytes"], 1024 * 1024);
        assert_eq!(v["warden"]["peak_rss_at_most"], false);
        assert_eq!(v["ratio"]["peak_rss"], 30.0);
        // Two upper bounds make no ratio.
        r.warden = r.native.clone();
        assert_eq!(r.ratios().peak_rss, None);
        assert!(!report().render_table().contains('≤'));
    }

    #[test]
    fn json_has_both_sides_and_the_ratios() {
        let v = report().to_json();
        assert_eq!(v["runs"], 3);
        assert_eq!(v["warmup"], 1);
        assert_eq!(v["native"]["command"], json!(["/bin/hello", "world"]));
        assert_eq!(v["native"]["wall_median_ms"], 2.0);
        assert_eq!(v["native"]["wall_ms"], json!([2.0, 2.0, 4.0]));
        assert_eq!(v["warden"]["wall_p90_ms"], 7.0);
        assert_eq!(v["warden"]["cpu_median_ms"], 5.0);
        assert_eq!(v["warden"]["peak_rss_bytes"], 30 * 1024 * 1024);
        assert_eq!(v["ratio"]["wall_median"], 3.0);
        assert_eq!(v["ratio"]["peak_rss"], 15.0);
    }

    #[test]
    fn formats_with_three_significant_digits() {
        assert_eq!(format_duration(Duration::from_micros(812)), "812 µs");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(format_duration(Duration::from_micros(1_234_567)), "1.23 s");
        assert_eq!(format_duration(Duration::from_micros(999_999)), "1000 ms");
        assert_eq!(format_size(812), "812 B");
        assert_eq!(format_size(12_595), "12.3 KiB");
        assert_eq!(format_size(3 << 30), "3.00 GiB");
        assert_eq!(format_ratio(Some(1.234)), "1.23x");
        assert_eq!(format_ratio(None), "-");
    }

    #[test]
    fn splits_command_lines_like_a_shell() {
        let words = |s: &str| split_words(s).unwrap();
        assert_eq!(words("  a  b\tc "), ["a", "b", "c"]);
        assert_eq!(
            words(r#"x 'a b' "c \"d\" \\ \e" f\ g"#),
            ["x", "a b", r#"c "d" \ \e"#, "f g"]
        );
        assert_eq!(words("a''b ''"), ["ab", ""]);
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(Cmd::parse("   ").is_err());
        let cmd = Cmd::parse("prog --flag 'two words'").unwrap();
        assert_eq!(cmd.program, PathBuf::from("prog"));
        assert_eq!(cmd.args, ["--flag", "two words"]);
        assert_eq!(cmd.display(), "prog --flag 'two words'");
        assert_eq!(Cmd::parse("p \"it's\"").unwrap().display(), r"p 'it'\''s'");
    }

    #[test]
    fn resolves_programs_like_a_shell() {
        assert!(resolve_program(Path::new("sh")).is_some());
        assert_eq!(
            resolve_program(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve_program(Path::new("no-such-program-here")), None);
        // Not executable.
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(resolve_program(file.path()), None);
        assert_eq!(resolve_program(Path::new("")), None);
    }

    #[test]
    fn runs_both_commands_alternately_and_measures_them() {
        let spec = Spec {
            native: Cmd::parse("true").unwrap(),
            warden: Cmd::parse("sh -c 'exit 0'").unwrap(),
            runs: 3,
            warmup: 2,
            stdin: None,
        };
        let mut seen = Vec::new();
        let report = run(&spec, &mut |p| seen.push((p.warmup, p.round, p.of))).unwrap();
        assert_eq!(
            seen,
            [
                (true, 1, 2),
                (true, 2, 2),
                (false, 1, 3),
                (false, 2, 3),
                (false, 3, 3)
            ]
        );
        assert_eq!(report.native.samples.len(), 3);
        assert_eq!(report.warden.samples.len(), 3);
        assert!(
            report
                .native
                .samples
                .iter()
                .all(|s| s.wall > Duration::ZERO)
        );
        assert!(report.warden.peak_rss > 0);
    }

    #[test]
    fn a_failed_run_is_an_error_with_its_last_stderr_line() {
        let spec = Spec {
            native: Cmd::parse("true").unwrap(),
            warden: Cmd::parse("sh -c 'echo first >&2; echo oops >&2; exit 3'").unwrap(),
            runs: 2,
            warmup: 0,
            stdin: None,
        };
        let e = run(&spec, &mut |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the warden command failed (exit code 3) in run 1: oops"
        );
    }

    #[test]
    fn each_run_gets_the_stdin_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "expected\n").unwrap();
        let check = "sh -c 'read line && test \"$line\" = expected'";
        let spec = Spec {
            native: Cmd::parse(check).unwrap(),
            warden: Cmd::parse(check).unwrap(),
            runs: 2,
            warmup: 1,
            stdin: Some(input),
        };
        run(&spec, &mut |_| {}).unwrap();
        // Without it, stdin is /dev/null: `read` sees end of file and fails.
        let spec = Spec {
            stdin: None,
            ..spec
        };
        assert!(matches!(
            run(&spec, &mut |_| {}),
            Err(BenchError::Failed {
                side: Side::Native,
                ..
            })
        ));
    }
}
