//! The `warden` command line: a thin shell over the `warden` library. This file parses the
//! command line and dispatches; each command is a module of `commands`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The system allocator, counted, so that a run can be stopped when the guest makes warden's
/// heap grow past its allowance (see `warden::host_memory`).
#[global_allocator]
static HEAP: warden::host_memory::CountingAllocator = warden::host_memory::counting_allocator();

// `--features warden-runtime/test-escape` alone gives the binary the escape hatch but compiles
// the integration tests' escape cases out (they follow this package's feature): refused.
const _: () = assert!(
    !warden::TEST_ESCAPE || cfg!(feature = "test-escape"),
    "warden-runtime has the test-escape feature but warden-cli does not: build with \
     `--features warden-cli/test-escape`"
);

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

// The commands, one module per command family: after the macros, so that they print through
// them.
mod commands;
use commands::{bench, check, complete, controls, learn, run, schema, seccomp, serve, wit};

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
    Run(run::RunArgs),
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
    Learn(learn::LearnArgs),
    /// The host process's syscall allow list for a manifest.
    ///
    /// Exit codes:
    ///   0    printed
    ///   2    usage error (the command line does not parse)
    ///   125  the manifest is invalid or cannot be read
    #[command(verbatim_doc_comment)]
    Seccomp {
        #[command(subcommand)]
        command: seccomp::SeccompCommand,
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
    Bench(bench::BenchArgs),
    /// Print the manifest's JSON Schema (the same as docs/warden.schema.json), for editors
    /// such as Taplo / Even Better TOML and other tools; with --audit, the audit record's
    /// (the same as docs/audit.schema.json, see docs/audit.md).
    Schema {
        /// The JSON Schema of one audit log record instead of the manifest's.
        #[arg(long)]
        audit: bool,
    },
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
        Command::Run(args) => run::run(args),
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
        } => check::check(&manifest, &against, json, strict),
        Command::Learn(args) => learn::learn(args),
        Command::Seccomp { command } => seccomp::seccomp(command),
        Command::Bench(args) => bench::bench(args),
        Command::Schema { audit } => schema::schema(audit),
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
