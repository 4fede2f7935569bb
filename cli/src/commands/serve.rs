//! `warden serve`: keeps workloads loaded and runs them on HTTP requests (see the README's
//! "Serving connectors" and docs/serve.md).
//!
//! The server process parses the manifests, listens, queues run requests per identity and
//! hands each to a worker process of that identity (`warden serve-worker`, see [`worker`]),
//! over pipes framed as in [`proto`]; for a manifest with single-file grants or `file:`
//! secrets it stages the files and reads the secrets for each run first (see [`files`]). A
//! worker is started before any lockdown, then locks itself down to its own manifest's
//! profile. Workers
//! send their audit records to the server, which checks each belongs to the worker's identity
//! and run and writes it to the one audit log.

mod cpu;
mod files;
mod front;
mod http;
mod metrics;
mod reload;
mod worker;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use route::Endpoint;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use warden::watchdog::WALL_GRACE;
use warden::{Audit, AuditSink, COMPILE_BUDGET_FLOOR, Policy};
use warden_cli::serve::{proto, route};

/// Run requests that may wait for a worker, per identity, by default. Past it a request is
/// answered 429 at once: a slow or hostile identity fills its own queue, never the server's
/// memory, and its clients learn to back off rather than hang.
pub const DEFAULT_QUEUE: usize = 64;

/// Worker processes per identity, by default: one starts with the server, more while runs
/// are queued. Two cores run at most two runs at a time anyway; a few more keep an identity
/// served while one of its workers is being replaced or blocked in a host call.
pub const DEFAULT_MAX_WORKERS: usize = 4;

/// The largest request body (a run's stdin). Bigger bodies get 413; a run's input is small
/// (a connector's request), and this bounds the memory a client can make the server hold.
const MAX_STDIN_BYTES: usize = 4 << 20;

/// Waits before replacing a worker that died: doubled after each death in a row (up to
/// [`BACKOFF_MAX`]), reset by an answered run, so a workload that kills its worker on every
/// run cannot keep a core busy starting processes.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// An extra worker (beyond the first) that has had no run for this long is stopped.
const IDLE_RETIRE: Duration = Duration::from_secs(30);

/// Variables of the server's environment every worker gets: where the compiled-module cache
/// is, and the test-only escape marker. Nothing else is passed on, so that no worker sees
/// another identity's `env:` secrets.
const WORKER_ENV: &[&str] = &[
    "WARDEN_CACHE_DIR",
    "HOME",
    "XDG_CACHE_HOME",
    "RUST_BACKTRACE",
    "WARDEN_TEST_ESCAPE_MARKER",
];

/// The variables a worker of `policy` needs from the server's environment.
fn worker_env(policy: &Policy) -> Vec<String> {
    let mut names: Vec<String> = WORKER_ENV.iter().map(|n| (*n).to_string()).collect();
    for secret in &policy.secrets {
        if let warden::manifest::SecretSource::Env(name) = &secret.from {
            names.push(name.clone());
        }
    }
    for var in &policy.env {
        if let warden::manifest::EnvSource::FromHost(name) = &var.source {
            names.push(name.clone());
        }
    }
    names
}

/// `Retry-After` of a 429, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port; the address is
    /// printed on stdout).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// A workload's manifest; repeat for more. The workload is served under its
    /// `[identity] name`.
    #[arg(long = "manifest", short = 'm', value_name = "FILE", required = true)]
    manifests: Vec<PathBuf>,
    /// Append every run's audit records (all identities) to FILE as JSON Lines.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// The audit log's format: `json`, warden's own records, or `ocsf`, the same records as
    /// OCSF 1.7.0 events for a SIEM (as `warden run --audit-format`).
    #[arg(long, value_enum, requires = "audit", value_name = "FORMAT", default_value_t = super::run::AuditFormatArg::Json)]
    audit_format: super::run::AuditFormatArg,
    /// Run requests that may wait per identity; past it, 429.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE,
          value_parser = parse_positive)]
    queue: usize,
    /// Worker processes per identity at most.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_WORKERS,
          value_parser = parse_positive)]
    max_workers: usize,
    /// Worker lockdown: `enforce` (each worker killed on a syscall outside its manifest's
    /// allow list, then replaced) or `off` (a warning is printed).
    #[arg(long, value_enum, default_value_t = Lockdown::Enforce)]
    seccomp: Lockdown,
    /// CPU shared per identity: `auto` (each identity's workers in a cgroup of their own,
    /// all weighted alike, where the host allows it; a warning otherwise), `require` (refuse
    /// to start without) or `off` (the workers share the CPU by process).
    #[arg(long, value_enum, default_value_t = cpu::Mode::Auto)]
    cpu_groups: cpu::Mode,
    /// Runs one worker process holds at once, each on a run thread of its own started before
    /// its lockdown (1: one at a time, on the worker's main thread). Raise it for connectors
    /// that mostly wait on the network.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    runs_per_worker: usize,
    /// Time a client has to send a whole request head once its first byte came; past it the
    /// connection is closed (slowloris). A head is a few hundred bytes: ten seconds is ample
    /// on any link, and short enough that slow heads cannot pile up.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = parse_timeout)]
    header_timeout: Duration,
    /// Time a connection may stay open with no request under way and nothing sent: long
    /// enough to reuse it between the requests of one job, short enough that idle sockets
    /// do not hold descriptors.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Client connections open at once; past it, new ones are closed at once and counted
    /// (`warden_connections_refused_total`).
    #[arg(long, value_name = "N", default_value_t = front::DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_positive)]
    max_connections: usize,
    /// Bytes of request bodies held in memory at once, over all connections; a body that
    /// would pass it is answered 503. The default holds 64 bodies of the largest size a run
    /// takes (4 MiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_memory)]
    max_body_memory: usize,
    /// `POST /v1/reload` needs `Authorization: Bearer TOKEN`, TOKEN being this file's text
    /// (its trailing newline taken off), from any peer. Without it only a loopback peer may
    /// ask for a reload. (A file, never the token itself: a command line is public.)
    #[arg(long, value_name = "FILE")]
    reload_token_file: Option<PathBuf>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("a timeout must be above 0".into()),
        Err(e) => Err(format!("`{s}` is not a duration such as \"10s\": {e}")),
    }
}

