//! `warden serve-worker`: one worker process of one identity. Started by `warden serve` (never
//! by hand) with a pipe from the server as stdin and a pipe to it as stdout. It loads the
//! manifest and its workload (pre-instantiated, instances from the pooling allocator), locks
//! itself down to the manifest's seccomp profile plus reading its stdin (the `stdin` group:
//! `read` of fd 0 only), says it is ready, then runs requests until its stdin closes: one at a
//! time on its main thread, or (`--runs-per-worker` above 1) up to that many at once, each on
//! a run thread started before the lockdown. `env:` secrets are read here, never in the
//! server; `file:` secrets and single-file grants are read and staged by the server for each
//! run and handed over with the request (see `files`).

use super::proto::{self, Answer, Ready, Request};
use base64::Engine as _;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use warden::{AuditSink, EngineSettings, Input, Manifest, Policy, RunOptions, Warden};

/// The pipe to the server: a duplicate of stdout, so that a frame is one `write` rather than
/// going through stdout's line buffering (which splits a frame at its last newline).
static OUT: std::sync::OnceLock<Option<std::sync::Mutex<std::fs::File>>> =
    std::sync::OnceLock::new();

/// The pipe to the server, duplicated on first use (which [`run`] makes before its lockdown:
/// `dup` is not in any profile).
fn out() -> &'static Option<std::sync::Mutex<std::fs::File>> {
    use std::os::fd::AsFd;
    OUT.get_or_init(|| {
        let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        Some(std::sync::Mutex::new(std::fs::File::from(fd)))
    })
}

/// Writes one frame to the server, in one locked write.
fn send(kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let bytes = proto::frame(kind, payload);
    match out() {
        Some(file) => file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(&bytes),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()
        }
    }
}

/// The audit sink of a worker: each record goes to the server as one frame. The `start`
/// record's `seccomp` field says `off` for a run that installs no filter of its own; the
/// worker's filter, installed once before its first run, is put in its place.
struct FrameAudit {
    seccomp: Option<String>,
}

/// What the library writes into a start record when the run itself installs no filter.
const RUN_SECCOMP_OFF: &str = r#""seccomp":{"mode":"off","syscalls":null}"#;

