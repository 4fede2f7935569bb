//! `warden learn`: a run under BROAD, recorded, and the narrowest manifest that allows what it
//! did (the analysis is `warden_cli::learn`'s).

use std::path::PathBuf;
use std::process::ExitCode;
use warden::{Manifest, Policy};

use super::run::signal_flag;
use crate::{EXIT_START_FAILED, fail};

#[derive(clap::Args)]
pub(crate) struct LearnArgs {
    /// The upper bound: nothing outside it is allowed while learning, nor learned.
    #[arg(long, short = 'm', value_name = "BROAD.toml")]
    manifest: PathBuf,
    /// Where to write the learned manifest (replaced, unless --append).
    #[arg(long, value_name = "LEARNED.toml")]
    out: PathBuf,
    /// Merge with the grants of an existing LEARNED (the union of this run and earlier ones).
    #[arg(long)]
    append: bool,
    /// Compile in memory instead of using the compiled-module cache.
    #[arg(long)]
    no_cache: bool,
    /// The module to run; overrides the manifest's `[workload] module`.
    module: Option<PathBuf>,
    /// Arguments for the guest, appended to the manifest's `[workload] args`.
    #[arg(last = true)]
    args: Vec<String>,
}

/// The private folder (mode 0700, a random name) that holds the learning run's audit log,
/// which learn then reads: in the temporary folder, or in warden's cache folder when a grant
/// of BROAD reaches the temporary folder, for the run must not be able to forge or replace
/// what learn reads. Refused when every candidate is within reach of a grant.
fn learn_work_dir(broad: &Policy) -> Result<tempfile::TempDir, String> {
    let reachable = |dir: &std::path::Path| {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        broad.files.iter().any(|g| dir.starts_with(&g.host))
    };
    let mut candidates = vec![std::env::temp_dir()];
    if let Some(cache) = warden::ModuleCache::user_default() {
        candidates.push(cache.dir().to_path_buf());
    }
    for base in candidates {
        if reachable(&base) {
            continue;
        }
        if std::fs::create_dir_all(&base).is_err() {
            continue;
        }
        match tempfile::Builder::new()
            .prefix("warden-learn-")
            .tempdir_in(&base)
        {
            Ok(d) if !reachable(d.path()) => return Ok(d),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "cannot make a private folder for the learning run's audit log in {}: {e}",
                    base.display()
                ));
            }
        }
    }
    Err(
        "every folder where learn could keep the learning run's audit log (the temporary \
         folder, warden's cache folder) is inside a grant of BROAD; set TMPDIR to a folder \
         outside them"
            .into(),
    )
}