fn parse_memory(s: &str) -> Result<usize, String> {
    warden::manifest::parse_size(s)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n >= MAX_STDIN_BYTES)
        .ok_or_else(|| {
            format!(
                "`{s}` is not a size such as \"256MiB\" of at least one largest body \
                 ({MAX_STDIN_BYTES} bytes)"
            )
        })
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number above 0")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lockdown {
    Enforce,
    Off,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    manifest: PathBuf,
    #[arg(long)]
    no_lockdown: bool,
    #[arg(long, default_value_t = 1, value_parser = parse_positive)]
    runs: usize,
}

/// `warden serve-worker` (started by `warden serve` only).
pub fn worker(args: WorkerArgs) -> ExitCode {
    worker::run(&args.manifest, !args.no_lockdown, args.runs)
}

/// Each `--manifest` read (with the SHA-256 of its bytes), refused when it names an identity
/// a manifest before it named.
fn load_manifests(paths: &[PathBuf]) -> Result<Vec<(Policy, String)>, String> {
    let mut policies: Vec<(Policy, String)> = Vec::new();
    for path in paths {
        let (policy, manifest_sha256) = match reload::read_manifest(path) {
            Ok(p) => p,
            Err(e) => return Err(e.to_string()),
        };
        if policies
            .iter()
            .any(|(p, _)| p.identity.name == policy.identity.name)
        {
            return Err(format!(
                "{}: a second workload named `{}`: names must differ",
                path.display(),
                policy.identity.name
            ));
        }
        policies.push((policy, manifest_sha256));
    }
    Ok(policies)
}

/// The per-identity CPU groups `--cpu-groups` asks for, and the notice to print once serving
/// (why there are none, or where they are). `Err` is the exit code when `require` cannot have
/// them.
fn cpu_groups(
    mode: cpu::Mode,
    names: &[&str],
) -> Result<(Option<Arc<cpu::Groups>>, Option<String>), ExitCode> {
    let mut cpu_notice = None;
    let cpu = match mode {
        cpu::Mode::Off => None,
        cpu::Mode::Auto if cpu::under_seccomp_filter() => {
            cpu_notice = Some(
                "warden: serve: warning: no per-identity CPU groups (this process runs under a \
                 seccomp filter it did not install, which may kill it for making one); \
                 identities share the CPU by process"
                    .to_string(),
            );
            None
        }
        cpu::Mode::Require if cpu::under_seccomp_filter() => {
            return Err(crate::fail(
                "--cpu-groups require: this process runs under a seccomp filter it did not \
                 install (a container's profile), which may kill it for making a CPU group; \
                 run without that filter or with --cpu-groups off",
            ));
        }
        mode => match cpu::Groups::create(names) {
            Ok(g) => {
                cpu_notice = Some(format!(
                    "warden: serve: CPU shared per identity ({} group {})",
                    g.version(),
                    g.root().display()
                ));
                Some(Arc::new(g))
            }
            Err(e) if mode == cpu::Mode::Require => {
                return Err(crate::fail(format!(
                    "--cpu-groups require: no per-identity CPU groups here: {e}"
                )));
            }
            Err(e) => {
                cpu_notice = Some(format!(
                    "warden: serve: warning: no per-identity CPU groups ({e}); \
                         identities share the CPU by process (--cpu-groups off silences this)"
                ));
                None
            }
        },
    };
    Ok((cpu, cpu_notice))
}

/// The audit log file, shared by the server's own records and its workers' lines.
#[derive(Clone)]
struct Log(Arc<Mutex<std::fs::File>>);

