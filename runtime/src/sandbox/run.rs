//! Running: the run's own thread, the WASI context and the store, the guest's
//! entry point.

use super::limits::{HeapWatch, MemoryLimiter, setup_store};
use super::options::{Input, RunOptions};
use super::outcome::GuestResult;
use super::outcome::{Outcome, RunReport, classify};
use super::{
    ComponentCtx, ComponentEntry, CoreEntry, EPOCH_TICK, Host, Interruption, Prepared, Workload,
};
use crate::audit::{Audit, Decided, Decision, Event, Exit, Start};
use crate::cache::CacheStatus;
use crate::error::{LoadError, RunError};
use crate::grant_use::GrantCounters;
use crate::host_memory;
use crate::policy::{Policy, program_name};
use crate::secrets::SecretsCtx;
use crate::stdio::{LimitedOutput, OutputBudget};
use crate::watchdog::{Armed, LostGuard, Reply, Watch};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{self, ResourceTable, Val};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi_http::WasiHttpCtx;

impl Workload {
    /// The policy this workload runs under.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Lower-case hex SHA-256 of the module's bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// What the compiled-code cache did when this workload was loaded.
    pub fn cache_status(&self) -> &CacheStatus {
        &self.inner.cache
    }

    /// Whether the workload is a component (else a core module).
    pub fn is_component(&self) -> bool {
        matches!(self.inner.pre, Prepared::Component { .. })
    }

    /// Runs the workload once, in a fresh sandbox, and reports how it ended. Guest failures
    /// (exit codes, traps, limits) are outcomes, not errors.
    ///
    /// Blocks the calling thread until the run ends: at most the wall limit, plus
    /// [`WALL_GRACE`](crate::watchdog::WALL_GRACE) for a guest stuck in a host call (see
    /// [`crate::watchdog`]). The guest runs on a thread of its own, so this may be called
    /// from any thread, a tokio runtime's included (where [`Workload::run_async`] is the
    /// better choice: it does not hold a runtime thread while the guest runs).
    ///
    /// # Errors
    /// [`RunError::Start`] when the run could not start: an argument or environment value
    /// holds a NUL byte ([`LoadError::NulByte`]), or the sandbox could not be set up (a
    /// secret could not be read, a granted path could not be opened or staged).
    /// [`RunError::AtCapacity`] when as many runs as the engine allows are live
    /// ([`EngineSettings::max_live_runs`](crate::EngineSettings::max_live_runs)), and
    /// [`RunError::Thread`] when the run's thread could not be started.
    pub fn run(&self, opts: RunOptions) -> Result<RunReport, RunError> {
        self.check_not_http()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.start(opts, None, Reply::Blocking(tx))?;
        rx.recv().unwrap_or(Err(RunError::Lost))
    }

