//! The `warden` command line: a thin shell over the `warden` library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::{
    Audit, AuditSink, COMPILE_BUDGET_FLOOR, Decision, EngineSettings, LoadError, Manifest,
    ModuleCache, Outcome, Policy, RunOptions, Warden,
};

/// The system allocator, counted, so that a run can be stopped when the guest makes warden's
/// heap grow past its allowance (see `warden::host_memory`).
#[global_allocator]
static HEAP: warden::host_memory::CountingAllocator = warden::host_memory::counting_allocator();

/// Exit code when warden itself could not start the workload.
const EXIT_START_FAILED: u8 = 125;

/// Exit code when the reader of warden's stdout went away (`warden check FILE | head -1`):
/// 0, as if the output had been read, so that a command's code keeps its meaning (a valid
/// manifest stays valid however little of the report was read).
const EXIT_STDOUT_CLOSED: i32 = 0;

// Everything this binary prints goes through these four macros, which shadow std's in this
// file. std's panic when the stream is closed ("failed printing to stdout: Broken pipe"); here
// a closed stdout ends warden quietly with `EXIT_STDOUT_CLOSED`, any other stdout failure is a
// one-line error (exit 125), and a failing stderr is ignored (there is nowhere left to say so).
macro_rules! print {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprintln {
    () => { $crate::write_stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

// The binary's own modules live in src/bin/warden/ (a file directly in src/bin/ would be a
// binary of its own).
#[path = "warden/bench.rs"]
mod bench;
#[path = "warden/controls.rs"]
mod controls;
#[path = "warden/export.rs"]
mod export;
#[path = "warden/grants.rs"]
mod grants;
#[path = "warden/schema.rs"]
mod schema;
#[path = "warden/serve.rs"]
mod serve;
use export::{SeccompCommand, seccomp};

/// `print!` without the panic: see the macros above.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(EXIT_STDOUT_CLOSED)
        }
        Err(e) => {
            eprintln!("warden: error: cannot write to stdout: {e}");
            std::process::exit(i32::from(EXIT_START_FAILED))
        }
    }
}