impl Log {
    fn write_line(&self, line: &[u8]) {
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line) {
            eprintln!("warden: cannot write the audit log: {e}");
        }
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_line(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One run request, queued for a worker.
struct Job {
    run: String,
    args: Vec<String>,
    stdin: Vec<u8>,
    /// A request for the component's `wasi:http/incoming-handler` instead of a run.
    http: Option<proto::HttpIn>,
    reply: oneshot::Sender<proto::Answer>,
}

/// One served identity.
struct Ident {
    name: String,
    id: String,
    manifest: PathBuf,
    kind: String,
    sha256: String,
    /// The SHA-256 of the manifest's bytes this identity was loaded from: a worker is only
    /// taken if the file still holds them (and the module still hashes to `sha256`), as a
    /// worker reads both itself when it starts.
    manifest_sha256: String,
    /// The workload exports `wasi:http/incoming-handler` (served under `/http/NAME/`).
    http: bool,
    wall: Duration,
    stdin_granted: bool,
    /// The largest frame a worker of this identity may send: its output limit, as JSON
    /// (each byte escaped to at most six), plus room for the rest of the answer.
    max_frame: usize,
    /// The environment variables a worker of this identity gets: its manifest's `env:`
    /// secret sources and `[env]` copies, and what warden itself reads ([`WORKER_ENV`]).
    env: Vec<String>,
    /// The policy, when each run needs the server to stage single-file grants or read
    /// `file:` secrets for the worker (see `files`).
    prepare: Option<Arc<Policy>>,
    tx: mpsc::Sender<Job>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    workers: AtomicUsize,
    in_flight: AtomicUsize,
    /// Set when a reload replaced this version of the identity: its workers finish the runs
    /// they hold and those already queued, take no new ones, and end.
    retired: watch::Sender<bool>,
}

impl Ident {
    /// An identity served from `policy` (its manifest's bytes hashing to `manifest_sha256`),
    /// with a queue of `queue` runs; `kind`, `sha256` and `http` come from its first worker.
    fn new(policy: &Policy, manifest_sha256: String, queue: usize) -> Ident {
        let (tx, rx) = mpsc::channel(queue);
        let output = usize::try_from(policy.limits.output).unwrap_or(usize::MAX);
        Ident {
            name: policy.identity.name.clone(),
            id: policy.identity.id.clone(),
            manifest: policy
                .manifest
                .clone()
                .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
                .unwrap_or_default(),
            kind: String::new(),
            sha256: String::new(),
            manifest_sha256,
            http: false,
            wall: policy.limits.wall,
            stdin_granted: policy.stdio.stdin == warden::manifest::StdinMode::Inherit,
            max_frame: output.saturating_mul(6).saturating_add(1 << 20),
            env: worker_env(policy),
            prepare: files::needed(policy).then(|| Arc::new(policy.clone())),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            workers: AtomicUsize::new(1),
            in_flight: AtomicUsize::new(0),
            retired: watch::channel(false).0,
        }
    }

    fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn is_retired(&self) -> bool {
        *self.retired.borrow()
    }
}

struct State {
    /// The version of each identity that new runs go to; a reload swaps entries.
    idents: std::sync::RwLock<BTreeMap<String, Arc<Ident>>>,
    /// Each `--manifest` path as given, with the identity it was started with: what a
    /// reload reads again.
    sources: Vec<(PathBuf, String)>,
    /// Held for the whole of a reload, so that two never interleave.
    reloading: tokio::sync::Mutex<()>,
    /// `--queue`, for the identities a reload makes.
    queue: usize,
    /// `--audit`, which no reloaded manifest may grant its guest write access to.
    audit_path: Option<PathBuf>,
    /// The token `POST /v1/reload` needs (`--reload-token-file`).
    reload_token: Option<Vec<u8>>,
    metrics: Mutex<metrics::Metrics>,
    log: Option<Log>,
    sink: AuditSink,
    draining: AtomicBool,
    shutdown: watch::Sender<bool>,
    exe: PathBuf,
    lockdown: bool,
    max_workers: usize,
    connections: AtomicUsize,
    /// Each identity's CPU group, when there are groups (`--cpu-groups`).
    cpu: Option<Arc<cpu::Groups>>,
    /// Runs a worker holds at once (`--runs-per-worker`).
    runs_per_worker: usize,
    /// Timeouts and bounds of client connections (`--header-timeout`, …).
    door: Arc<front::FrontDoor>,
}

impl State {
    fn metrics(&self) -> std::sync::MutexGuard<'_, metrics::Metrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version of identity `name` that new runs go to.
    fn ident(&self, name: &str) -> Option<Arc<Ident>> {
        let idents = self.idents.read().unwrap_or_else(|p| p.into_inner());
        idents.get(name).cloned()
    }

    /// The served identities (the versions new runs go to), by name.
    fn all(&self) -> Vec<Arc<Ident>> {
        let idents = self.idents.read().unwrap_or_else(|p| p.into_inner());
        idents.values().cloned().collect()
    }
}

/// `warden serve`.
pub fn serve(args: ServeArgs) -> ExitCode {
    let policies = match load_manifests(&args.manifests) {
        Ok(p) => p,
        Err(e) => return crate::fail(e),
    };
    if let Some(path) = &args.audit {
        for (policy, _) in &policies {
            if let Some(e) = audit_log_writable(policy, path) {
                return crate::fail(e);
            }
        }
    }
    let reload_token = match &args.reload_token_file {
        None => None,
        Some(path) => match reload::read_token(path) {
            Ok(t) => Some(t),
            Err(e) => return crate::fail(e),
        },
    };
    let log = match &args.audit {
        None => None,
        Some(path) => match warden::open_append_private(path) {
            Ok(f) => Some(Log(Arc::new(Mutex::new(f)))),
            Err(e) => {
                return crate::fail(format!(
                    "{}: cannot open the audit log: {e}",
                    path.display()
                ));
            }
        },
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return crate::fail(format!("cannot find the warden executable: {e}")),
    };
    if args.seccomp == Lockdown::Off {
        eprintln!("warden: warning: --seccomp off: workers run without their syscall allow list");
    } else if let Err(e) = warden::host_seccomp::supported() {
        return crate::fail(format!(
            "host lockdown is not available here ({e}); refusing to serve unprotected \
             (--seccomp off serves without it)"
        ));
    }
    // Said once serving (a start that fails says one line only).
    let names: Vec<&str> = policies
        .iter()
        .map(|(p, _)| p.identity.name.as_str())
        .collect();
    let (cpu, cpu_notice) = match cpu_groups(args.cpu_groups, &names) {
        Ok(groups) => groups,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warden-serve")
        .build()
    {
        Ok(r) => r,
        Err(e) => return crate::fail(format!("cannot start the server's runtime: {e}")),
    };
    let (shutdown, _) = watch::channel(false);
    let sink = match &log {
        Some(l) => AuditSink::to_writer(l.clone()).with_format(args.audit_format.into()),
        None => AuditSink::disabled(),
    };
    let sources = args
        .manifests
        .iter()
        .zip(&policies)
        .map(|(path, (p, _))| (path.clone(), p.identity.name.clone()))
        .collect();
    let state = State {
        idents: std::sync::RwLock::default(),
        sources,
        reloading: tokio::sync::Mutex::new(()),
        queue: args.queue,
        audit_path: args.audit.clone(),
        reload_token,
        metrics: Mutex::default(),
        log,
        sink,
        draining: AtomicBool::new(false),
        shutdown,
        exe,
        lockdown: args.seccomp == Lockdown::Enforce,
        max_workers: args.max_workers,
        connections: AtomicUsize::new(0),
        door: Arc::new(front::FrontDoor::new(
            args.header_timeout,
            args.idle_timeout,
            args.max_connections,
            args.max_body_memory,
        )),
        cpu: cpu.clone(),
        runs_per_worker: args.runs_per_worker,
    };
    let code = runtime.block_on(serve_async(state, policies, args.listen, cpu_notice));
    // Workers still running (a drain that ran out of time) are killed as their handles drop.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // The last handle on the CPU groups: they are removed once their workers are gone.
    drop(cpu);
    // Staging of runs a drain that ran out of time left behind: removed, not copied back.
    warden::policy::finish_all_staging(false);
    code
}

/// Why the audit log at `path` cannot be written beside `policy`'s workload, if it cannot.
fn audit_log_writable(policy: &Policy, path: &std::path::Path) -> Option<String> {
    policy.writable_by_guest(path).map(|g| {
        format!(
            "{}: the audit log is inside the read-write grant of {} ({}) of `{}`: that \
             workload could rewrite the record; write it elsewhere",
            path.display(),
            g.host.display(),
            g.guest,
            policy.identity.name
        )
    })
}

async fn serve_async(
    state: State,
    policies: Vec<(Policy, String)>,
    listen: SocketAddr,
    cpu_notice: Option<String>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return crate::fail(format!(
                "cannot install the SIGTERM/SIGINT/SIGHUP handlers: {e}"
            ));
        }
    };
    // Every workload's first worker is started (and has loaded its workload) before the
    // server listens: a manifest that cannot load stops `warden serve` at once.
    let mut first = Vec::new();
    for (policy, manifest_sha256) in policies {
        let mut ident = Ident::new(&policy, manifest_sha256, state.queue);
        let (proc, ready) = match spawn_worker(&state, &ident).await {
            Ok(p) => p,
            Err(e) => return crate::fail(format!("{}: {e}", ident.name)),
        };
        ident.kind = ready.kind;
        ident.sha256 = ready.sha256;
        ident.http = ready.http;
        let ident = Arc::new(ident);
        state
            .idents
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ident.name.clone(), ident.clone());
        first.push((ident, proc));
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return crate::fail(format!("cannot listen on {listen}: {e}")),
    };
    let addr = listener.local_addr().unwrap_or(listen);
    let state = Arc::new(state);
    for (ident, proc) in first {
        tokio::spawn(worker_task(state.clone(), ident, Some(proc)));
    }
    println!(
        "warden: serving {} workload(s) on http://{addr}",
        state.all().len()
    );
    if let Some(notice) = cpu_notice {
        eprintln!("{notice}");
    }
    let mut told_out_of_descriptors = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(place) = state.door.admit() else {
                        // At the cap: closed at once, so the backlog never fills up.
                        drop(stream);
                        state.metrics().connection_refused();
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(state.clone(), stream, peer, place));
                }
                Err(e) => {
                    if front::out_of_descriptors(&e) && !told_out_of_descriptors {
                        told_out_of_descriptors = true;
                        eprintln!(
                            "warden: serve: out of file descriptors ({e}); accepting again \
                             as they free up (raise the limit or lower --max-connections)"
                        );
                    }
                    front::back_off(&e).await;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                // Off the accept loop: a reload waits for new workers to load.
                let state = state.clone();
                tokio::spawn(async move { reload::reload(&state, "SIGHUP").await });
            }
        }
    }
    // Stop accepting, refuse new runs, let queued and running ones finish within their wall
    // limits (the workers drain their queues, then end), close connections once answered.
    drop(listener);
    state.draining.store(true, Ordering::SeqCst);
    state.shutdown.send_replace(true);
    let longest = state.all().iter().map(|i| i.wall).max().unwrap_or_default();
    let queued_max = state.all().iter().map(|i| i.queued()).max().unwrap_or(0);
    // Each queued run may take its wall limit (plus grace) on a single worker.
    let budget = (longest + WALL_GRACE)
        .saturating_mul(u32::try_from(queued_max + 1).unwrap_or(u32::MAX))
        + Duration::from_secs(1);
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        let workers: usize = state
            .all()
            .iter()
            .map(|i| i.workers.load(Ordering::SeqCst))
            .sum();
        if workers == 0 && state.connections.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("warden: serve: stopped");
    ExitCode::SUCCESS
}