    /// [`Workload::run`] on the calling thread instead of a run thread of the engine's: no
    /// hand-off between threads (two context switches a run fewer), for a process that does
    /// nothing but run workloads one after another, such as a `warden serve` worker.
    ///
    /// Every limit acts as in [`Workload::run`] except how the call returns when the guest is
    /// stuck in a host call past its wall limit: the watchdog still settles the run at the wall
    /// limit plus [`WALL_GRACE`](crate::watchdog::WALL_GRACE) (its `limit` and `exit` records
    /// written, staging cleaned up), but this call returns only when that host call does,
    /// possibly never. Use it only where something outside ends such a caller (a serve worker
    /// is killed by its server at the same deadline); elsewhere use [`Workload::run`]. Not from
    /// inside an async runtime (use [`Workload::run_async`]): it is refused there with
    /// [`RunError::Thread`]. It takes no place among the engine's live runs (the caller's
    /// thread is already spent on it).
    ///
    /// # Errors
    /// As [`Workload::run`].
    pub fn run_inline(&self, opts: RunOptions) -> Result<RunReport, RunError> {
        self.check_not_http()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RunError::Thread(std::io::Error::other(
                "run_inline called inside an async runtime: use run_async",
            )));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let watch = Watch::new(Reply::Blocking(tx));
        if let Some(result) = self.run_here(opts, None, &watch) {
            watch.send(result.map_err(RunError::Start));
        }
        rx.recv().unwrap_or(Err(RunError::Lost))
    }

    /// [`Workload::run`] for async callers: the guest runs on a thread of its own and the
    /// returned future completes when the run ends, without holding a runtime thread. Works
    /// under any executor (the run needs nothing of the caller's runtime); dropping the
    /// future does not stop the run, which still ends by its limits.
    ///
    /// # Errors
    /// As [`Workload::run`].
    pub async fn run_async(&self, opts: RunOptions) -> Result<RunReport, RunError> {
        self.check_not_http()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.start(opts, None, Reply::Async(tx))?;
        rx.await.unwrap_or(Err(RunError::Lost))
    }

    /// Starts a run on a thread of its own (an idle one of the engine's, or a new one); its
    /// report goes to `reply`.
    ///
    /// Why a plain thread rather than a task: the guest executes synchronously (the sync WASI
    /// bindings, whose host calls enter wasmtime-wasi's own tokio runtime, and would panic on
    /// a thread already inside one), the epoch, fuel and memory limits all act on the guest's
    /// own thread whatever it is, and a guest blocked in a host call must be abandonable by
    /// the watchdog without blocking anyone else's thread.
    pub(super) fn start(
        &self,
        opts: RunOptions,
        exchange: Option<super::http::Exchange>,
        reply: Reply,
    ) -> Result<(), RunError> {
        let watch = Watch::new(reply);
        let workload = self.clone();
        let guard = LostGuard(watch.clone());
        let pool = self.inner.warden.inner.runs.clone();
        pool.execute(move |slot| {
            let guard = guard;
            let result = workload.run_here(opts, exchange, &guard.0);
            // The run is over: its place among the live runs is free before anyone hears so.
            drop(slot);
            if let Some(result) = result {
                guard.0.send(result.map_err(RunError::Start));
            }
        })
        .map_err(|e| match e {
            crate::run_pool::PoolError::Full(limit) => RunError::AtCapacity { limit },
            crate::run_pool::PoolError::Thread(e) => RunError::Thread(e),
        })
    }

    /// An HTTP handler has no entry point to run without a request.
    fn check_not_http(&self) -> Result<(), RunError> {
        if self.handles_http() {
            return Err(RunError::Start(LoadError::Entry {
                path: self.inner.path.clone(),
                message: "the component exports wasi:http/incoming-handler, not wasi:cli/run: \
                          serve it with `warden serve` (under /http/NAME/) or call \
                          `Workload::handle_http`"
                    .into(),
            }));
        }
        Ok(())
    }

    /// The run itself, on its own thread: the start record, the WASI context, the lockdown,
    /// the guest, the exit record. `None` when the watchdog settled the run (it was stuck in a
    /// host call) and the report is no longer this thread's to give.
    fn run_here(
        &self,
        opts: RunOptions,
        exchange: Option<super::http::Exchange>,
        watch: &Arc<Watch>,
    ) -> Option<Result<RunReport, LoadError>> {
        let w = &*self.inner;
        let policy = &w.policy;
        let profile = opts.lockdown.map(|mode| {
            let mut groups = policy.seccomp_groups();
            if matches!(opts.stdin, Input::Inherit) {
                groups.push(host_seccomp::Group::Stdin);
            }
            (mode, host_seccomp::Profile::new(&groups))
        });
        let audit = match &opts.run_id {
            Some(id) => Audit::with_run_id(opts.audit.clone(), &policy.identity.id, id),
            None => Audit::new(opts.audit.clone(), &policy.identity.id),
        };
        let failed = |e: LoadError| {
            audit.error(&e.to_string(), None);
            Some(Err(e))
        };
        if let Err(e) = check_no_nul(policy, &opts.args) {
            return failed(e);
        }
        self.write_start(&audit, profile.as_ref());

        let budget = OutputBudget::new(policy.limits.output);
        let counters = Arc::new(GrantCounters::new(&policy.files, &policy.env));
        let mut builder = self.streams(&opts, &audit, &counters, &budget);
        let egress = match policy.egress_with(&audit, &*opts.secrets) {
            Ok(e) => e,
            Err(e) => return failed(e),
        };
        let staging = match policy.configure_wasi(
            &mut builder,
            &egress,
            &audit,
            &counters,
            opts.record_fs,
            opts.staged.as_ref(),
        ) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let sandbox = Sandbox {
            audit: &audit,
            counters: &counters,
            budget: &budget,
            egress: &egress,
            preopens: staging.preopens().to_vec(),
            record_fs: opts.record_fs,
            stdout: &opts.stdout,
        };

        // Everything is set up: lock the host down before the first guest instruction.
        if let Some((mode, profile)) = &profile
            && let Err(e) = lock_down(*mode, profile)
        {
            return failed(e);
        }
        let started = Instant::now();
        watch.arm(
            &w.warden.inner.watchdog,
            Armed {
                started,
                wall: policy.limits.wall,
                audit: audit.clone(),
                staging: staging.handle(),
                output: budget.clone(),
                check: self.watchdog_check(&sandbox),
            },
        );
        let ran = self.call_guest(builder, &sandbox, exchange);
        let wall = started.elapsed();

        // However the guest ended (limits included), its read-write files are copied back
        // under the checks of `FileStaging::finish`, and the staging folders removed.
        staging.finish(true);
        // The watchdog settled the run while the guest was stuck: it wrote the records.
        if !watch.claim() {
            return None;
        }
        Some(Ok(self.settle(ran, wall, &sandbox)))
    }

    /// Writes the run's `start` record (only when records are kept: it lists every grant).
    fn write_start(
        &self,
        audit: &Audit,
        profile: Option<&(host_seccomp::Mode, host_seccomp::Profile)>,
    ) {
        if !audit.is_enabled() {
            return;
        }
        let w = &*self.inner;
        let policy = &w.policy;
        let seccomp = match profile {
            Some((mode, p)) => json!({
                "mode": mode.name(),
                "syscalls": p.syscall_count(),
                "groups": p.groups().iter().map(|g| g.name()).collect::<Vec<_>>(),
            }),
            None => json!({ "mode": "off", "syscalls": null }),
        };
        audit.record(Event::Start(Start {
            name: policy.identity.name.clone(),
            module: w.path.display().to_string(),
            sha256: w.sha256.clone(),
            kind: if self.is_component() {
                "component"
            } else {
                "module"
            }
            .into(),
            manifest: policy.manifest.as_ref().map(|p| p.display().to_string()),
            grants: policy.grants_json(),
            seccomp,
            cache: Some(w.cache.as_str().into()),
            interruption: Some(w.warden.inner.settings.interruption.name().into()),
        }));
    }

    /// A WASI context builder with the run's own streams and arguments: stdin as `opts` says
    /// (counted, and audited when inherited), stdout and stderr metered by `budget`, the
    /// working folder, the program name and the arguments. The grants are
    /// [`Policy::configure_wasi`]'s to add.
    fn streams(
        &self,
        opts: &RunOptions,
        audit: &Audit,
        counters: &Arc<GrantCounters>,
        budget: &Arc<OutputBudget>,
    ) -> WasiCtxBuilder {
        let w = &*self.inner;
        let policy = &w.policy;
        let mut builder = WasiCtxBuilder::new();
        // File operations run on the guest's thread rather than on a pool of helper threads
        // started on demand: cheaper for small reads, and no threads appear mid-run.
        builder.allow_blocking_current_thread(true);
        let recording = opts.record_fs.then_some(audit);
        match &opts.stdin {
            Input::Null => {}
            Input::Inherit => {
                builder.stdin(crate::observe::stdin(
                    crate::stdio::InheritedStdin,
                    recording,
                    counters,
                ));
                audit.decision(
                    Decided::new(
                        "stdio",
                        "stdin",
                        Decision::Allow,
                        "grant",
                        "stdin = \"inherit\"",
                    )
                    .by("stdin"),
                );
            }
            Input::Bytes(b) => {
                builder.stdin(crate::observe::stdin(
                    wasmtime_wasi::p2::pipe::MemoryInputPipe::new(b.clone()),
                    recording,
                    counters,
                ));
            }
        }
        builder.stdout(LimitedOutput::new(opts.stdout.clone(), budget.clone()));
        builder.stderr(LimitedOutput::new(opts.stderr.clone(), budget.clone()));
        if let Some(cwd) = &policy.cwd {
            builder.initial_cwd(cwd);
        }
        builder.arg(program_name(Some(&w.path)));
        builder.args(&policy.args);
        builder.args(&opts.args);
        builder
    }

    /// Without epochs, what the watchdog checks in place of the epoch callback: the network
    /// limits and the host-heap bound. `None` with epochs.
    fn watchdog_check(&self, sandbox: &Sandbox<'_>) -> Option<crate::watchdog::StopCheck> {
        let w = &*self.inner;
        if w.warden.inner.settings.interruption == Interruption::Epoch {
            return None;
        }
        let meter = sandbox.egress.meter.clone();
        let heap = HeapWatch::new(w.policy.limits.memory, sandbox.audit);
        Some(Box::new(move || {
            if let Some(limit) = meter.reached() {
                return Some(Outcome::NetLimit(limit));
            }
            heap.check().err().map(|_| Outcome::MemoryLimit)
        }))
    }

    /// Builds the store (the context, the memory limiter, fuel and epochs) and calls the
    /// guest's entry point, or its HTTP handler with `exchange`'s request.
    fn call_guest(
        &self,
        mut builder: WasiCtxBuilder,
        sandbox: &Sandbox<'_>,
        exchange: Option<super::http::Exchange>,
    ) -> Ran {
        let w = &*self.inner;
        let policy = &w.policy;
        let audit = sandbox.audit;
        let limiter = MemoryLimiter {
            limit: policy.limits.memory,
            used: 0,
            peak: 0,
            refused: false,
            handles: policy.limits.handles,
            audit: audit.clone(),
        };
        let ticks = policy
            .limits
            .wall
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis()) as u64;
        let engine = &w.warden.inner.engine;
        let fuel = policy.limits.fuel;
        let epochs = w.warden.inner.settings.interruption == Interruption::Epoch;
        let ticks = epochs.then_some(ticks);
        let heap = || HeapWatch::new(policy.limits.memory, audit);
        let (preopens, record_fs, counters) =
            (&sandbox.preopens, sandbox.record_fs, sandbox.counters);

        // The guest's blocking calls and the tasks they spawn (the broker's exchanges) run on
        // the I/O runtime (see `crate::io_runtime`), not on wasmtime-wasi's per-core one.
        let _io = crate::io_runtime::enter();
        match &w.pre {
            Prepared::Core { pre, entry } => {
                let host = Host::new(
                    builder.build_p1(),
                    limiter,
                    audit,
                    preopens,
                    record_fs,
                    counters,
                );
                let mut store = Store::new(engine, host);
                store.limiter(|h| &mut h.limiter);
                setup_store(&mut store, fuel, ticks, &sandbox.egress.meter, heap());
                let result = run_core(&mut store, pre, entry);
                let fuel_left = fuel.and_then(|_| store.get_fuel().ok());
                Ran {
                    result,
                    limiter: store.into_data().limiter,
                    fuel_left,
                }
            }
            Prepared::Component { pre, entry } => {
                let egress = sandbox.egress;
                let wasi = ComponentCtx {
                    ctx: builder.build(),
                    table: {
                        let mut table = ResourceTable::new();
                        // `[limits] handles`, at most `MAX_HANDLES` (the manifest refuses more).
                        table.set_max_capacity(
                            usize::try_from(policy.limits.handles)
                                .unwrap_or(host_memory::MAX_HANDLES)
                                .min(host_memory::MAX_HANDLES),
                        );
                        table
                    },
                    http: WasiHttpCtx::new(),
                    broker: egress.broker.clone(),
                    secrets: SecretsCtx {
                        secrets: egress.secrets.clone(),
                        audit: audit.clone(),
                    },
                    gate: egress.gate.clone(),
                };
                let host = Host::new(wasi, limiter, audit, preopens, record_fs, counters);
                let mut store = Store::new(engine, host);
                store.limiter(|h| &mut h.limiter);
                setup_store(&mut store, fuel, ticks, &egress.meter, heap());
                let budget = sandbox.budget;
                let stdout = LimitedOutput::new(sandbox.stdout.clone(), budget.clone());
                let (mut result, collector) = match (entry, exchange) {
                    (ComponentEntry::Http(proxy), Some(ex)) => {
                        let (result, collector) =
                            super::http::call_handler(&mut store, proxy, ex.request, budget);
                        (result, collector.map(|c| (c, ex.answer)))
                    }
                    _ => (run_component(&mut store, pre, entry, &stdout), None),
                };
                let fuel_left = fuel.and_then(|_| store.get_fuel().ok());
                // Dropping the store drops the response body's writer, which ends the body.
                let limiter = store.into_data().limiter;
                if let Some((collector, answer)) = collector {
                    let response = wasmtime_wasi::runtime::in_tokio(collector);
                    if response.is_err() && budget.reached() && result.is_ok() {
                        // The component wrote past the limit and carried on regardless.
                        result = Err(wasmtime::Error::new(crate::stdio::OutputLimitReached {
                            limit: budget.limit(),
                        }));
                    }
                    *answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(response);
                }
                Ran {
                    result,
                    limiter,
                    fuel_left,
                }
            }
        }
    }

    /// How the run ended, from what the guest returned and the meters: its `limit` record
    /// when a limit ended it, its `exit` record with the usage counts, and the report.
    fn settle(&self, ran: Ran, wall: std::time::Duration, sandbox: &Sandbox<'_>) -> RunReport {
        let policy = &self.inner.policy;
        let audit = sandbox.audit;
        let fuel = policy.limits.fuel;
        let Ran {
            result,
            limiter,
            fuel_left,
        } = ran;
        let mut outcome = classify(result, &limiter, sandbox.budget, &sandbox.egress.meter);
        // A guest that came back from a host call after its wall limit (within the grace
        // the watchdog gives blocked calls) and then exited did so past its limit: it is
        // reported as the wall limit, never as `exited`.
        if matches!(outcome, Outcome::Exited(_)) && wall > policy.limits.wall {
            outcome = Outcome::WallLimit;
        }
        let raw_code = match &outcome {
            Outcome::Exited(c) => Some(*c),
            _ => None,
        };
        match &outcome {
            Outcome::FuelLimit => audit.limit("fuel", fuel.unwrap_or(0)),
            Outcome::WallLimit => audit.limit(
                "wall",
                u64::try_from(policy.limits.wall.as_millis()).unwrap_or(u64::MAX),
            ),
            Outcome::OutputLimit => audit.limit("output", policy.limits.output),
            _ => {}
        }
        let fuel_used = fuel.zip(fuel_left).map(|(f, l)| f.saturating_sub(l));
        audit.exit(Exit {
            outcome: outcome.name().into(),
            code: outcome.exit_code(),
            guest_code: raw_code,
            signal: None,
            message: match &outcome {
                Outcome::Trap(m) => Some(m.clone()),
                _ => None,
            },
            wall_ms: Some(u64::try_from(wall.as_millis()).unwrap_or(u64::MAX)),
            fuel_used,
            peak_memory: Some(limiter.peak),
            output_bytes: Some(sandbox.budget.used()),
            egress_bytes: Some(sandbox.egress.meter.bytes()),
            usage: Some(sandbox.counters.summary()),
        });
        RunReport {
            outcome,
            wall,
            fuel_used,
            peak_memory: limiter.peak,
            run_id: audit.run_id().to_string(),
        }
    }
}