/// `warden learn`: the workload runs as `warden run --record-fs --audit TMP` in a child
/// process, the very run path of `warden run`. A child, because the lockdown is process-wide
/// and forbids what comes after the run here (reading the log, writing LEARNED); its exit
/// code is passed on. Then the log is read and LEARNED written and parsed back.
pub(crate) fn learn(args: LearnArgs) -> ExitCode {
    let broad = match Manifest::from_file(&args.manifest) {
        Ok(m) => Policy::from_manifest(m),
        Err(e) => return fail(e),
    };
    // --append: the earlier LEARNED, read before the run so that a bad one costs no run.
    let earlier = match earlier_learned(&args, &broad) {
        Ok(e) => e,
        Err(code) => return code,
    };
    // LEARNED is written by warden, so it must not be where the workload can write: the
    // learning run could plant a link there, or the manifest it is about to be granted.
    if let Err(e) = warden::check_output_path(&args.out) {
        return fail(format!(
            "{}: cannot write LEARNED there: {e}",
            args.out.display()
        ));
    }
    if let Some(g) = broad.writable_by_guest(&args.out) {
        return fail(format!(
            "{}: LEARNED would be inside the read-write grant of {} ({}): the learning run \
             could write it first; choose a path outside every read-write grant",
            args.out.display(),
            g.host.display(),
            g.guest
        ));
    }
    let dir = match learn_work_dir(&broad) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let log_path = dir.path().join("audit.jsonl");
    let status = match learning_run(&args, &log_path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    let code = ExitCode::from(u8::try_from(code).unwrap_or(EXIT_START_FAILED));

    // No exit record: the workload did not start (exit 125), or warden was killed (by its
    // seccomp filter, say). What the run did is unknown, so nothing is learned from it.
    let log = if log_path.exists() {
        match warden_cli::learn::read_run(&log_path) {
            Ok(l) => l,
            Err(e) => return fail(format!("the learning run's audit log: {e}")),
        }
    } else {
        warden_cli::learn::RunLog::default()
    };
    if log.exit.outcome.is_none() {
        eprintln!(
            "warden: learn: the run did not finish (no exit record); nothing learned, {} not \
             written",
            args.out.display()
        );
        return code;
    }
    let module_path = args.module.clone().or_else(|| broad.module.clone());
    let module = module_path.and_then(|m| warden::read_regular_file(&m).ok());
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut input = warden_cli::learn::Input {
        broad: &broad,
        broad_path: &args.manifest,
        log: &log,
        date: &date,
        module: module.as_deref(),
        earlier: earlier.as_ref().map(|(p, t)| (p, t.as_str())),
        single_files: true,
    };
    let base = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // Single-file grants the manifest would refuse (they share a folder with another grant,
    // say) give way to their folders; LEARNED must load.
    let mut text = warden_cli::learn::learn(&input);
    if Manifest::from_str_at(&text, &args.out, &base).is_err() {
        input.single_files = false;
        text = warden_cli::learn::learn(&input);
    }
    if let Err(e) = warden::write_private_file(&args.out, text.as_bytes()) {
        return fail(format!("{}: cannot write: {e}", args.out.display()));
    }
    let learned = match Manifest::from_file(&args.out) {
        Ok(m) => Policy::from_manifest(m),
        Err(e) => {
            return fail(format!(
                "the learned manifest does not load (a bug in warden learn): {e}"
            ));
        }
    };
    eprintln!(
        "warden: learned {}: host allow list {} → {} syscalls",
        args.out.display(),
        broad.seccomp_profile().syscall_count(),
        learned.seccomp_profile().syscall_count()
    );
    code
}

/// The learning run: `warden run --record-fs --audit LOG` in a child process, with SIGTERM
/// and SIGINT passed on to it (the run ends through its own signal handling, so what it did
/// is still learned). `Err` is the exit code to end with when it cannot be started or waited
/// for.
fn learning_run(
    args: &LearnArgs,
    log_path: &std::path::Path,
) -> Result<std::process::ExitStatus, ExitCode> {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return Err(fail(format!("cannot find the warden executable: {e}"))),
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run")
        .arg("--record-fs")
        .arg("--audit")
        .arg(log_path)
        .arg("--manifest")
        .arg(&args.manifest);
    if args.no_cache {
        cmd.arg("--no-cache");
    }
    if let Some(m) = &args.module {
        cmd.arg(m);
    }
    if !args.args.is_empty() {
        cmd.arg("--").args(&args.args);
    }
    // A SIGTERM or SIGINT must not end `learn` before its run: the run ends through its own
    // signal handling (exit record, staging removed), and what it did is still learned. So
    // learn only notes the signal and passes it on to the run.
    let signal = match signal_flag() {
        Ok(f) => f,
        Err(e) => {
            return Err(fail(format!(
                "cannot install the SIGTERM/SIGINT handlers: {e}"
            )));
        }
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Err(fail(format!("cannot start the learning run: {e}"))),
    };
    Ok(loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("cannot wait for the learning run: {e}"))),
        }
        let sig = signal.swap(0, std::sync::atomic::Ordering::SeqCst);
        if let Ok(sig) = i32::try_from(sig)
            && sig != 0
        {
            // The run may have ended in between (ESRCH): then there is nothing to pass on.
            let _ = warden::host_seccomp::send_signal(child.id(), sig);
        }
        std::thread::sleep(warden::watchdog::WATCHDOG_POLL);
    })
}

/// With `--append`, the earlier LEARNED (its policy and its text), which must be BROAD's
/// identity; `None` without `--append` or when there is none yet. `Err` is the exit code.
fn earlier_learned(args: &LearnArgs, broad: &Policy) -> Result<Option<(Policy, String)>, ExitCode> {
    if !(args.append && args.out.exists()) {
        return Ok(None);
    }
    let text = match warden::read_regular_file(&args.out) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return Err(fail(format!("{}: cannot read: {e}", args.out.display()))),
    };
    match Manifest::from_file(&args.out) {
        Ok(m) if m.identity.id == broad.identity.id => Ok(Some((Policy::from_manifest(m), text))),
        Ok(m) => Err(fail(format!(
            "{}: --append: its identity {} is not BROAD's ({})",
            args.out.display(),
            m.identity.id,
            broad.identity.id
        ))),
        Err(e) => Err(fail(format!("--append: {e}"))),
    }
}