/// One HTTP/1.1 connection (keep-alive), closed gracefully when the server stops, and at
/// once when its client is too slow with a request head or idle too long (see `front`).
async fn connection(
    state: Arc<State>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    place: front::Admitted,
) {
    state.connections.fetch_add(1, Ordering::SeqCst);
    let clock = front::Clock::new();
    let svc_state = state.clone();
    let svc_clock = clock.clone();
    let service = hyper::service::service_fn(move |req| {
        let state = svc_state.clone();
        let clock = svc_clock.clone();
        async move {
            let _served = clock.request_started();
            handle(state, req, peer).await
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(
        hyper_util::rt::TokioIo::new(front::Watched::new(stream, clock.clone())),
        service,
    );
    let mut conn = std::pin::pin!(conn);
    let mut stop = state.shutdown.subscribe();
    let mut watch = tokio::time::interval(front::watch_period(&state.door));
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                break;
            }
            _ = watch.tick() => {
                if let Some(why) = clock.expired(&state.door) {
                    state.metrics().connection_closed(why);
                    break;
                }
            }
        }
    }
    drop(place);
    state.connections.fetch_sub(1, Ordering::SeqCst);
}

type Answer = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Answer {
    reply(status, "application/json", format!("{v}\n"))
}

fn error_reply(status: StatusCode, message: &str) -> Answer {
    json_reply(status, &json!({ "error": message }))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Answer, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    Ok(match (&method, route::endpoint(&path)) {
        (&hyper::Method::GET, Endpoint::Health) => {
            if state.draining.load(Ordering::SeqCst) {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "stopping\n")
            } else {
                reply(StatusCode::OK, "text/plain", "ok\n")
            }
        }
        (&hyper::Method::GET, Endpoint::Metrics) => {
            let idents = state.all();
            let gauges: Vec<metrics::Gauges<'_>> = idents
                .iter()
                .map(|i| metrics::Gauges {
                    name: &i.name,
                    workers: i.workers.load(Ordering::SeqCst),
                    queued: i.queued(),
                    in_flight: i.in_flight.load(Ordering::SeqCst),
                })
                .collect();
            let text = state.metrics().render(&gauges);
            reply(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&hyper::Method::GET, Endpoint::Workloads) => {
            let list: Vec<Value> = state
                .all()
                .iter()
                .map(|i| {
                    json!({
                        "name": i.name, "identity": i.id, "kind": i.kind, "sha256": i.sha256,
                        "manifest_sha256": i.manifest_sha256,
                    })
                })
                .collect();
            json_reply(StatusCode::OK, &Value::Array(list))
        }
        (&hyper::Method::POST, Endpoint::Runs(name)) => {
            let name = name.to_string();
            run_request(&state, &name, req).await
        }
        (&hyper::Method::POST, Endpoint::Reload) => reload::request(&state, &req, peer).await,
        (_, Endpoint::Reload) => error_reply(StatusCode::METHOD_NOT_ALLOWED, "use POST to reload"),
        (_, Endpoint::Runs(name)) if state.ident(name).is_some() => {
            error_reply(StatusCode::METHOD_NOT_ALLOWED, "use POST to start a run")
        }
        (_, Endpoint::Http(name)) if state.ident(name).is_some() => {
            let name = name.to_string();
            http::request(&state, &name, req).await
        }
        _ => error_reply(StatusCode::NOT_FOUND, "no such path or workload"),
    })
}