/// `eprint!` without the panic: see the macros above.
fn write_stderr(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

// After the macros, so that these modules print through them too.
#[path = "warden/complete.rs"]
mod complete;
#[path = "warden/quick.rs"]
mod quick;
#[path = "warden/paths.rs"]
mod warden_paths;
#[path = "warden/warnings.rs"]
mod warnings;
#[path = "warden/wit.rs"]
mod wit;

/// How often the signal thread looks at the signal flag: a SIGTERM or SIGINT is acted on
/// within this, and each look is one sleep (a syscall the lockdown always allows). The same
/// period as the library's wall-time watchdog.
const SIGNAL_POLL: std::time::Duration = warden::watchdog::WATCHDOG_POLL;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Run WebAssembly workloads of non-human identities with exactly the access their manifest grants",
    after_help = "Exit codes: 2 for a usage error (a command line that does not parse), 125 when \
                  warden could not do what a well-formed command asked; each command's --help \
                  lists its own."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workload (a WASI preview 1 module or preview 2 component)
    ///
    /// Exit codes:
    ///   0-119  the guest's own exit code (a larger one is reported as 119)
    ///   120    output limit reached
    ///   121    memory limit reached
    ///   122    fuel limit reached
    ///   123    the guest trapped
    ///   124    wall-time limit reached (or compiling the module took longer than
    ///          --compile-timeout: the wall limit, and at least 120 s)
    ///   125    warden could not start the workload
    ///   126    network limit reached (http-requests or egress)
    ///   130    stopped by SIGINT (read-write single files not copied back)
    ///   143    stopped by SIGTERM (read-write single files not copied back)
    ///   159    warden killed by its own seccomp filter (128 + SIGSYS)
    ///
    /// A usage error exits 2 before anything runs (and says `error:` on stderr): the command
    /// line does not parse, or a grant flag (--dir, --env, --limit, ...) is refused or
    /// contradicts the manifest.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Validate a manifest and print its effective grants; with `--against`, compare them
    /// with the audit logs of real runs.
    ///
    /// Exit codes:
    ///   0    the manifest is valid (and, with --strict, grants nothing unused)
    ///   1    --strict: the manifest grants something the module cannot use, or that the
    ///        logs given with --against never used
    ///   2    usage error (the command line does not parse)
    ///   125  the manifest is invalid, or a log cannot be read, has a line that is not an
    ///        audit record, or holds no record of the manifest's identity
    #[command(verbatim_doc_comment)]
    Check {
        /// The manifest (`*.warden.toml`).
        manifest: PathBuf,
        /// An audit log of runs of this identity (`warden run --audit`); repeat for more.
        /// Lists the grants the runs never used and the operations they show refused.
        #[arg(long, value_name = "AUDIT.jsonl")]
        against: Vec<PathBuf>,
        /// Print one JSON object instead of the tables.
        #[arg(long)]
        json: bool,
        /// Exit 1 when a grant is unused: the module cannot use it, or the logs never did.
        #[arg(long)]
        strict: bool,
        /// Print which of warden's controls the manifest implements and which it leaves open,
        /// with the NIST CSF 2.0, SP 800-207 and OWASP NHI Top 10 references (docs/controls.md).
        #[arg(long, conflicts_with_all = ["against", "strict"])]
        controls: bool,
    },
    /// Learn a manifest: run the workload under BROAD (contained and locked down, as `run`
    /// does), record what it used, and write the narrowest manifest within BROAD that allows
    /// exactly that, with a comment on each grant saying what was observed. See docs/learn.md.
    ///
    /// Exit codes: those of `warden run` (the guest's code, a limit's, ...); 2 for a usage
    /// error (the command line does not parse). A run without an exit record (125: could not start; 159: killed by the seccomp filter) writes nothing.
    /// Also 125 when BROAD, an earlier LEARNED (--append) or LEARNED cannot be read or written.
    #[command(verbatim_doc_comment)]
    Learn(LearnArgs),
    /// The host process's syscall allow list for a manifest.
    ///
    /// Exit codes:
    ///   0    printed
    ///   2    usage error (the command line does not parse)
    ///   125  the manifest is invalid or cannot be read
    #[command(verbatim_doc_comment)]
    Seccomp {
        #[command(subcommand)]
        command: SeccompCommand,
    },
    /// Compare a workload under warden with a native command: run each N times, alternately,
    /// and print wall time, CPU time and peak memory of both, and their ratios.
    ///
    /// The workload runs as `warden run [--manifest FILE] [MODULE] [-- ARGS]` in a child
    /// process. Every run's stdout is discarded; every run must exit with 0.
    ///
    /// Exit codes: 0 measured and printed; 2 usage error (the command line does not parse);
    /// 125 the benchmark cannot start or a run fails.
    ///
    /// CPU time and peak RSS are the kernel's figures for each child (wait4). A child's peak
    /// RSS includes what `warden bench` itself had when it started the child; a figure no
    /// larger than that is shown as an upper bound (`≤`).
    Bench(BenchArgs),
    /// Print the manifest's JSON Schema (the same as docs/warden.schema.json), for editors
    /// such as Taplo / Even Better TOML and other tools.
    Schema,
    /// Print a shell completion script, e.g. `warden completions bash > ~/.local/share/bash-completion/completions/warden`.
    ///
    /// Exit codes: 0 printed; 2 usage error (an unknown shell).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): warden's, or one command's (`warden man run > warden-run.1`).
    ///
    /// Exit codes: 0 printed; 2 usage error (an unknown command).
    Man {
        /// The command whose page to print; none for warden's own.
        command: Option<String>,
    },
    /// Serve workloads over HTTP: each identity's runs in worker processes of its own, locked
    /// down to its manifest. See docs/serve.md.
    ///
    /// Exit codes: 0 after SIGTERM or SIGINT (runs in flight finished); 125 when a manifest,
    /// the audit log or the address cannot be used.
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
    /// Write warden's WIT package, to build guests in any language against (docs/guests.md).
    ///
    /// The package is `warden:host` (warden.wit: the `secrets` interface and the worlds
    /// `connector`, `connector-portable`, `handler`, `handler-portable`, `imports`) and, in
    /// deps/, the WASI 0.2 packages warden implements. Files already there with the same
    /// contents are left as they are; other files in DIR are left alone.
    ///
    /// Exit codes:
    ///   0    written (or already up to date); where it was written is printed
    ///   2    usage error (the command line does not parse)
    ///   125  DIR is not a folder, a file cannot be written, or a file of the package exists
    ///        in DIR with other contents and --force was not given (nothing is written then)
    #[command(verbatim_doc_comment)]
    Wit(wit::WitArgs),
    /// A worker of `warden serve` (started by it, not by hand).
    #[command(hide = true)]
    ServeWorker(serve::WorkerArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
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

#[derive(clap::Args)]
struct LearnArgs {
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

#[derive(clap::Args)]
struct RunArgs {
    /// The manifest; without one the workload gets no filesystem, env, network or secrets.
    #[arg(long, short = 'm', value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Write the audit log as JSON Lines to FILE (appended), or to stderr with `-`.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
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

fn main() -> ExitCode {
    warden::host_memory::install(|| HEAP.allocated());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // 2 for a usage error (clap's code, and most tools'), 0 for --help and --version.
            let code = u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE);
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Run(args) => run(args),
        Command::Check {
            manifest,
            against: _,
            json,
            strict: _,
            controls: true,
        } => controls::print(&manifest, json),
        Command::Check {
            manifest,
            against,
            json,
            strict,
            controls: false,
        } => check(&manifest, &against, json, strict),
        Command::Learn(args) => learn(args),
        Command::Seccomp { command } => seccomp(command),
        Command::Bench(args) => bench(args),
        Command::Schema => schema::schema(),
        Command::Completions { shell } => {
            print!("{}", complete::completions(shell));
            ExitCode::SUCCESS
        }
        Command::Man { command } => match complete::man(command.as_deref()) {
            Ok(page) => {
                print!("{page}");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(e),
        },
        Command::Wit(args) => wit::wit(&args),
        Command::Serve(args) => serve::serve(args),
        Command::ServeWorker(args) => serve::worker(args),
    }
}

/// Exit code of a usage error: a command line warden cannot make sense of (clap's own code
/// for its errors, and the one of a grant flag that does not fit). Distinct from 125, which
/// says that a well-formed command could not start its workload.
const EXIT_USAGE: u8 = 2;

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden: error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden: error: {message}");
    ExitCode::from(EXIT_START_FAILED)
}

/// Exit code of `warden check --strict` when the manifest grants something unused.
const EXIT_OVER_GRANTED: u8 = 1;

fn check(path: &std::path::Path, logs: &[PathBuf], as_json: bool, strict: bool) -> ExitCode {
    let (policy, unset) = match warnings::load(path) {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    // Everything that can fail is done before anything is printed.
    let usage = if logs.is_empty() {
        None
    } else {
        let mut entries = Vec::new();
        for log in logs {
            match warden::usage::read_log(log) {
                Ok(mut e) => entries.append(&mut e),
                Err(e) => return fail(e),
            }
        }
        match warden::usage::compare(&policy, &entries, logs) {
            Ok(u) => Some(u),
            Err(e) => return fail(e),
        }
    };
    // With the module at hand: what it imports against what the manifest grants.
    let lint = match &policy.module {
        None => Err(None),
        Some(module) => match warden::read_regular_file(module) {
            Ok(bytes) => match warden::check::module_lint(&policy, &bytes) {
                Ok(lint) => Ok(lint),
                Err(e) => return fail(format!("{}: {e}", module.display())),
            },
            Err(e) => Err(Some((module, e))),
        },
    };
    let over_granted = lint.as_ref().is_ok_and(|l| !l.cannot_use.is_empty())
        || usage.as_ref().is_some_and(|u| !u.unused.is_empty());
    let mut warnings = warnings::unset_variables(&unset);
    warnings.extend(warnings::secret_sources(&policy));
    for w in &warnings {
        eprintln!("warden: warning: {w}");
    }

    if as_json {
        let list = |fs: &[warden::check::Finding]| {
            fs.iter()
                .map(warden::check::Finding::to_json)
                .collect::<Vec<_>>()
        };
        let module = match &lint {
            Ok(l) => json!({
                "path": policy.module.as_ref().map(|m| warden_paths::shown(m).display().to_string()),
                "kind": if l.is_component { "component" } else { "core module" },
                "checked": true,
            }),
            Err(None) => Value::Null,
            Err(Some((m, e))) => json!({
                "path": warden_paths::shown(m).display().to_string(),
                "checked": false,
                "error": e.to_string(),
            }),
        };
        // Static findings first (the module cannot use them), then the logs' (never used).
        let mut unused: Vec<Value> = Vec::new();
        if let Ok(l) = &lint {
            unused.extend(l.cannot_use.iter().map(|f| {
                let mut v = f.to_json();
                v["source"] = json!("module");
                v
            }));
        }
        let mut out = json!({
            "identity": policy.identity.id,
            "name": policy.identity.name,
            "manifest": warden_paths::shown(path).display().to_string(),
            "module": module,
            "grants": list(&warden::check::grant_list(&policy)),
            "logs": logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>(),
            "used": [],
            "unobservable": [],
            "ungranted": [],
            "refused": [],
        });
        if let Some(u) = &usage {
            let from_logs = u.to_json();
            if let (Value::Object(o), Value::Object(f)) = (&mut out, from_logs) {
                for (k, v) in f {
                    if k == "unused" {
                        if let Value::Array(items) = v {
                            unused.extend(items.into_iter().map(|mut i| {
                                i["source"] = json!("logs");
                                i
                            }));
                        }
                    } else {
                        o.insert(k, v);
                    }
                }
            }
        }
        out["unused"] = Value::Array(unused);
        out["over_granted"] = json!(over_granted);
        out["warnings"] = json!(warnings);
        println!("{out:#}");
    } else {
        print!("{}", grants::grants_table(&policy));
        match &lint {
            Ok(l) => print!("{}", l.text()),
            Err(None) => {}
            Err(Some((module, e))) => println!(
                "\nmodule {} not read ({e}): its imports are not checked",
                warden_paths::shown(module).display()
            ),
        }
        if let Some(u) = &usage {
            print!("{}", u.render_text(logs.len()));
        }
    }
    if strict && over_granted {
        return ExitCode::from(EXIT_OVER_GRANTED);
    }
    ExitCode::SUCCESS
}

fn open_audit(path: Option<&std::path::Path>) -> anyhow::Result<AuditSink> {
    Ok(match path {
        None => AuditSink::disabled(),
        Some(p) if p.as_os_str() == "-" => AuditSink::to_framed_stderr(),
        Some(p) => AuditSink::append_to_file(p)
            .with_context(|| format!("{}: cannot open the audit log", p.display()))?,
    })
}

fn run(args: RunArgs) -> ExitCode {
    // Before anything is staged: a SIGTERM or SIGINT only sets this flag (no syscall in the
    // handler), and the signal thread acts on it.
    let signal = match signal_flag() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot install the SIGTERM/SIGINT handlers: {e}")),
    };
    let mut policy = if args.quick.any() || args.quick.print_manifest {
        let merged = quick::merge(args.manifest.as_deref(), &args.quick);
        match merged.and_then(|m| m.policy().map(|p| (m, p))) {
            Ok((merged, _)) if args.quick.print_manifest => {
                print!("{}", merged.to_toml(args.module.as_deref(), &args.args));
                return ExitCode::SUCCESS;
            }
            Ok((_, policy)) => policy,
            Err(quick::QuickError::Manifest(e)) => return fail(e),
            Err(quick::QuickError::Usage(m)) => return usage_error(m),
        }
    } else {
        match &args.manifest {
            Some(path) => match Manifest::from_file(path) {
                Ok(m) => Policy::from_manifest(m),
                Err(e) => return fail(e),
            },
            None => Policy::anonymous(),
        }
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
    let sink = match open_audit(args.audit.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };

    let lockdown = match args.seccomp {
        SeccompMode::Off => {
            eprintln!(
                "warden: warning: --seccomp off: the host process runs without its syscall \
                 allow list"
            );
            None
        }
        SeccompMode::Enforce | SeccompMode::Log => {
            if let Err(e) = warden::host_seccomp::supported() {
                return fail(format!(
                    "host lockdown is not available here ({e}); refusing to run unprotected \
                     (--seccomp off runs without it)"
                ));
            }
            Some(if args.seccomp == SeccompMode::Log {
                warden::host_seccomp::Mode::Log
            } else {
                warden::host_seccomp::Mode::Enforce
            })
        }
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
        Err(LoadError::CompileTimeout { budget }) => {
            // A module still loading when its budget is spent ends warden with exit 124 and
            // the audit records of a wall-limit exit.
            let audit = Audit::with_run_id(sink, &policy.identity.id, &run_id);
            let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
            audit.limit("wall", budget_ms);
            audit.emit(
                "exit",
                json!({ "outcome": "wall-limit", "code": 124, "wall_ms": budget_ms,
                        "fuel_used": null, "peak_memory": null,
                        "message": "the module was still compiling when its time was up" }),
            );
            eprintln!(
                "warden: wall-time limit reached while compiling the module ({budget:?}; \
                 --compile-timeout sets it, default the wall limit and at least \
                 {COMPILE_BUDGET_FLOOR:?})"
            );
            // The compiler thread cannot be stopped: end the process, not wait for it.
            std::process::exit(124);
        }
        Err(e) => {
            // The refusal is a decision about this identity too: record it.
            let audit = Audit::new(sink, &policy.identity.id);
            if let LoadError::UnknownImport { import, .. } = &e {
                audit.decision("import", import, Decision::Deny, "no grant provides it");
            }
            audit.emit(
                "error",
                json!({ "message": e.to_string(), "code": EXIT_START_FAILED }),
            );
            return fail(e);
        }
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
    let limits = &workload.policy().limits;
    match &report.outcome {
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
    // The process ends here: leave the engine, the compiled code and the guest's memory to the
    // kernel rather than unmapping them piece by piece (about 0.1 ms of a cached hello run).
    // Everything written is already written: the audit sink flushes every record.
    std::mem::forget(workload);
    std::mem::forget(warden);
    ExitCode::from(u8::try_from(report.outcome.exit_code()).unwrap_or(EXIT_START_FAILED))
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
fn learn(args: LearnArgs) -> ExitCode {
    let broad = match Manifest::from_file(&args.manifest) {
        Ok(m) => Policy::from_manifest(m),
        Err(e) => return fail(e),
    };
    // --append: the earlier LEARNED, read before the run so that a bad one costs no run.
    let earlier = if args.append && args.out.exists() {
        let text = match warden::read_regular_file(&args.out) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return fail(format!("{}: cannot read: {e}", args.out.display())),
        };
        match Manifest::from_file(&args.out) {
            Ok(m) if m.identity.id == broad.identity.id => Some((Policy::from_manifest(m), text)),
            Ok(m) => {
                return fail(format!(
                    "{}: --append: its identity {} is not BROAD's ({})",
                    args.out.display(),
                    m.identity.id,
                    broad.identity.id
                ));
            }
            Err(e) => return fail(format!("--append: {e}")),
        }
    } else {
        None
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
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot find the warden executable: {e}")),
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run")
        .arg("--record-fs")
        .arg("--audit")
        .arg(&log_path)
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
        Err(e) => return fail(format!("cannot install the SIGTERM/SIGINT handlers: {e}")),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the learning run: {e}")),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return fail(format!("cannot wait for the learning run: {e}")),
        }
        let sig = signal.swap(0, std::sync::atomic::Ordering::SeqCst);
        if let Ok(sig) = i32::try_from(sig)
            && sig != 0
        {
            // The run may have ended in between (ESRCH): then there is nothing to pass on.
            let _ = warden::host_seccomp::send_signal(child.id(), sig);
        }
        std::thread::sleep(warden::watchdog::WATCHDOG_POLL);
    };
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    let code = ExitCode::from(u8::try_from(code).unwrap_or(EXIT_START_FAILED));

    // No exit record: the workload did not start (exit 125), or warden was killed (by its
    // seccomp filter, say). What the run did is unknown, so nothing is learned from it.
    let log = if log_path.exists() {
        match warden::learn::read_run(&log_path) {
            Ok(l) => l,
            Err(e) => return fail(format!("the learning run's audit log: {e}")),
        }
    } else {
        warden::learn::RunLog::default()
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
    let mut input = warden::learn::Input {
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
    let mut text = warden::learn::learn(&input);
    if Manifest::from_str_at(&text, &args.out, &base).is_err() {
        input.single_files = false;
        text = warden::learn::learn(&input);
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

/// A flag that SIGTERM and SIGINT set to their number. The handler only stores into it.
fn signal_flag() -> std::io::Result<std::sync::Arc<std::sync::atomic::AtomicUsize>> {
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
                    audit.emit(
                        "exit",
                        json!({ "outcome": "signal", "code": code, "signal": name,
                                "wall_ms": wall_ms, "fuel_used": null, "peak_memory": null,
                                "message": "stopped by a signal; read-write single files \
                                            not copied back" }),
                    );
                    eprintln!(
                        "warden: stopped by {name}; read-write single files were not copied back"
                    );
                    std::process::exit(code);
                }
                std::thread::sleep(SIGNAL_POLL);
            }
        });
}

/// `warden bench`: checks what it can before the first run, so that a typo is a one-line error
/// rather than a failed run; the loop, statistics and rendering are in `bench`.
fn bench(args: BenchArgs) -> ExitCode {
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
    let mut native = match bench::Cmd::parse(&args.native) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    native.program = match bench::resolve_program(&native.program) {
        Some(p) => p,
        None => {
            let program = native.program.display().to_string();
            return fail(bench::BenchError::NotFound(program));
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
    let spec = bench::Spec {
        native,
        warden: bench::Cmd {
            program: exe,
            args: run_args,
        },
        runs: args.runs as usize,
        warmup: args.warmup as usize,
        stdin: args.stdin,
    };
    let mut progress = bench::ProgressLine::new();
    let result = bench::run(&spec, &mut |p| progress.update(p));
    progress.finish();
    let text = match result {
        Ok(report) if args.json => format!("{:#}\n", report.to_json()),
        Ok(report) => report.render_table(),
        Err(e) => return fail(e),
    };
    print!("{text}");
    ExitCode::SUCCESS
}