impl Write for FrameAudit {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A quote inside a JSON string is escaped, so the pattern only matches the field.
        let line = match &self.seccomp {
            Some(real) if buf.starts_with(b"{") => {
                let text = String::from_utf8_lossy(buf);
                if text.contains(r#""event":"start""#) {
                    text.replacen(RUN_SECCOMP_OFF, real, 1).into_bytes()
                } else {
                    buf.to_vec()
                }
            }
            _ => buf.to_vec(),
        };
        send(proto::KIND_AUDIT, &line)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn failed(message: impl std::fmt::Display) -> ExitCode {
    let _ = send(proto::KIND_FAILED, message.to_string().as_bytes());
    ExitCode::from(125)
}

/// The most runs at once of a worker whose instances come from the pooling allocator: its
/// default pool holds 1,000 instances and memories, and a component's run may take several.
const POOLED_RUNS: usize = 64;

/// The worker's whole life; see the module doc.
pub fn run(manifest: &Path, lockdown: bool, runs: usize) -> ExitCode {
    let _ = out();
    let policy = match Manifest::from_file(manifest) {
        Ok(m) => Policy::from_manifest(m),
        Err(e) => return failed(e),
    };
    // Past the host's bound a thread start would abort the worker (EngineSettings docs).
    let host = EngineSettings::host_max_live_runs();
    if runs > host {
        return failed(format!(
            "--runs-per-worker {runs} is more runs than this host's vm.max_map_count allows \
             in one process ({host}); raise it (sysctl vm.max_map_count) or hold fewer"
        ));
    }
    let cache = crate::commands::run::cache_out_of_reach(&policy);
    let settings = |pooling| EngineSettings {
        fuel: policy.limits.fuel.is_some(),
        cache: cache.clone(),
        pooling,
        // A worker runs many requests: one that passes its wall limit is stopped, the
        // worker goes on.
        interruption: warden::Interruption::Epoch,
        // As many live runs as the worker has run threads (prestarted below).
        max_live_runs: Some(runs),
    };
    // The pooling allocator reserves its slots up front; where the host refuses that much
    // address space, instances are allocated per run instead.
    // The pool has slots for about a thousand instances (and memories) at once; a worker
    // holding more runs than [`POOLED_RUNS`] allocates each run's instance on demand.
    let pooled = runs <= POOLED_RUNS;
    let warden = match Warden::new(settings(pooled)).or_else(|_| Warden::new(settings(false))) {
        Ok(w) => w,
        Err(e) => return failed(e),
    };
    let workload = match warden.load(policy.clone()) {
        Ok(w) => w,
        Err(e) => return failed(e),
    };
    // The run thread and the I/O runtime's thread start on first use: start them while that
    // is allowed.
    if let Err(e) = warden.prestart_run_threads(runs) {
        return failed(format!("cannot start the run threads: {e}"));
    }
    // With concurrent runs, their answers are sent from a thread of their own (started now,
    // while starting one is allowed), which awaits each run while the main thread reads the
    // next request.
    let concurrent = if runs > 1 {
        match Concurrent::start() {
            Ok(c) => Some(c),
            Err(e) => return failed(format!("cannot start the answering thread: {e}")),
        }
    } else {
        None
    };
    let (seccomp, syscalls, real) = if lockdown {
        match lock_down(&policy) {
            Ok((syscalls, real)) => ("enforce", Some(syscalls), Some(real)),
            Err(e) => return failed(e),
        }
    } else {
        ("off", None, None)
    };
    let ready = Ready {
        sha256: workload.sha256().to_string(),
        kind: if workload.is_component() {
            "component"
        } else {
            "module"
        }
        .into(),
        seccomp: seccomp.into(),
        syscalls,
        http: workload.handles_http(),
    };
    if send(
        proto::KIND_READY,
        &serde_json::to_vec(&ready).unwrap_or_default(),
    )
    .is_err()
    {
        return ExitCode::from(125);
    }
    let ctx = Ctx {
        sink: AuditSink::to_writer(FrameAudit { seccomp: real }),
        stdin_granted: policy.stdio.stdin == warden::manifest::StdinMode::Inherit,
        identity: policy.identity.id.clone(),
        workload,
    };
    requests(&ctx, concurrent)
}

/// Reads requests from the server until it closes the pipe, and runs each: on this thread,
/// or handed to the answering thread of `concurrent`. Runs still going are answered before
/// it returns.
fn requests(ctx: &Ctx, concurrent: Option<Concurrent>) -> ExitCode {
    let mut input = std::io::stdin().lock();
    loop {
        let (kind, payload) = match proto::read_frame(&mut input, proto::MAX_REQUEST_FRAME) {
            Ok(Some(f)) => f,
            // The server closed the pipe (it is stopping, or retiring this worker).
            Ok(None) => break,
            Err(e) => {
                eprintln!("warden: serve-worker: {e}");
                return ExitCode::from(125);
            }
        };
        if kind != proto::KIND_REQUEST {
            continue;
        }
        let Ok(req) = serde_json::from_slice::<Request>(&payload) else {
            eprintln!("warden: serve-worker: a request that is not JSON");
            return ExitCode::from(125);
        };
        let job = ctx.prepare(req);
        match &concurrent {
            Some(c) => {
                if c.tx.send((ctx.clone(), job)).is_err() {
                    return ExitCode::from(125);
                }
            }
            None => {
                let Job {
                    run,
                    opts,
                    out,
                    http,
                } = job;
                let result = match http {
                    // On this thread: a worker does nothing else meanwhile, and its server
                    // kills it if a guest stays stuck in a host call past the wall limit and
                    // its grace.
                    None => ctx.workload.run_inline(opts).map(|report| (report, None)),
                    Some(http) => ctx
                        .workload
                        .handle_http(http_request(http), opts)
                        .map(|r| (r.run, Some(http_answer(r.response, r.message)))),
                };
                if !ctx.answer(run, result, out) {
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
    // Runs still going are answered before the worker ends.
    if let Some(c) = concurrent {
        drop(c.tx);
        let _ = c.thread.join();
    }
    ExitCode::SUCCESS
}

/// Installs the worker's seccomp profile: the manifest's groups less `file-staging` (the
/// server stages single-file grants and removes their folders, see `files`: a worker only
/// opens the folders it is handed, read-only, as it opens a folder grant), plus reading its
/// requests. The profile's syscall count and the `seccomp` field its start records carry.
fn lock_down(policy: &Policy) -> Result<(usize, String), String> {
    let mut groups = policy.seccomp_groups();
    groups.retain(|g| *g != warden::host_seccomp::Group::FileStaging);
    groups.push(warden::host_seccomp::Group::ServeWorker);
    let profile = warden::host_seccomp::Profile::new(&groups);
    profile
        .install(warden::host_seccomp::Mode::Enforce)
        .map_err(|e| format!("cannot lock the worker down: {e}"))?;
    let real = serde_json::json!({
        "mode": "enforce",
        "syscalls": profile.syscall_count(),
        "groups": profile.groups().iter().map(|g| g.name()).collect::<Vec<_>>(),
        "worker": true,
    });
    Ok((profile.syscall_count(), format!("\"seccomp\":{real}")))
}

/// What every run of this worker shares.
#[derive(Clone)]
struct Ctx {
    workload: warden::Workload,
    sink: AuditSink,
    stdin_granted: bool,
    identity: String,
}

/// One request, ready to run.
struct Job {
    run: String,
    opts: RunOptions,
    out: (warden::Captured, warden::Captured),
    http: Option<proto::HttpIn>,
}

impl Ctx {
    fn prepare(&self, req: Request) -> Job {
        let mut opts = RunOptions::from_policy(self.workload.policy());
        let out = opts.capture_output();
        opts.stdin = if self.stdin_granted {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(req.stdin.as_bytes())
                .unwrap_or_default();
            Input::Bytes(bytes)
        } else {
            Input::Null
        };
        opts.staged = super::files::staged_for_run(&req);
        opts.secrets = std::sync::Arc::new(super::files::ServedSecrets(req.secrets));
        opts.args = req.args;
        opts.audit = self.sink.clone();
        opts.run_id = Some(req.run.clone());
        Job {
            run: req.run,
            opts,
            out,
            http: req.http,
        }
    }

    /// Sends run `run`'s answer; false once the server is gone.
    fn answer(
        &self,
        run: String,
        result: Result<(warden::RunReport, Option<proto::HttpOut>), warden::RunError>,
        (stdout, stderr): (warden::Captured, warden::Captured),
    ) -> bool {
        let answer = match result {
            Ok((report, http)) => Answer {
                run,
                outcome: report.outcome.name().into(),
                code: report.outcome.exit_code(),
                stdout: stdout.text(),
                stderr: stderr.text(),
                wall_ms: u64::try_from(report.wall.as_millis()).unwrap_or(u64::MAX),
                http,
            },
            // The run could not be set up (a NUL byte in an argument, every run thread busy):
            // no guest ran.
            Err(e) => {
                let audit = warden::Audit::with_run_id(self.sink.clone(), &self.identity, &run);
                audit.exit(warden::audit::Exit::from_outside(
                    "error",
                    125,
                    Some(0),
                    &e.to_string(),
                ));
                Answer {
                    run,
                    outcome: "error".into(),
                    code: 125,
                    stdout: String::new(),
                    stderr: e.to_string(),
                    wall_ms: 0,
                    http: None,
                }
            }
        };
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        send(proto::KIND_ANSWER, &bytes).is_ok()
    }
}

/// The answering thread of a worker with concurrent runs: a single-threaded async runtime
/// that starts each job on a run thread (`run_async`) and sends its answer when it ends.
struct Concurrent {
    tx: tokio::sync::mpsc::UnboundedSender<(Ctx, Job)>,
    thread: std::thread::JoinHandle<()>,
}

impl Concurrent {
    fn start() -> std::io::Result<Concurrent> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Ctx, Job)>();
        let thread = std::thread::Builder::new()
            .name("warden-answers".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut running = tokio::task::JoinSet::new();
                    loop {
                        tokio::select! {
                            job = rx.recv() => match job {
                                Some((ctx, job)) => { running.spawn(one(ctx, job)); }
                                None => break,
                            },
                            Some(_) = running.join_next(), if !running.is_empty() => {}
                        }
                    }
                    while running.join_next().await.is_some() {}
                });
            })?;
        Ok(Concurrent { tx, thread })
    }
}