/// `POST /v1/workloads/NAME/runs`.
async fn run_request(state: &Arc<State>, name: &str, req: Request<Incoming>) -> Answer {
    let started = Instant::now();
    let Some(ident) = state.ident(name) else {
        return error_reply(
            StatusCode::NOT_FOUND,
            &format!("no workload named `{name}`"),
        );
    };
    if state.draining.load(Ordering::SeqCst) {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let args = match route::parse_args(req.uri().query().unwrap_or("")) {
        Ok(a) => a,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e),
    };
    let (body, _held) = match read_body(state, req.into_body()).await {
        Ok(b) => b,
        Err(front::BodyError::TooLarge) => {
            return error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body (the run's stdin) is limited to {MAX_STDIN_BYTES} bytes"),
            );
        }
        Err(front::BodyError::Busy) => return body_memory_busy(state),
        Err(front::BodyError::Read(e)) => {
            return error_reply(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"));
        }
    };
    // Without a stdin grant the guest reads nothing, whatever was sent.
    let stdin = if ident.stdin_granted {
        body.to_vec()
    } else {
        Vec::new()
    };
    let answer = match enqueue(state, &ident, args, stdin, None).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    state.metrics().run(
        &ident.name,
        &answer.outcome,
        started.elapsed().as_secs_f64(),
    );
    json_reply(
        StatusCode::OK,
        &json!({
            "run": answer.run, "outcome": answer.outcome, "code": answer.code,
            "stdout": answer.stdout, "stderr": answer.stderr, "wall_ms": answer.wall_ms,
        }),
    )
}

/// Queues a job for `ident`'s workers and waits for its answer; `Err` is the refusal to send
/// instead (429 when the queue is full, 503 while stopping).
async fn enqueue(
    state: &Arc<State>,
    ident: &Arc<Ident>,
    args: Vec<String>,
    stdin: Vec<u8>,
    http: Option<proto::HttpIn>,
) -> Result<proto::Answer, Answer> {
    let name = &ident.name;
    let (tx, rx) = oneshot::channel();
    let mut job = Job {
        run: Audit::new_run_id(),
        args,
        stdin,
        http,
        reply: tx,
    };
    let mut ident = ident.clone();
    // A queue is closed only once a reload retired its version: the run goes to the version
    // that replaced it (a reload in a row may retire that one too meanwhile).
    let sent = loop {
        match ident.tx.try_send(job) {
            Err(mpsc::error::TrySendError::Closed(j)) if ident.is_retired() => {
                match state.ident(name) {
                    Some(next) if !Arc::ptr_eq(&next, &ident) => {
                        ident = next;
                        job = j;
                    }
                    _ => break Err(mpsc::error::TrySendError::Closed(j)),
                }
            }
            other => break other,
        }
    };
    match sent {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            state.metrics().rejection(&ident.name);
            let mut r = error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("`{name}` has {} runs waiting already", ident.queued()),
            );
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(RETRY_AFTER_SECS),
            );
            return Err(r);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return Err(error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is stopping",
            ));
        }
    }
    scale_up(state, &ident);
    rx.await.map_err(|_| {
        error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server stopped before the run started",
        )
    })
}

/// A request body of at most [`MAX_STDIN_BYTES`], held against `--max-body-memory` until the
/// returned permit is dropped.
async fn read_body(
    state: &State,
    body: Incoming,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), front::BodyError> {
    state.door.read_body(body, MAX_STDIN_BYTES).await
}

/// The answer to a request whose body would pass `--max-body-memory`.
fn body_memory_busy(state: &State) -> Answer {
    state.metrics().connection_closed("body memory");
    let mut r = error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "the server holds {} bytes of request bodies at most (--max-body-memory); try again",
            state.door.max_body_memory
        ),
    );
    r.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