/// What one run's phases share once its WASI context is configured.
struct Sandbox<'a> {
    audit: &'a Audit,
    counters: &'a Arc<GrantCounters>,
    budget: &'a Arc<OutputBudget>,
    egress: &'a crate::policy::Egress,
    /// Guest paths of the preopened folders, in preopen order.
    preopens: Vec<String>,
    record_fs: bool,
    stdout: &'a crate::stdio::Sink,
}

/// What the guest's call left: its result, the memory limiter (with the peak) and the fuel
/// left when fuel is metered.
struct Ran {
    result: GuestResult,
    limiter: MemoryLimiter,
    fuel_left: Option<u64>,
}

/// Locks the host process down with `profile`, after starting the threads the run may need
/// (the I/O runtime's, and with file grants its blocking pool: a file stream's read or write
/// runs there, see `crate::io_runtime`), since no thread can be started afterwards.
fn lock_down(mode: host_seccomp::Mode, profile: &host_seccomp::Profile) -> Result<(), LoadError> {
    crate::io_runtime::start();
    if profile.groups().contains(&host_seccomp::Group::FileRead) {
        crate::io_runtime::start_blocking_pool().map_err(LoadError::IoThreads)?;
    }
    profile.install(mode).map_err(LoadError::Lockdown)
}