/// One job of a worker with concurrent runs.
async fn one(ctx: Ctx, job: Job) {
    let Job {
        run,
        opts,
        out,
        http,
    } = job;
    let result = match http {
        None => ctx.workload.run_async(opts).await.map(|r| (r, None)),
        Some(http) => ctx
            .workload
            .handle_http_async(http_request(http), opts)
            .await
            .map(|r| (r.run, Some(http_answer(r.response, r.message)))),
    };
    ctx.answer(run, result, out);
}

/// A request from the server as the library's.
fn http_request(h: proto::HttpIn) -> warden::HttpRequest {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut r = warden::HttpRequest::new(&h.method, &h.path);
    r.authority = h.authority;
    r.headers = h
        .headers
        .into_iter()
        .filter_map(|(n, v)| Some((n, b64.decode(v.as_bytes()).ok()?)))
        .collect();
    r.body = b64.decode(h.body.as_bytes()).unwrap_or_default();
    r
}

/// A component's response (or why there is none) for the server.
fn http_answer(response: Option<warden::HttpResponse>, message: Option<String>) -> proto::HttpOut {
    let b64 = base64::engine::general_purpose::STANDARD;
    match response {
        Some(r) => proto::HttpOut {
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .map(|(n, v)| (n, b64.encode(v)))
                .collect(),
            body: b64.encode(&r.body),
            message: None,
        },
        None => proto::HttpOut {
            message,
            ..proto::HttpOut::default()
        },
    }
}