/// Starts one more worker for `ident` when more runs are waiting than it has idle workers,
/// up to the cap.
fn scale_up(state: &Arc<State>, ident: &Arc<Ident>) {
    if ident.is_retired() {
        // Its queue takes no more runs; the workers it has finish those it holds.
        return;
    }
    let idle = (ident.workers.load(Ordering::SeqCst) * state.runs_per_worker)
        .saturating_sub(ident.in_flight.load(Ordering::SeqCst));
    if ident.queued() <= idle {
        return;
    }
    let grew = ident
        .workers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < state.max_workers).then_some(n + 1)
        })
        .is_ok();
    if grew {
        tokio::spawn(worker_task(state.clone(), ident.clone(), None));
    }
}

/// A live worker process and its pipes.
struct Proc {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    frames: proto::FrameReader<tokio::process::ChildStdout>,
}

/// Starts a worker of `ident` and waits until it has loaded its workload and locked down.
async fn spawn_worker(state: &State, ident: &Ident) -> Result<(Proc, proto::Ready), String> {
    let loaded = reload::manifest_digest(&ident.manifest);
    let mut cmd = tokio::process::Command::new(&state.exe);
    cmd.arg("serve-worker")
        .arg("--manifest")
        .arg(&ident.manifest)
        .arg("--runs")
        .arg(state.runs_per_worker.to_string());
    if !state.lockdown {
        cmd.arg("--no-lockdown");
    }
    cmd.env_clear();
    for name in &ident.env {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        // A ^C at the terminal goes to the server, which stops its workers itself.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    // Into its identity's CPU group before it is sent a run (it is loading its workload),
    // from a blocking thread: the cgroup write can take the kernel milliseconds under load.
    if let Some(groups) = state.cpu.clone() {
        let (name, pid) = (ident.name.clone(), child.id());
        let placed = tokio::task::spawn_blocking(move || match pid {
            Some(pid) => groups.place(&name, pid),
            None => Err("the worker ended at once".into()),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = placed {
            let _ = child.kill().await;
            return Err(format!("cannot place a worker in its CPU group: {e}"));
        }
    }
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("cannot start a worker: no pipes".into());
    };
    let mut proc = Proc {
        child,
        stdin,
        frames: proto::FrameReader::new(stdout, ident.max_frame),
    };
    let frame = tokio::time::timeout(COMPILE_BUDGET_FLOOR, proc.frames.next()).await;
    match frame {
        Err(_) => Err(format!(
            "the worker did not load its workload within {COMPILE_BUDGET_FLOOR:?}"
        )),
        Ok(Ok(Some((proto::KIND_READY, p)))) => {
            let ready: proto::Ready = serde_json::from_slice(&p)
                .map_err(|e| format!("the worker's ready message: {e}"))?;
            // The worker read the manifest and the module itself: it is this version only if
            // the manifest's bytes are still the ones this identity was loaded from (read
            // before the worker started, `loaded`, and after it was ready) and the module
            // hashes as before.
            let now = reload::manifest_digest(&ident.manifest);
            let module_moved = !ident.sha256.is_empty() && ready.sha256 != ident.sha256;
            if loaded.as_deref() != Some(ident.manifest_sha256.as_str())
                || now.as_deref() != Some(ident.manifest_sha256.as_str())
                || module_moved
            {
                let _ = proc.child.kill().await;
                return Err(format!(
                    "{} or its module changed on disk since it was loaded: a worker of the \
                     version served cannot start (reload to serve the new one)",
                    ident.manifest.display()
                ));
            }
            Ok((proc, ready))
        }
        Ok(Ok(Some((proto::KIND_FAILED, p)))) => Err(String::from_utf8_lossy(&p).into_owned()),
        Ok(Ok(_)) | Ok(Err(_)) => {
            let status = proc.child.wait().await;
            Err(format!("the worker ended before it was ready ({status:?})"))
        }
    }
}

/// The fields of a worker's audit record the server checks or counts (borrowed unless a
/// value has escapes).
#[derive(serde::Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    identity: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    run: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    decision: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    capability: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Option<std::borrow::Cow<'a, str>>,
    code: Option<i64>,
}

/// Writes a worker's audit record to the log, if it is one of this identity's runs' records
/// that the worker holds (in `sent`), and counts its denials.
fn forward_audit(state: &State, ident: &Ident, sent: &mut HashMap<String, Sent>, line: &[u8]) {
    let one_line = line.last() == Some(&b'\n') && !line[..line.len() - 1].contains(&b'\n');
    // Only the fields the server looks at, borrowed: a full parse of every `start` record
    // (all the grants) would cost the server more than the run.
    let record: Option<Record<'_>> = one_line
        .then(|| serde_json::from_slice(line).ok())
        .flatten();
    let Some((record, run)) = record
        .filter(|r| r.identity == ident.id.as_str())
        .and_then(|r| sent.get_mut(&*r.run).map(|run| (r, run)))
    else {
        state.metrics().forged(&ident.name);
        eprintln!(
            "warden: serve: dropped an audit record from a worker of `{}` that is not one of \
             its runs'",
            ident.name
        );
        return;
    };
    match &*record.event {
        "decision" if record.decision.as_deref() == Some("deny") => {
            state.metrics().denial(
                &ident.name,
                record.capability.as_deref().unwrap_or("unknown"),
            );
        }
        "exit" => {
            run.exit_seen = Some((
                record.outcome.as_deref().unwrap_or("unknown").to_string(),
                record
                    .code
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(125),
            ));
        }
        _ => {}
    }
    if let Some(log) = &state.log {
        if state.sink.format() == warden::AuditFormat::Json {
            log.write_line(line);
        } else {
            // Checked above to be one JSON line of this worker's run: encoded by the
            // server, whose encoder saw the run's `start`. (Were it not JSON, it would still
            // be written as an OCSF event, an Application Error keeping it whole.)
            let native = serde_json::from_slice::<serde_json::Value>(line).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(line).into_owned())
            });
            state.sink.write_native(&native);
        }
    }
}