/// Arguments and environment reach the guest as C strings, which end at the first NUL byte:
/// one inside a value would truncate it (or fail deep inside WASI), so it is refused up front,
/// naming the argument (`argv[0]` being the program name, the manifest's `args` come first)
/// or the variable.
fn check_no_nul(policy: &Policy, extra_args: &[String]) -> Result<(), LoadError> {
    for (n, arg) in policy.args.iter().chain(extra_args).enumerate() {
        if arg.contains('\0') {
            return Err(LoadError::NulByte(format!("argument {}", n + 1)));
        }
    }
    for var in &policy.env {
        if var.name.contains('\0') {
            return Err(LoadError::NulByte(format!(
                "[env] name `{}`",
                var.name.escape_debug()
            )));
        }
        if var.value.contains('\0') {
            return Err(LoadError::NulByte(format!("[env] {}: the value", var.name)));
        }
    }
    Ok(())
}

fn run_core(
    store: &mut Store<Host<WasiP1Ctx>>,
    pre: &wasmtime::InstancePre<Host<WasiP1Ctx>>,
    entry: &CoreEntry,
) -> GuestResult {
    let instance = pre.instantiate(&mut *store)?;
    match entry {
        CoreEntry::Start => {
            let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
            start.call(&mut *store, ())?;
            Ok(0)
        }
        CoreEntry::Invoke { name, returns_i32 } => {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
                init.call(&mut *store, ())?;
            }
            if *returns_i32 {
                let f = instance.get_typed_func::<(), i32>(&mut *store, name)?;
                f.call(&mut *store, ())
            } else {
                let f = instance.get_typed_func::<(), ()>(&mut *store, name)?;
                f.call(&mut *store, ())?;
                Ok(0)
            }
        }
    }
}

