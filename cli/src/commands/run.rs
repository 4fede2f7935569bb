//! `warden run`: one workload in this process, under its manifest (or the grant flags), with
//! the host locked down; and the SIGTERM/SIGINT handling it shares with `warden learn`.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use warden::{
    Audit, AuditSink, COMPILE_BUDGET_FLOOR, Decision, EngineSettings, LoadError, Manifest,
    ModuleCache, Outcome, Policy, RunOptions, Warden,
};

use crate::{EXIT_START_FAILED, fail, usage_error};
use warden_cli::quick;

/// How often the signal thread looks at the signal flag: a SIGTERM or SIGINT is acted on
/// within this, and each look is one sleep (a syscall the lockdown always allows). The same
/// period as the library's wall-time watchdog.
const SIGNAL_POLL: std::time::Duration = warden::watchdog::WATCHDOG_POLL;

/// How the host process is locked down while the guest runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SeccompMode {
    /// Kill the whole process (exit 159) on any syscall outside the allow list.
    Enforce,
    /// Allow syscalls outside the list but have the kernel log them.
    Log,
    /// No lockdown (a warning is printed and recorded in the audit log).
    Off,
}

/// How the audit log is written (`--audit-format`, for `run` and `serve`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuditFormatArg {
    /// warden's own records (docs/audit.md, `warden schema --audit`): what `warden learn`
    /// and `warden check --against` read.
    Json,
    /// Each record as one OCSF 1.7.0 event, for a SIEM (docs/audit.md, "OCSF").
    Ocsf,
}