/// A run sent to a worker and not answered yet.
struct Sent {
    job: Job,
    started: Instant,
    deadline: tokio::time::Instant,
    /// The run's exit record, once the worker has sent it.
    exit_seen: Option<(String, i32)>,
    /// Its single-file grants, staged by the server (see `files`).
    staged: Option<warden::policy::StagedFiles>,
}

/// Why a worker's life ended with runs unanswered.
enum End {
    /// Its pipe closed or a write to it failed: it died.
    Died,
    /// It broke the protocol (the server kills it).
    Broke(&'static str),
    /// A run passed its wall limit and grace unanswered (the server kills it).
    Late,
}

/// The next queued run of `ident`: waits for one, unless the server is stopping or a reload
/// retired this version (then only one already queued, or `None`).
async fn next_job(ident: &Ident, stop: &watch::Receiver<bool>) -> Option<Job> {
    let mut rx = ident.rx.lock().await;
    if *stop.borrow() {
        return rx.try_recv().ok();
    }
    if ident.is_retired() {
        rx.close();
        return rx.try_recv().ok();
    }
    let mut stop = stop.clone();
    let mut retired = ident.retired.subscribe();
    tokio::select! {
        j = rx.recv() => j,
        () = stopped(&mut stop) => rx.try_recv().ok(),
        () = stopped(&mut retired) => {
            rx.close();
            rx.try_recv().ok()
        }
    }
}

/// Runs still queued for a retired version whose last worker has ended (it died, or no
/// worker of that version could be started again): they go to the version that replaced it,
/// or, when its queue is full, are answered 503 (their reply dropped).
fn hand_over(state: &Arc<State>, ident: &Arc<Ident>) {
    let Ok(mut rx) = ident.rx.try_lock() else {
        return;
    };
    rx.close();
    let next = state.ident(&ident.name).filter(|n| !Arc::ptr_eq(n, ident));
    while let Ok(job) = rx.try_recv() {
        if let Some(next) = &next
            && next.tx.try_send(job).is_ok()
        {
            scale_up(state, next);
        }
    }
}

/// The life of one worker slot of `ident`: send queued jobs to a worker process (up to
/// `--runs-per-worker` at once), forward its records and answers, replace the process when
/// it dies (with backoff), stop when the server drains or (beyond the first worker) when
/// idle.
async fn worker_task(state: Arc<State>, ident: Arc<Ident>, mut first: Option<Proc>) {
    use tokio::io::AsyncWriteExt;
    let mut backoff = BACKOFF_FIRST;
    let stop = state.shutdown.subscribe();
    'life: loop {
        let mut proc = match first.take() {
            Some(p) => p,
            None => match spawn_worker(&state, &ident).await {
                Ok((p, _)) => p,
                Err(e) => {
                    eprintln!("warden: serve: {}: {e}", ident.name);
                    if state.draining.load(Ordering::SeqCst) || ident.is_retired() {
                        break 'life;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let mut sent: HashMap<String, Sent> = HashMap::new();
        // Runs in the order sent: as every run of an identity has the same wall limit, the
        // oldest one still unanswered has the earliest deadline (answered ones are skipped).
        let mut order: VecDeque<(tokio::time::Instant, String)> = VecDeque::new();
        // The server is stopping and no run is left in the queue.
        let mut no_more = false;
        let end = loop {
            while order
                .front()
                .is_some_and(|(_, run)| !sent.contains_key(run))
            {
                order.pop_front();
            }
            if no_more && sent.is_empty() {
                end_worker(proc).await;
                break 'life;
            }
            let deadline = order.front().map(|(d, _)| *d);
            let room = sent.len() < state.runs_per_worker && !no_more;
            tokio::select! {
                frame = proc.frames.next() => match frame {
                    Ok(Some((proto::KIND_AUDIT, line))) => {
                        forward_audit(&state, &ident, &mut sent, &line);
                    }
                    Ok(Some((proto::KIND_ANSWER, p))) => {
                        let answer = serde_json::from_slice::<proto::Answer>(&p).ok();
                        let Some(run) = answer.as_ref().and_then(|a| sent.remove(&a.run)) else {
                            break End::Broke("an answer that is not one of its runs'");
                        };
                        ident.in_flight.fetch_sub(1, Ordering::SeqCst);
                        backoff = BACKOFF_FIRST;
                        if let Some(a) = answer {
                            deliver(run, a);
                        }
                    }
                    Ok(Some(_)) => break End::Broke("a frame of an unknown kind"),
                    Ok(None) => break End::Died,
                    Err(_) => break End::Broke("a malformed frame"),
                },
                job = next_job(&ident, &stop), if room => {
                    let Some(job) = job else {
                        no_more = true;
                        continue;
                    };
                    let mut prepared = files::prepare_for(
                        ident.prepare.as_ref(), &state.sink, &ident.id, &job.run).await;
                    let frame = request_frame(&job, &mut prepared);
                    ident.in_flight.fetch_add(1, Ordering::SeqCst);
                    // A run queued while this one was between the queue and `in_flight` saw
                    // this worker as idle and started none: look again now.
                    scale_up(&state, &ident);
                    // A worker holding several runs answers a run stuck in a host call
                    // itself (its watchdog, at the wall limit and grace): it is killed only if
                    // it does not, a grace later.
                    let grace = if state.runs_per_worker > 1 { WALL_GRACE * 2 } else { WALL_GRACE };
                    let deadline = tokio::time::Instant::now() + ident.wall + grace;
                    order.push_back((deadline, job.run.clone()));
                    let run = job.run.clone();
                    sent.insert(run, Sent {
                        job, started: Instant::now(), deadline, exit_seen: None,
                        staged: prepared.staged,
                    });
                    if proc.stdin.write_all(&frame).await.is_err() {
                        break End::Died;
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => break End::Late,
                () = tokio::time::sleep(IDLE_RETIRE), if sent.is_empty() && !no_more => {
                    let retire = ident.workers.fetch_update(
                        Ordering::SeqCst, Ordering::SeqCst,
                        |n| (n > 1).then(|| n - 1)).is_ok();
                    if retire {
                        end_worker(proc).await;
                        return;
                    }
                }
            }
        };
        // The worker is gone, or is killed now: answer each run it held.
        bury(&state, &ident, proc, &end, &mut sent).await;
        state.metrics().restart(&ident.name);
        if ident.is_retired() {
            // Not replaced: a new worker would read the manifest a reload moved past.
            break 'life;
        }
        if !state.draining.load(Ordering::SeqCst) || ident.queued() > 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
    let last = ident.workers.fetch_sub(1, Ordering::SeqCst) == 1;
    if last && ident.is_retired() {
        hand_over(&state, &ident);
    }
}

/// Kills the worker `proc` if it still runs, waits for it, and answers each run it held
/// (`sent`) as [`settle`] does, saying why it ended (`end`, or its signal or exit code).
async fn bury(
    state: &State,
    ident: &Ident,
    mut proc: Proc,
    end: &End,
    sent: &mut HashMap<String, Sent>,
) {
    let _ = proc.child.start_kill();
    let status = proc.child.wait().await.ok();
    let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
    let code = match (signal, status.and_then(|s| s.code())) {
        (Some(sig), _) => 128 + sig,
        (None, Some(c)) => c,
        (None, None) => 125,
    };
    let why = match (end, signal) {
        (End::Broke(what), _) => format!("the worker sent {what}; the server killed it"),
        (End::Late, _) => format!(
            "a run of the worker did not end within the wall limit and {WALL_GRACE:?}; \
             the server killed the worker"
        ),
        (End::Died, Some(libc::SIGSYS)) => {
            "the worker was killed by its seccomp filter (SIGSYS): it tried a syscall no \
             grant justifies"
                .to_string()
        }
        (End::Died, Some(sig)) => format!("the worker was killed by signal {sig}"),
        (End::Died, None) => format!("the worker exited with code {code} without answering"),
    };
    let now = tokio::time::Instant::now();
    for (_, mut run) in sent.drain() {
        ident.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(staged) = run.staged.take() {
            // As `warden run`: copied back once the run reached its end (its exit record
            // sent) or was stopped past its wall limit (the watchdog's case); a worker that
            // died or broke the protocol mid-run leaves the originals as they were.
            let copy_back = matches!(end, End::Late) || run.exit_seen.is_some();
            files::finish(staged, copy_back).await;
        }
        settle(state, ident, run, code, &why, now);
    }
}

/// Answers a run its worker answered: at once, or, with single-file grants staged for it,
/// once they are copied back (so that the client hears the run is over only then).
fn deliver(run: Sent, answer: proto::Answer) {
    match run.staged {
        None => {
            let _ = run.job.reply.send(answer);
        }
        Some(staged) => {
            let reply = run.job.reply;
            tokio::spawn(async move {
                files::finish(staged, true).await;
                let _ = reply.send(answer);
            });
        }
    }
}

/// The frame that sends `job` to a worker, with what the server `prepared` for it (staged
/// folders or why staging failed, `file:` secrets' values: taken from it, the staging left).
fn request_frame(job: &Job, prepared: &mut files::Prepared) -> Vec<u8> {
    use base64::Engine as _;
    let request = proto::Request {
        run: job.run.clone(),
        args: job.args.clone(),
        stdin: base64::engine::general_purpose::STANDARD.encode(&job.stdin),
        http: job.http.clone(),
        staged: std::mem::take(&mut prepared.folders),
        staging_failed: prepared.failed.take(),
        secrets: std::mem::take(&mut prepared.secrets),
    };
    proto::frame(
        proto::KIND_REQUEST,
        &serde_json::to_vec(&request).unwrap_or_default(),
    )
}

/// Answers a run whose worker died (exit code `code`, because `why`) before answering it:
/// with its exit record's outcome if the worker had sent it, `wall-limit` if the run was past
/// its deadline at `now`, `worker-died` otherwise (with an exit record written for it).
fn settle(
    state: &State,
    ident: &Ident,
    run: Sent,
    code: i32,
    why: &str,
    now: tokio::time::Instant,
) {
    let Sent {
        job,
        started,
        deadline,
        exit_seen,
        ..
    } = run;
    // The run may have finished (its exit record sent) before the worker died.
    if let Some((outcome, code)) = exit_seen {
        let _ = job.reply.send(proto::Answer {
            run: job.run.clone(),
            outcome,
            code,
            stdout: String::new(),
            stderr: String::new(),
            wall_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            http: None,
        });
        return;
    }
    let late = now >= deadline;
    let (outcome, code) = if late {
        ("wall-limit", 124)
    } else {
        ("worker-died", code)
    };
    let audit = Audit::with_run_id(state.sink.clone(), &ident.id, &job.run);
    if late {
        audit.limit(
            "wall",
            u64::try_from(ident.wall.as_millis()).unwrap_or(u64::MAX),
        );
    }
    let wall_ms = u64::try_from((ident.wall + WALL_GRACE).as_millis()).unwrap_or(u64::MAX);
    audit.exit(warden::audit::Exit::from_outside(
        outcome,
        code,
        late.then_some(wall_ms),
        why,
    ));
    eprintln!("warden: serve: {}: run {}: {why}", ident.name, job.run);
    let _ = job.reply.send(proto::Answer {
        run: job.run.clone(),
        outcome: outcome.into(),
        code,
        stdout: String::new(),
        stderr: String::new(),
        wall_ms: if late { wall_ms } else { 0 },
        http: None,
    });
}

/// Resolves once the server is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Closes a worker's stdin (it ends at end of stream) and waits for it, killing it if it
/// does not end promptly.
async fn end_worker(proc: Proc) {
    let Proc {
        mut child, stdin, ..
    } = proc;
    drop(stdin);
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