fn run_component(
    store: &mut Store<Host<ComponentCtx>>,
    pre: &component::InstancePre<Host<ComponentCtx>>,
    entry: &ComponentEntry,
    stdout: &LimitedOutput,
) -> GuestResult {
    match entry {
        ComponentEntry::Run(command) => {
            let command = command.instantiate(&mut *store)?;
            match command.wasi_cli_run().call_run(&mut *store)? {
                Ok(()) => Ok(0),
                Err(()) => Ok(1),
            }
        }
        ComponentEntry::Http(_) => Err(wasmtime::format_err!(
            "the component is an HTTP handler: it runs with a request only"
        )),
        ComponentEntry::Invoke { name, results } => {
            let instance = pre.instantiate(&mut *store)?;
            let func = instance
                .get_func(&mut *store, name.as_str())
                .ok_or_else(|| wasmtime::format_err!("export `{name}` disappeared"))?;
            let mut out = vec![Val::Bool(false); *results];
            func.call(&mut *store, &[], &mut out)?;
            render_results(&out, stdout)
        }
    }
}

/// An invoked component export's results: a string is written to stdout, an integer is the
/// exit code, `result` is 0 for `ok` and 1 for `err`; anything else is printed as is.
fn render_results(vals: &[Val], stdout: &LimitedOutput) -> GuestResult {
    use wasmtime_wasi::p2::OutputStream;
    let mut code = 0;
    for v in vals {
        let text = match v {
            Val::String(s) => Some(s.clone()),
            Val::U8(n) => {
                code = i32::from(*n);
                None
            }
            Val::U16(n) => {
                code = i32::from(*n);
                None
            }
            Val::U32(n) => {
                code = i32::try_from(*n).unwrap_or(i32::MAX);
                None
            }
            Val::S32(n) => {
                code = *n;
                None
            }
            Val::Result(r) => {
                code = if r.is_ok() { 0 } else { 1 };
                match r {
                    Ok(Some(inner)) | Err(Some(inner)) => match &**inner {
                        Val::String(s) => Some(s.clone()),
                        other => Some(format!("{other:?}")),
                    },
                    _ => None,
                }
            }
            other => Some(format!("{other:?}")),
        };
        if let Some(mut t) = text {
            t.push('\n');
            let mut s = stdout.clone();
            s.write(t.into_bytes().into())
                .map_err(|e| wasmtime::format_err!("{e:?}"))?;
        }
    }
    Ok(code)
}