impl From<AuditFormatArg> for warden::AuditFormat {
    fn from(f: AuditFormatArg) -> Self {
        match f {
            AuditFormatArg::Json => warden::AuditFormat::Json,
            AuditFormatArg::Ocsf => warden::AuditFormat::Ocsf,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The manifest; without one the workload gets no filesystem, env, network or secrets.
    #[arg(long, short = 'm', value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Write the audit log as JSON Lines to FILE (appended), or to stderr with `-`.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// The audit log's format: `json`, warden's own records, or `ocsf`, the same records as
    /// OCSF 1.7.0 events for a SIEM (`warden check --against` and `learn` read `json` only).
    #[arg(long, value_enum, requires = "audit", value_name = "FORMAT", default_value_t = AuditFormatArg::Json)]
    audit_format: AuditFormatArg,
    /// Host lockdown: `enforce` kills warden (exit 159) on any syscall outside the manifest's
    /// allow list, `log` only reports such syscalls, `off` disables the lockdown.
    #[arg(long, value_enum, default_value_t = SeccompMode::Enforce)]
    seccomp: SeccompMode,
    /// Compile in memory instead of using the compiled-module cache.
    #[arg(long)]
    no_cache: bool,
    /// The longest loading the module (compiling it, when the cache does not have it) may
    /// take before warden ends with exit 124, e.g. `30s`. Default: the wall limit, and at
    /// least 120 s.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    compile_timeout: Option<std::time::Duration>,
    /// Record allowed filesystem operations of a core module in the audit log too (each
    /// distinct path and operation once), not only refused ones. `warden learn` uses it.
    #[arg(long)]
    record_fs: bool,
    /// Stop the guest at its wall limit with epoch interruption (code instrumented at every
    /// loop header, the process goes on to report), as embedders and `warden serve` do.
    /// Default: no epochs; the watchdog ends the process at the wall limit (faster code). A
    /// manifest with a read-write single file always uses epochs, so that its copy-back is
    /// taken from a stopped guest.
    #[arg(long)]
    epochs: bool,
    /// The module to run; overrides the manifest's `[workload] module`.
    module: Option<PathBuf>,
    /// Arguments for the guest, appended to the manifest's `[workload] args`.
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    quick: quick::QuickFlags,
}

fn open_audit(path: Option<&std::path::Path>, format: AuditFormatArg) -> anyhow::Result<AuditSink> {
    let sink = match path {
        None => AuditSink::disabled(),
        Some(p) if p.as_os_str() == "-" => AuditSink::to_framed_stderr(),
        Some(p) => AuditSink::append_to_file(p)
            .with_context(|| format!("{}: cannot open the audit log", p.display()))?,
    };
    Ok(sink.with_format(format.into()))
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    // Before anything is staged: a SIGTERM or SIGINT only sets this flag (no syscall in the
    // handler), and the signal thread acts on it.
    let signal = match signal_flag() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot install the SIGTERM/SIGINT handlers: {e}")),
    };
    let mut policy = match policy_of(&args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(module) = args.module {
        policy.module = Some(module);
    }
    if let Some(path) = args.audit.as_deref().filter(|p| p.as_os_str() != "-")
        && let Some(g) = policy.writable_by_guest(path)
    {
        return fail(format!(
            "{}: the audit log is inside the read-write grant of {} ({}): the workload could \
             rewrite its own record; write it elsewhere",
            path.display(),
            g.host.display(),
            g.guest
        ));
    }
    let sink = match open_audit(args.audit.as_deref(), args.audit_format) {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };

    let lockdown = match lockdown_of(args.seccomp) {
        Ok(l) => l,
        Err(code) => return code,
    };

    let settings = EngineSettings {
        fuel: policy.limits.fuel.is_some(),
        cache: if args.no_cache {
            None
        } else {
            cache_out_of_reach(&policy)
        },
        pooling: false,
        interruption: run_interruption(args.epochs, &policy),
        // One run: a bound of its own, with no read of the kernel's mapping limit at start.
        max_live_runs: Some(8),
    };
    let warden = match Warden::new(settings) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let run_id = Audit::new_run_id();
    // Compiling cannot be interrupted by the epoch: loading gets a budget of its own, the
    // wall limit or COMPILE_BUDGET_FLOOR, whichever is longer, unless --compile-timeout says.
    let budget = args
        .compile_timeout
        .unwrap_or_else(|| policy.limits.wall.max(COMPILE_BUDGET_FLOOR));
    let workload = match warden.load_within(policy.clone(), budget) {
        Ok(w) => w,
        Err(e) => return load_failed(e, sink, &policy, &run_id),
    };

    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = args.args;
    opts.audit = sink.clone();
    opts.lockdown = lockdown;
    opts.run_id = Some(run_id.clone());
    opts.record_fs = args.record_fs;

    start_signal_thread(&sink, &policy, &run_id, signal);
    let report = match workload.run(opts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    warden::audit::end_guest_line();
    say_how_it_ended(&report.outcome, &workload.policy().limits);
    // The process ends here: leave the engine, the compiled code and the guest's memory to the
    // kernel rather than unmapping them piece by piece (about 0.1 ms of a cached hello run).
    // Everything written is already written: the audit sink flushes every record.
    std::mem::forget(workload);
    std::mem::forget(warden);
    ExitCode::from(u8::try_from(report.outcome.exit_code()).unwrap_or(EXIT_START_FAILED))
}

/// The policy of a run: the grant flags merged into the manifest (or printed as one with
/// `--print-manifest`, the `Err` being then a success), the manifest alone, or no grants.
/// `Err` is the exit code to end with.
fn policy_of(args: &RunArgs) -> Result<Policy, ExitCode> {
    if args.quick.any() || args.quick.print_manifest {
        let merged = quick::merge(args.manifest.as_deref(), &args.quick);
        match merged.and_then(|m| m.policy().map(|p| (m, p))) {
            Ok((merged, _)) if args.quick.print_manifest => {
                print!("{}", merged.to_toml(args.module.as_deref(), &args.args));
                Err(ExitCode::SUCCESS)
            }
            Ok((_, policy)) => Ok(policy),
            Err(quick::QuickError::Manifest(e)) => Err(fail(e)),
            Err(quick::QuickError::Usage(m)) => Err(usage_error(m)),
        }
    } else {
        match &args.manifest {
            Some(path) => match Manifest::from_file(path) {
                Ok(m) => Ok(Policy::from_manifest(m)),
                Err(e) => Err(fail(e)),
            },
            None => Ok(Policy::anonymous()),
        }
    }
}

/// The host lockdown `--seccomp` asks for: none (with a warning), or enforced or logged where
/// the kernel supports it. `Err` is the exit code to end with.
fn lockdown_of(mode: SeccompMode) -> Result<Option<warden::host_seccomp::Mode>, ExitCode> {
    Ok(match mode {
        SeccompMode::Off => {
            eprintln!(
                "warden: warning: --seccomp off: the host process runs without its syscall \
                 allow list"
            );
            None
        }
        SeccompMode::Enforce | SeccompMode::Log => {
            if let Err(e) = warden::host_seccomp::supported() {
                return Err(fail(format!(
                    "host lockdown is not available here ({e}); refusing to run unprotected \
                     (--seccomp off runs without it)"
                )));
            }
            Some(if mode == SeccompMode::Log {
                warden::host_seccomp::Mode::Log
            } else {
                warden::host_seccomp::Mode::Enforce
            })
        }
    })
}

/// A workload that could not be loaded: past its compile budget, exit 124 with a wall-limit
/// exit record (the process ends at once: the compiler thread cannot be stopped); any other
/// refusal, exit 125, recorded for the identity (an unknown import as a refused decision).
fn load_failed(e: LoadError, sink: AuditSink, policy: &Policy, run_id: &str) -> ExitCode {
    match e {
        LoadError::CompileTimeout { budget } => {
            // A module still loading when its budget is spent ends warden with exit 124 and
            // the audit records of a wall-limit exit.
            let audit = Audit::with_run_id(sink, &policy.identity.id, run_id);
            let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
            audit.limit("wall", budget_ms);
            audit.exit(warden::audit::Exit::from_outside(
                "wall-limit",
                124,
                Some(budget_ms),
                "the module was still compiling when its time was up",
            ));
            eprintln!(
                "warden: wall-time limit reached while compiling the module ({budget:?}; \
             --compile-timeout sets it, default the wall limit and at least \
             {COMPILE_BUDGET_FLOOR:?})"
            );
            // The compiler thread cannot be stopped: end the process, not wait for it.
            std::process::exit(124);
        }
        e => {
            // The refusal is a decision about this identity too: record it.
            let audit = Audit::new(sink, &policy.identity.id);
            if let LoadError::UnknownImport { import, .. } = &e {
                audit.decision(warden::audit::Decided::new(
                    "import",
                    import,
                    Decision::Deny,
                    "import",
                    "no grant provides it",
                ));
            }
            audit.error(&e.to_string(), Some(i32::from(EXIT_START_FAILED)));
            fail(e)
        }
    }
}

/// The line on stderr that says how a run warden stopped ended (a guest's own exit says
/// nothing).
fn say_how_it_ended(outcome: &Outcome, limits: &warden::manifest::Limits) {
    match outcome {
        Outcome::Exited(_) => {}
        Outcome::Trap(m) => eprintln!("warden: the guest trapped: {m}"),
        Outcome::MemoryLimit => eprintln!(
            "warden: memory limit reached ({})",
            warden::manifest::format_size(limits.memory)
        ),
        Outcome::FuelLimit => {
            eprintln!("warden: fuel limit reached ({})", limits.fuel.unwrap_or(0))
        }
        Outcome::WallLimit => eprintln!("warden: wall-time limit reached ({:?})", limits.wall),
        Outcome::OutputLimit => eprintln!(
            "warden: output limit reached ({})",
            warden::manifest::format_size(limits.output)
        ),
        Outcome::NetLimit(warden::NetLimit::HttpRequests) => eprintln!(
            "warden: http-requests limit reached ({} requests)",
            limits.http_requests
        ),
        Outcome::NetLimit(warden::NetLimit::Egress) => eprintln!(
            "warden: egress limit reached ({})",
            warden::manifest::format_size(limits.egress)
        ),
        other => eprintln!("warden: the run ended: {}", other.name()),
    }
}

/// A one-shot run needs no epochs: the watchdog ends the process at the wall limit. Except
/// with `--epochs`, or when a read-write single file is granted: its copy-back is only taken
/// once the guest is stopped, which without epochs a spinning guest never is.
fn run_interruption(epochs: bool, policy: &Policy) -> warden::Interruption {
    if epochs || policy.has_read_write_file() {
        warden::Interruption::Epoch
    } else {
        warden::Interruption::EndProcess
    }
}

/// The user's module cache, unless a read-write grant of `policy` reaches into it: its
/// entries are compiled code that warden maps and runs, so a workload that could write one
/// could plant code in the host. Then the run compiles its module afresh (as `--no-cache`
/// does) and says so.
pub(crate) fn cache_out_of_reach(policy: &Policy) -> Option<ModuleCache> {
    let cache = ModuleCache::user_default()?;
    if let Some(g) = policy.writes_within(cache.dir()) {
        eprintln!(
            "warden: warning: the module cache {} is within reach of the read-write grant of \
             {}; the module cache is not used for this workload",
            cache.dir().display(),
            g.host.display()
        );
        return None;
    }
    Some(cache)
}

/// A flag that SIGTERM and SIGINT set to their number. The handler only stores into it.
pub(crate) fn signal_flag() -> std::io::Result<std::sync::Arc<std::sync::atomic::AtomicUsize>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let value = usize::try_from(sig).unwrap_or_default();
        signal_hook::flag::register_usize(sig, flag.clone(), value)?;
    }
    Ok(flag)
}

/// Ends the process on a SIGTERM or SIGINT, polling every [`SIGNAL_POLL`]: the staging of
/// single-file grants is removed *without* copy-back (the guest may be halfway through a
/// write), an `exit` record with outcome `signal` is written, and warden exits with 128 + the
/// signal's number (143, 130). (A guest stuck in a host call past its wall limit is the
/// library's to end: see `warden::watchdog`.)
fn start_signal_thread(
    sink: &AuditSink,
    policy: &Policy,
    run_id: &str,
    signal: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let sink = sink.clone();
    let run_id = run_id.to_string();
    let id = policy.identity.id.clone();
    let started = std::time::Instant::now();
    let _ = std::thread::Builder::new()
        .name("warden-signals".into())
        .spawn(move || {
            let audit = Audit::with_run_id(sink, &id, &run_id);
            loop {
                let sig = signal.load(std::sync::atomic::Ordering::SeqCst);
                if sig != 0 {
                    let name = match i32::try_from(sig) {
                        Ok(signal_hook::consts::SIGTERM) => "SIGTERM",
                        Ok(signal_hook::consts::SIGINT) => "SIGINT",
                        _ => "a signal",
                    };
                    let code = 128 + i32::try_from(sig).unwrap_or(0);
                    warden::policy::finish_all_staging(false);
                    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    audit.exit(warden::audit::Exit {
                        signal: Some(name.to_string()),
                        ..warden::audit::Exit::from_outside(
                            "signal",
                            code,
                            Some(wall_ms),
                            "stopped by a signal; read-write single files not copied back",
                        )
                    });
                    eprintln!(
                        "warden: stopped by {name}; read-write single files were not copied back"
                    );
                    std::process::exit(code);
                }
                std::thread::sleep(SIGNAL_POLL);
            }
        });
}
