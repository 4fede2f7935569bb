//! What the benches share (each includes this file with `#[path]`): the benchmark twins'
//! policy, runs of a twin in-process and as a native process, and the `warden` binary.
#![allow(dead_code)] // Each bench uses its own part.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden::{Input, Outcome, Policy, RunOptions, Sink, Workload};
use warden_guest_artifacts as guests;

/// The anonymous policy, running `module`, with room for long guest loops and large output.
pub fn policy(module: &str) -> Policy {
    let mut p = Policy::anonymous();
    p.module = Some(module.into());
    p.limits.memory = 512 << 20;
    p.limits.output = 1 << 30;
    p.limits.wall = Duration::from_secs(600);
    p
}

/// Runs `workload` once with `args` and `stdin`, stdout discarded; the time of the run
/// (a fresh store, instantiation and the guest's work). Panics unless the guest exits with 0.
pub fn run_wasm(workload: &Workload, args: &[String], stdin: Input) -> Duration {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = args.to_vec();
    opts.stdin = stdin;
    opts.stdout = Sink::Null;
    opts.stderr = Sink::Null;
    let started = Instant::now();
    let report = workload.run(opts).expect("run");
    let elapsed = started.elapsed();
    assert_eq!(report.outcome, Outcome::Exited(0), "wasm twin {args:?}");
    elapsed
}

/// Runs `workload` once with `args` and `stdin`; its stdout and stderr.
pub fn output_wasm(workload: &Workload, args: &[String], stdin: Input) -> (Vec<u8>, String) {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = args.to_vec();
    opts.stdin = stdin;
    let (out, err) = opts.capture_output();
    let report = workload.run(opts).expect("run");
    assert_eq!(
        report.outcome,
        Outcome::Exited(0),
        "wasm twin {args:?}: {}",
        err.text()
    );
    (out.bytes(), err.text())
}

/// Runs `program` with `args` as a whole process, stdin from `stdin` (else /dev/null), output
/// discarded; the time from spawn to exit. Panics unless it exits with 0.
pub fn run_process(program: &Path, args: &[String], stdin: Option<&Path>) -> Duration {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("open stdin")),
        None => Stdio::null(),
    });
    let started = Instant::now();
    let status = cmd.status().expect("spawn");
    let elapsed = started.elapsed();
    assert!(status.success(), "{} {args:?}: {status}", program.display());
    elapsed
}

/// Runs `program` with `args` as a whole process; its stdout and stderr.
pub fn output_process(program: &Path, args: &[String], stdin: Option<&Path>) -> (Vec<u8>, String) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("open stdin")),
        None => Stdio::null(),
    });
    let out = cmd.output().expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?}: {}: {stderr}",
        program.display(),
        out.status
    );
    (out.stdout, stderr)
}

/// The native twin's executable.
pub fn native_twins() -> &'static Path {
    Path::new(guests::BENCH_TWINS_NATIVE)
}

/// `words` as owned arguments, with `reps` appended when given.
pub fn args(words: &[&str], reps: Option<u64>) -> Vec<String> {
    let mut v: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    v.extend(reps.map(|r| r.to_string()));
    v
}

/// The `warden` binary for whole-process benches: `$WARDEN_BIN`, else `warden` in the folder
/// above this bench executable's (`target/release/warden` next to `target/release/deps/`),
/// else the one cargo built for this bench. `None`, with a message saying why, if none exists:
/// benches never build it.
pub fn warden_bin(bench: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("WARDEN_BIN") {
        Some(p) => vec![p.into()],
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("warden")))
            .into_iter()
            .chain(option_env!("CARGO_BIN_EXE_warden").map(PathBuf::from))
            .collect(),
    };
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    if found.is_none() {
        eprintln!(
            "{bench}: skipped: no warden binary (looked for {}); build it with \
             `cargo build --release -p warden-cli` or set WARDEN_BIN",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    found
}

/// A `warden` command with its own compiled-module cache in `cache_dir`.
pub fn warden_cmd(bin: &Path, cache_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("WARDEN_CACHE_DIR", cache_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs `cmd` to completion; the time from spawn to exit. Panics unless it exits with 0.
pub fn time_cmd(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd.status().expect("spawn");
    let elapsed = started.elapsed();
    assert!(status.success(), "{cmd:?}: {status}");
    elapsed
}
