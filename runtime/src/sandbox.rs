//! The engine, loaded workloads and runs.
//!
//! A [`Warden`] owns one wasmtime engine, its linkers and the epoch ticker; it is built once
//! and shared. [`Warden::load`] turns a [`Policy`] into a [`Workload`]: the module read,
//! pinned, compiled (or taken from the cache), checked against what the linker provides and
//! pre-instantiated. [`Workload::run`] then runs it as many times as asked, each run in a
//! fresh store with its own WASI context, limits and audit run id.

use crate::audit::{Audit, AuditSink, Decision};
use crate::broker::{Broker, EgressMeter, NetLimit, NetLimitReached};
use crate::cache::{CacheStatus, Compiled, ModuleCache};
use crate::error::{Cause, EngineError, LoadError, RunError, cause};
use crate::fs_audit;
use crate::host_memory;
use crate::policy::{Policy, program_name};
use crate::secrets::{SecretsCtx, SecretsView};
use crate::sockets::SocketGate;
use crate::stdio::{LimitedOutput, OutputBudget, OutputLimitReached, Sink};
use crate::watchdog::{Armed, LostGuard, Reply, Watch, Watchdog};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{self, ResourceTable, Val};
use wasmtime::{Config, Engine, Store, Trap, ValType};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the epoch advances. Wall-time limits are enforced to within one tick; 10 ms
/// keeps the ticker's own cost negligible while a limit of seconds stays accurate.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest guest exit code passed through as is; larger codes are reported as this one,
/// since 120 and up carry warden's own meanings.
pub const MAX_GUEST_EXIT: i32 = 119;

/// The stack of a run's thread: what a process's main thread gets on Linux, so that a run
/// behaves alike on the main thread of `warden run` before and on its own thread now (guest
/// stack depth is bounded by wasmtime's own `max_wasm_stack`, well below this).
const RUN_THREAD_STACK: usize = 8 << 20;

/// Bytes charged against `[limits] memory` for each table element (a pointer-sized slot).
const TABLE_ELEMENT_BYTES: u64 = 8;

/// Settings that change how code is compiled, so they are fixed when the engine is built.
#[derive(Debug, Clone, Default)]
pub struct EngineSettings {
    /// Instrument code for `[limits] fuel`. Required to run a policy that sets fuel.
    pub fuel: bool,
    /// Where compiled code is cached; `None` compiles in memory every time.
    pub cache: Option<ModuleCache>,
    /// Allocate instances from wasmtime's pooling allocator (memory and table slots reserved
    /// once, when the engine is built, and reused) rather than on demand for each run.
    pub pooling: bool,
}

/// The runtime: an engine, its linkers and its epoch ticker. Cheap to clone.
#[derive(Clone)]
pub struct Warden {
    inner: Arc<WardenInner>,
}

struct WardenInner {
    engine: Engine,
    settings: EngineSettings,
    /// Built on first use, so that a process running one kind of workload never pays for
    /// the other kind's host functions.
    core_linker: OnceLock<Result<wasmtime::Linker<Host<WasiP1Ctx>>, Cause>>,
    shim: fs_audit::ShimCell,
    component_linker: OnceLock<Result<component::Linker<Host<ComponentCtx>>, Cause>>,
    ticker_stop: Arc<AtomicBool>,
    /// Ends runs stuck in a host call past their wall limit (see [`crate::watchdog`]).
    watchdog: Arc<Watchdog>,
}

impl Drop for WardenInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        self.watchdog.stop();
    }
}

impl std::fmt::Debug for Warden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warden")
            .field("settings", &self.inner.settings)
            .finish()
    }
}

/// Per-store host state: the WASI context, the memory limiter and what the filesystem
/// audit wrappers need.
struct Host<W> {
    wasi: W,
    limiter: MemoryLimiter,
    audit: Audit,
    preopens: Vec<String>,
    shim: Option<wasmtime::Instance>,
    /// Allowed path operations recorded so far, when the run records them
    /// ([`RunOptions::record_fs`]).
    seen: Option<std::collections::HashSet<(String, String)>>,
}

impl<W> Host<W> {
    fn new(
        wasi: W,
        limiter: MemoryLimiter,
        audit: &Audit,
        preopens: &[String],
        record_fs: bool,
    ) -> Self {
        Host {
            wasi,
            limiter,
            audit: audit.clone(),
            preopens: preopens.to_vec(),
            shim: None,
            seen: record_fs.then(Default::default),
        }
    }
}

impl<W> fs_audit::FsAuditState for Host<W> {
    fn audit(&self) -> &Audit {
        &self.audit
    }
    fn preopens(&self) -> &[String] {
        &self.preopens
    }
    fn shim(&mut self) -> &mut Option<wasmtime::Instance> {
        &mut self.shim
    }
    fn seen(&mut self) -> Option<&mut std::collections::HashSet<(String, String)>> {
        self.seen.as_mut()
    }
}

/// WASI state of a component run.
struct ComponentCtx {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    broker: Broker,
    secrets: SecretsCtx,
    gate: Arc<SocketGate>,
}

impl WasiHttpView for Host<ComponentCtx> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.wasi.http,
            table: &mut self.wasi.table,
            hooks: &mut self.wasi.broker,
        }
    }
}

impl WasiView for Host<ComponentCtx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

impl Warden {
    /// Builds the engine (epoch interruption always on; fuel if asked) and the epoch ticker
    /// thread. The linkers are built when the first module or component is loaded.
    ///
    /// # Errors
    /// The engine cannot be created on this host.
    pub fn new(settings: EngineSettings) -> Result<Warden, EngineError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(settings.fuel);
        config.wasm_component_model(true);
        if settings.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                wasmtime::PoolingAllocationConfig::default(),
            ));
        }
        let engine = Engine::new(&config)
            .map_err(|e| EngineError::new("cannot create the engine", cause(e)))?;

        let shim = fs_audit::ShimCell::default();
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("warden-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError::new("cannot start the epoch ticker", Arc::new(e)))?;
        let watchdog = Watchdog::start().map_err(|e| {
            ticker_stop.store(true, Ordering::Relaxed);
            EngineError::new("cannot start the wall-time watchdog", Arc::new(e))
        })?;

        Ok(Warden {
            inner: Arc::new(WardenInner {
                engine,
                settings,
                core_linker: OnceLock::new(),
                shim,
                component_linker: OnceLock::new(),
                ticker_stop,
                watchdog,
            }),
        })
    }

    /// The wasmtime engine, for embedders that need it.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Reads the policy's module and prepares it to run.
    ///
    /// # Errors
    /// See [`LoadError`]: missing or unreadable module, not wasm, pin mismatch, compile
    /// failure, an import no grant provides, a missing entry point, a grant this version
    /// cannot enforce.
    pub fn load(&self, policy: Policy) -> Result<Workload, LoadError> {
        if policy.limits.fuel.is_some() && !self.inner.settings.fuel {
            return Err(LoadError::Unsupported(
                "[limits] fuel is set but this engine was built without fuel metering".into(),
            ));
        }
        let path = policy.module.clone().ok_or(LoadError::NoModule)?;
        // The audit log names the module by its full path, whatever the working folder.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        // Not `std::fs::read`: a FIFO or a device named as the module would block it forever.
        let bytes = crate::read_regular_file(&path).map_err(|source| LoadError::ReadModule {
            path: path.clone(),
            source,
        })?;
        self.load_bytes(policy, &path, &bytes)
    }

    /// [`Warden::load`] within `budget`: compiling cannot be interrupted by the epoch, and a
    /// huge module could otherwise keep the caller busy for as long as it likes before any
    /// wall limit applies. The load runs on a thread of its own; past the budget the caller
    /// gets [`LoadError::CompileTimeout`] and the thread is abandoned (it ends when the
    /// compiler does, and its result is dropped).
    ///
    /// # Errors
    /// As [`Warden::load`]; [`LoadError::CompileTimeout`] past the budget;
    /// [`LoadError::LoadThread`] when the thread cannot be started.
    pub fn load_within(&self, policy: Policy, budget: Duration) -> Result<Workload, LoadError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let warden = self.clone();
        let thread = std::thread::Builder::new()
            .name("warden-load".into())
            .stack_size(RUN_THREAD_STACK)
            .spawn(move || {
                let _ = tx.send(warden.load(policy));
            })
            .map_err(|e| LoadError::LoadThread(Some(e)))?;
        match rx.recv_timeout(budget) {
            Ok(result) => {
                // The thread is ending: wait for it, so that it is gone before a lockdown.
                let _ = thread.join();
                result
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(LoadError::CompileTimeout { budget })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(LoadError::LoadThread(None))
            }
        }
    }

    /// Like [`Warden::load`], with the module's bytes given; `path` names it in errors and
    /// the audit log.
    ///
    /// # Errors
    /// As [`Warden::load`].
    pub fn load_bytes(
        &self,
        policy: Policy,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Workload, LoadError> {
        let not_wasm = |message: &str| LoadError::NotWasm {
            path: path.to_owned(),
            message: message.into(),
        };
        if bytes.is_empty() {
            return Err(not_wasm(
                "empty file: not a WebAssembly module or component",
            ));
        }
        let is_component = match bytes {
            [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => false,
            [0, b'a', b's', b'm', 0x0d, 0, 1, 0, ..] => true,
            [0, b'a', b's', b'm', ..] => {
                return Err(not_wasm("unsupported WebAssembly binary version"));
            }
            _ => {
                return Err(not_wasm(
                    "not a WebAssembly module or component (bad magic)",
                ));
            }
        };
        policy.check_supported(is_component)?;
        let digest = Sha256::digest(bytes);
        let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(expected) = &policy.sha256
            && *expected != sha256
        {
            return Err(LoadError::PinMismatch {
                path: path.to_owned(),
                expected: expected.clone(),
                actual: sha256,
            });
        }

        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            path: path.to_owned(),
            message: format!("{e:#}"),
            source: cause(e),
        };
        let (compiled, cache) = match &self.inner.settings.cache {
            Some(cache) => cache
                .load_or_compile(&self.inner.engine, bytes, &digest, is_component)
                .map_err(compile_err)?,
            None => {
                let c = if is_component {
                    Compiled::Component(
                        component::Component::new(&self.inner.engine, bytes)
                            .map_err(compile_err)?,
                    )
                } else {
                    Compiled::Module(
                        wasmtime::Module::new(&self.inner.engine, bytes).map_err(compile_err)?,
                    )
                };
                (c, CacheStatus::Disabled)
            }
        };

        // The copy-on-write memory image is built on first instantiation unless built now;
        // for code compiled in memory (not mapped from a cache entry) building it needs a
        // memfd, which a locked-down host no longer may create.
        let cow = match &compiled {
            Compiled::Module(m) => m.initialize_copy_on_write_image(),
            Compiled::Component(c) => c.initialize_copy_on_write_image(),
        };
        cow.map_err(|e| LoadError::Compile {
            path: path.to_owned(),
            message: format!("cannot prepare the memory image: {e}"),
            source: cause(e),
        })?;
        let pre = match compiled {
            Compiled::Module(m) => self.prepare_core(&policy, path, m)?,
            Compiled::Component(c) => self.prepare_component(&policy, path, c)?,
        };
        Ok(Workload {
            inner: Arc::new(WorkloadInner {
                warden: self.clone(),
                policy,
                path: path.to_owned(),
                sha256,
                cache,
                pre,
            }),
        })
    }

    fn prepare_core(
        &self,
        policy: &Policy,
        path: &Path,
        module: wasmtime::Module,
    ) -> Result<Prepared, LoadError> {
        for import in module.imports() {
            #[cfg(feature = "test-escape")]
            if import.module() == crate::test_escape::MODULE {
                continue;
            }
            if import.module() != "wasi_snapshot_preview1" {
                return Err(LoadError::UnknownImport {
                    path: path.to_owned(),
                    import: format!("{}::{}", import.module(), import.name()),
                    source: None,
                });
            }
        }
        let entry_err = |message: String| LoadError::Entry {
            path: path.to_owned(),
            message,
        };
        let entry = match &policy.invoke {
            None => {
                match module.get_export("_start") {
                    Some(wasmtime::ExternType::Func(f))
                        if f.params().len() == 0 && f.results().len() == 0 => {}
                    _ => {
                        return Err(entry_err(
                            "no `_start` command entry point; set [workload] invoke to call \
                             another export"
                                .into(),
                        ));
                    }
                }
                CoreEntry::Start
            }
            Some(name) => {
                let Some(wasmtime::ExternType::Func(f)) = module.get_export(name) else {
                    return Err(entry_err(format!(
                        "no exported function `{name}` to invoke"
                    )));
                };
                let results: Vec<ValType> = f.results().collect();
                let returns_i32 = match results.as_slice() {
                    [] => false,
                    [ValType::I32] => true,
                    _ => {
                        return Err(entry_err(format!(
                            "export `{name}` must return nothing or an i32 exit code"
                        )));
                    }
                };
                if f.params().len() != 0 {
                    return Err(entry_err(format!(
                        "export `{name}` must take no parameters"
                    )));
                }
                CoreEntry::Invoke {
                    name: name.clone(),
                    returns_i32,
                }
            }
        };
        if fs_audit::uses_paths(&module) && self.inner.shim.get().is_none() {
            let shim = self.compile_shim().map_err(|e| {
                LoadError::Engine(EngineError::new(
                    "cannot build the filesystem audit shim",
                    cause(e),
                ))
            })?;
            // Another thread may have won the race; either module will do.
            let _ = self.inner.shim.set(shim);
        }
        let linker = self
            .inner
            .core_linker
            .get_or_init(|| core_linker(&self.inner.engine, &self.inner.shim).map_err(cause))
            .as_ref()
            .map_err(|e| EngineError::new("cannot build the core module linker", e.clone()))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::UnknownImport {
                path: path.to_owned(),
                import: format!("{e:#}"),
                source: Some(cause(e)),
            })?;
        Ok(Prepared::Core { pre, entry })
    }

    /// The filesystem audit shim, from the compiled-code cache when there is one.
    fn compile_shim(&self) -> wasmtime::Result<wasmtime::Module> {
        let bytes = fs_audit::shim_bytes()?;
        let engine = &self.inner.engine;
        let module = match &self.inner.settings.cache {
            Some(cache) => match cache
                .load_or_compile(engine, &bytes, &Sha256::digest(&bytes), false)?
                .0
            {
                Compiled::Module(m) => m,
                Compiled::Component(_) => wasmtime::bail!("the shim is a core module"),
            },
            None => wasmtime::Module::new(engine, &bytes)?,
        };
        module.initialize_copy_on_write_image()?;
        Ok(module)
    }

    fn prepare_component(
        &self,
        policy: &Policy,
        path: &Path,
        c: component::Component,
    ) -> Result<Prepared, LoadError> {
        let engine = &self.inner.engine;
        let ty = c.component_type();
        let linker = self
            .inner
            .component_linker
            .get_or_init(|| component_linker(engine).map_err(cause))
            .as_ref()
            .map_err(|e| EngineError::new("cannot build the component linker", e.clone()))?;
        let pre = linker
            .instantiate_pre(&c)
            .map_err(|e| LoadError::UnknownImport {
                path: path.to_owned(),
                import: unknown_import_name(&e),
                source: Some(cause(e)),
            })?;
        let entry_err = |message: String| LoadError::Entry {
            path: path.to_owned(),
            message,
        };
        let entry = match &policy.invoke {
            None => ComponentEntry::Run(Box::new(CommandPre::new(pre.clone()).map_err(|_| {
                entry_err(
                    "component does not export `wasi:cli/run` (not a command of the \
                     wasi:cli/command world); set [workload] invoke to call another export"
                        .into(),
                )
            })?)),
            Some(name) => {
                let Some(component::types::ComponentItem::ComponentFunc(f)) =
                    ty.get_export(engine, name).map(|e| e.ty)
                else {
                    return Err(entry_err(format!(
                        "no exported function `{name}` to invoke"
                    )));
                };
                if f.params().len() != 0 {
                    return Err(entry_err(format!(
                        "export `{name}` must take no parameters"
                    )));
                }
                ComponentEntry::Invoke {
                    name: name.clone(),
                    results: f.results().len(),
                }
            }
        };
        Ok(Prepared::Component { pre, entry })
    }
}

/// The import a failed `instantiate_pre` complains about, for a one-line error.
fn unknown_import_name(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.split('`').nth(1).map(str::to_string).unwrap_or(text)
}

enum CoreEntry {
    Start,
    Invoke { name: String, returns_i32: bool },
}

enum ComponentEntry {
    Run(Box<CommandPre<Host<ComponentCtx>>>),
    Invoke { name: String, results: usize },
}

enum Prepared {
    Core {
        pre: wasmtime::InstancePre<Host<WasiP1Ctx>>,
        entry: CoreEntry,
    },
    Component {
        pre: component::InstancePre<Host<ComponentCtx>>,
        entry: ComponentEntry,
    },
}

/// A loaded workload, ready to run many times. Cheap to clone.
#[derive(Clone)]
pub struct Workload {
    inner: Arc<WorkloadInner>,
}

struct WorkloadInner {
    warden: Warden,
    policy: Policy,
    path: PathBuf,
    sha256: String,
    cache: CacheStatus,
    pre: Prepared,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("path", &self.inner.path)
            .field("sha256", &self.inner.sha256)
            .field("identity", &self.inner.policy.identity.id)
            .finish()
    }
}

/// What a run's stdin reads from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// Closed: reads see end of file.
    Null,
    /// warden's own stdin.
    Inherit,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
}

/// How one run is wired to the outside. [`RunOptions::from_policy`] follows the manifest's
/// `[stdio]`; an embedder may replace any field.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Appended to the manifest's `[workload] args`.
    pub args: Vec<String>,
    pub stdin: Input,
    pub stdout: Sink,
    pub stderr: Sink,
    pub audit: AuditSink,
    /// The audit run id; a fresh one when `None`.
    pub run_id: Option<String>,
    /// Lock the host process down with the policy's seccomp allow list right before the
    /// guest's first instruction. `None` (the default) leaves the process as it is.
    ///
    /// The filter is process-wide and cannot be removed: an embedder that sets this must not
    /// expect to do anything afterwards but write output and exit. It suits a process that
    /// runs one workload, as `warden run` does.
    pub lockdown: Option<host_seccomp::Mode>,
    /// Record allowed filesystem operations of a core module too (each distinct path and
    /// operation once, as an `allow` decision of capability `fs`), not only refusals. Off by
    /// default; `warden learn` turns it on to see which files a workload touches.
    pub record_fs: bool,
    /// Where the values of the manifest's `[secrets]` come from: by default
    /// ([`HostSecrets`](crate::secrets::HostSecrets)) warden's environment and host files, as
    /// each entry's `from` says; a service may plug in its vault here.
    pub secrets: Arc<dyn crate::secrets::SecretStore>,
}

impl RunOptions {
    /// stdin/stdout/stderr as the policy's `[stdio]` says, no extra args, no audit.
    pub fn from_policy(policy: &Policy) -> RunOptions {
        use crate::manifest::{OutputMode, StdinMode};
        let out = |m: OutputMode, inherit: Sink| match m {
            OutputMode::Inherit => inherit,
            OutputMode::Null => Sink::Null,
        };
        RunOptions {
            args: Vec::new(),
            stdin: match policy.stdio.stdin {
                StdinMode::Null => Input::Null,
                StdinMode::Inherit => Input::Inherit,
            },
            stdout: out(policy.stdio.stdout, Sink::Stdout),
            stderr: out(policy.stdio.stderr, Sink::Stderr),
            audit: AuditSink::disabled(),
            run_id: None,
            lockdown: None,
            record_fs: false,
            secrets: Arc::new(crate::secrets::HostSecrets),
        }
    }

    /// Both output streams captured in memory; returns the buffers.
    pub fn capture_output(&mut self) -> (Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        self.stdout = Sink::Capture(out.0.clone());
        self.stderr = Sink::Capture(err.0.clone());
        (out, err)
    }
}

/// Output captured by [`RunOptions::capture_output`].
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// A copy of the bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The bytes written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The guest exited with this code (0 for a normal return).
    Exited(i32),
    /// The guest trapped; the message says why.
    Trap(String),
    MemoryLimit,
    FuelLimit,
    WallLimit,
    OutputLimit,
    /// `[limits] http-requests` or `egress` was reached.
    NetLimit(NetLimit),
}

impl Outcome {
    /// The name used in the audit log's `exit` event.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Exited(_) => "exited",
            Outcome::Trap(_) => "trap",
            Outcome::MemoryLimit => "memory-limit",
            Outcome::FuelLimit => "fuel-limit",
            Outcome::WallLimit => "wall-limit",
            Outcome::OutputLimit => "output-limit",
            Outcome::NetLimit(NetLimit::HttpRequests) => "http-requests-limit",
            Outcome::NetLimit(NetLimit::Egress) => "egress-limit",
        }
    }

    /// warden's exit code for this outcome (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) if (0..=MAX_GUEST_EXIT).contains(c) => *c,
            Outcome::Exited(_) => MAX_GUEST_EXIT,
            Outcome::OutputLimit => 120,
            Outcome::MemoryLimit => 121,
            Outcome::FuelLimit => 122,
            Outcome::Trap(_) => 123,
            Outcome::WallLimit => 124,
            Outcome::NetLimit(_) => 126,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunReport {
    pub outcome: Outcome,
    pub wall: Duration,
    /// Fuel consumed, when `[limits] fuel` is set.
    pub fuel_used: Option<u64>,
    /// Largest linear memory + table footprint seen, in bytes.
    pub peak_memory: u64,
    /// The audit run id.
    pub run_id: String,
}

/// Enforces `[limits] memory` across all memories and tables of a store.
struct MemoryLimiter {
    limit: u64,
    used: u64,
    peak: u64,
    refused: bool,
    audit: Audit,
}

impl MemoryLimiter {
    fn grow(&mut self, current: u64, desired: u64) -> bool {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.limit {
            if !self.refused {
                self.audit.limit("memory", self.limit);
            }
            self.refused = true;
            return false;
        }
        self.used = next;
        self.peak = self.peak.max(next);
        true
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current as u64, desired as u64))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            (current as u64).saturating_mul(TABLE_ELEMENT_BYTES),
            (desired as u64).saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

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
    /// [`RunError::Thread`] when the run's thread could not be started.
    pub fn run(&self, opts: RunOptions) -> Result<RunReport, RunError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.start(opts, Reply::Blocking(tx))?;
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.start(opts, Reply::Async(tx))?;
        rx.await.unwrap_or(Err(RunError::Lost))
    }

    /// Starts a run on its own thread; its report goes to `reply`.
    ///
    /// Why a plain thread rather than a task: the guest executes synchronously (the sync WASI
    /// bindings, whose host calls enter wasmtime-wasi's own tokio runtime, and would panic on
    /// a thread already inside one), the epoch, fuel and memory limits all act on the guest's
    /// own thread whatever it is, and a guest blocked in a host call must be abandonable by
    /// the watchdog without blocking anyone else's thread.
    fn start(&self, opts: RunOptions, reply: Reply) -> Result<(), RunError> {
        let watch = Watch::new(reply);
        let workload = self.clone();
        let guard = LostGuard(watch.clone());
        std::thread::Builder::new()
            .name("warden-run".into())
            .stack_size(RUN_THREAD_STACK)
            .spawn(move || {
                let guard = guard;
                if let Some(result) = workload.run_here(opts, &guard.0) {
                    guard.0.send(result.map_err(RunError::Start));
                }
            })
            .map_err(RunError::Thread)?;
        Ok(())
    }

    /// The run itself, on its own thread. `None` when the watchdog settled the run (it was
    /// stuck in a host call) and the report is no longer this thread's to give.
    fn run_here(
        &self,
        opts: RunOptions,
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
        let seccomp = match &profile {
            Some((mode, p)) => json!({
                "mode": mode.name(),
                "syscalls": p.syscall_count(),
                "groups": p.groups().iter().map(|g| g.name()).collect::<Vec<_>>(),
            }),
            None => json!({ "mode": "off", "syscalls": null }),
        };
        let audit = match &opts.run_id {
            Some(id) => Audit::with_run_id(opts.audit.clone(), &policy.identity.id, id),
            None => Audit::new(opts.audit.clone(), &policy.identity.id),
        };
        if let Err(e) = check_no_nul(policy, &opts.args) {
            audit.emit("error", json!({ "message": e.to_string() }));
            return Some(Err(e));
        }
        // The start record lists every grant: build it only when it is kept.
        if audit.is_enabled() {
            audit.emit(
                "start",
                json!({
                    "name": policy.identity.name,
                    "module": w.path.display().to_string(),
                    "sha256": w.sha256,
                    "kind": if self.is_component() { "component" } else { "module" },
                    "manifest": policy.manifest.as_ref().map(|p| p.display().to_string()),
                    "grants": policy.grants_json(),
                    "seccomp": seccomp,
                    "cache": w.cache.as_str(),
                }),
            );
        }

        let budget = OutputBudget::new(policy.limits.output);
        let mut builder = WasiCtxBuilder::new();
        // File operations run on the guest's thread rather than on a pool of helper threads
        // started on demand: cheaper for small reads, and no threads appear mid-run.
        builder.allow_blocking_current_thread(true);
        match &opts.stdin {
            Input::Null => {}
            Input::Inherit => {
                builder.stdin(crate::stdio::InheritedStdin);
                audit.decision("stdio", "stdin", Decision::Allow, "stdin = \"inherit\"");
            }
            Input::Bytes(b) => {
                builder.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(b.clone()));
            }
        }
        builder.stdout(LimitedOutput::new(opts.stdout.clone(), budget.clone()));
        builder.stderr(LimitedOutput::new(opts.stderr.clone(), budget.clone()));
        builder.arg(program_name(Some(&w.path)));
        builder.args(&policy.args);
        builder.args(&opts.args);
        let egress = match policy.egress_with(&audit, &*opts.secrets) {
            Ok(e) => e,
            Err(e) => {
                audit.emit("error", json!({ "message": e.to_string() }));
                return Some(Err(e));
            }
        };
        let staging = match policy.configure_wasi(&mut builder, &egress, &audit) {
            Ok(s) => s,
            Err(e) => {
                audit.emit("error", json!({ "message": e.to_string() }));
                return Some(Err(e));
            }
        };

        let preopens = staging.preopens().to_vec();
        let limiter = MemoryLimiter {
            limit: policy.limits.memory,
            used: 0,
            peak: 0,
            refused: false,
            audit: audit.clone(),
        };
        let ticks = policy
            .limits
            .wall
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis()) as u64;
        let engine = &w.warden.inner.engine;
        let fuel = policy.limits.fuel;

        let heap_watch = || HeapWatch::new(policy.limits.memory, &audit);

        // Everything is set up: lock the host down before the first guest instruction.
        if let Some((mode, profile)) = &profile {
            // wasmtime-wasi's tokio runtime starts its threads when first used; start them
            // now, while starting threads is still allowed.
            wasmtime_wasi::runtime::in_tokio(async {});
            if let Err(e) = profile.install(*mode) {
                let e = LoadError::Lockdown(e);
                audit.emit("error", json!({ "message": e.to_string() }));
                return Some(Err(e));
            }
        }
        let started = Instant::now();
        watch.arm(
            &w.warden.inner.watchdog,
            Armed {
                started,
                wall: policy.limits.wall,
                audit: audit.clone(),
                staging: staging.handle(),
            },
        );

        let (result, limiter, fuel_left) = match &w.pre {
            Prepared::Core { pre, entry } => {
                let mut store = Store::new(
                    engine,
                    Host::new(
                        builder.build_p1(),
                        limiter,
                        &audit,
                        &preopens,
                        opts.record_fs,
                    ),
                );
                store.limiter(|h| &mut h.limiter);
                setup_store(&mut store, fuel, ticks, &egress.meter, heap_watch());
                let result = run_core(&mut store, pre, entry);
                let left = fuel.and_then(|_| store.get_fuel().ok());
                (result, store.into_data().limiter, left)
            }
            Prepared::Component { pre, entry } => {
                let wasi = ComponentCtx {
                    ctx: builder.build(),
                    table: {
                        let mut table = ResourceTable::new();
                        table.set_max_capacity(host_memory::MAX_HANDLES);
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
                let mut store = Store::new(
                    engine,
                    Host::new(wasi, limiter, &audit, &preopens, opts.record_fs),
                );
                store.limiter(|h| &mut h.limiter);
                setup_store(&mut store, fuel, ticks, &egress.meter, heap_watch());
                let stdout = LimitedOutput::new(opts.stdout.clone(), budget.clone());
                let result = run_component(&mut store, pre, entry, &stdout);
                let left = fuel.and_then(|_| store.get_fuel().ok());
                (result, store.into_data().limiter, left)
            }
        };
        let wall = started.elapsed();

        // However the guest ended (limits included), its read-write files are copied back
        // under the checks of `FileStaging::finish`, and the staging folders removed.
        staging.finish(true);
        // The watchdog settled the run while the guest was stuck: it wrote the records.
        if !watch.claim() {
            return None;
        }

        let outcome = classify(result, &limiter, &budget, &egress.meter);
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
        audit.emit(
            "exit",
            json!({
                "outcome": outcome.name(),
                "code": outcome.exit_code(),
                "guest_code": raw_code,
                "message": match &outcome { Outcome::Trap(m) => Some(m.as_str()), _ => None },
                "wall_ms": u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
                "fuel_used": fuel_used,
                "peak_memory": limiter.peak,
                "output_bytes": budget.used(),
            }),
        );
        Some(Ok(RunReport {
            outcome,
            wall,
            fuel_used,
            peak_memory: limiter.peak,
            run_id: audit.run_id().to_string(),
        }))
    }
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

/// The linker of core modules: WASI preview 1 with warden's `proc_exit` and the filesystem
/// audit wrappers.
fn core_linker(
    engine: &Engine,
    shim: &fs_audit::ShimCell,
) -> wasmtime::Result<wasmtime::Linker<Host<WasiP1Ctx>>> {
    let mut core_linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut core_linker, |h: &mut Host<WasiP1Ctx>| &mut h.wasi)?;
    // wasmtime-wasi traps on exit codes of 126 and up; warden reports every code (capped at
    // 119 in its own exit status, exact in the audit log), so it takes proc_exit over.
    core_linker.allow_shadowing(true);
    core_linker.func_wrap(
        "wasi_snapshot_preview1",
        "proc_exit",
        |code: i32| -> wasmtime::Result<()> { Err(wasmtime::Error::new(I32Exit(code))) },
    )?;
    core_linker.allow_shadowing(false);
    #[cfg(feature = "test-escape")]
    crate::test_escape::add_to_linker(&mut core_linker)?;
    fs_audit::add_to_linker(&mut core_linker, shim.clone())?;
    Ok(core_linker)
}

/// The linker of components: WASI preview 2, `wasi:http` through the broker,
/// `warden:host/secrets`, and warden's socket gate.
fn component_linker(engine: &Engine) -> wasmtime::Result<component::Linker<Host<ComponentCtx>>> {
    let mut linker = component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    crate::secrets::add_to_linker(&mut linker, |h: &mut Host<ComponentCtx>| SecretsView {
        ctx: &h.wasi.secrets,
        table: &mut h.wasi.table,
    })?;
    crate::sockets::add_to_linker(&mut linker, |h: &mut Host<ComponentCtx>| {
        h.wasi.gate.clone()
    })?;
    Ok(linker)
}

/// Fuel, and the epoch callback that runs every tick: it stops the run once the wall-time
/// limit's ticks have passed or a network limit was reached (which the HTTP broker records
/// from another thread).
fn setup_store<T>(
    store: &mut Store<T>,
    fuel: Option<u64>,
    ticks: u64,
    meter: &Arc<EgressMeter>,
    heap: HeapWatch,
) {
    if let Some(f) = fuel {
        // Only fails when the engine lacks fuel metering, which `load` already refused.
        let _ = store.set_fuel(f);
    }
    let meter = meter.clone();
    let mut left = ticks.max(1);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if let Some(limit) = meter.reached() {
            return Err(wasmtime::Error::new(NetLimitReached(limit)));
        }
        heap.check()?;
        left -= 1;
        if left == 0 {
            return Err(wasmtime::Error::new(Trap::Interrupt));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
}

/// The host-heap bound of one run (see [`crate::host_memory`]), checked at every epoch tick.
struct HeapWatch {
    /// The heap size that stops the run, when a meter is installed.
    ceiling: Option<u64>,
    /// The run's allowance, for the record.
    allowance: u64,
    audit: Audit,
}

impl HeapWatch {
    fn new(memory_limit: u64, audit: &Audit) -> HeapWatch {
        HeapWatch {
            ceiling: host_memory::ceiling(memory_limit),
            allowance: memory_limit.saturating_add(host_memory::HOST_HEAP_HEADROOM),
            audit: audit.clone(),
        }
    }

    fn check(&self) -> wasmtime::Result<()> {
        let (Some(ceiling), Some(now)) = (self.ceiling, host_memory::allocated()) else {
            return Ok(());
        };
        if now > ceiling {
            self.audit.emit(
                "limit",
                json!({ "limit": "memory", "value": self.allowance, "scope": "host",
                        "reason": "warden's heap grew past the run's allowance on the guest's behalf" }),
            );
            return Err(wasmtime::Error::new(host_memory::HostMemoryExceeded {
                allowance: self.allowance,
            }));
        }
        Ok(())
    }
}

/// What the guest's entry point returned: an exit code, or the error that stopped it.
type GuestResult = Result<i32, wasmtime::Error>;

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

fn classify(
    result: GuestResult,
    limiter: &MemoryLimiter,
    budget: &OutputBudget,
    meter: &EgressMeter,
) -> Outcome {
    // A network limit stops the run whatever the guest did after its request was refused.
    if let Some(limit) = meter.reached() {
        return Outcome::NetLimit(limit);
    }
    let err = match result {
        Ok(code) => return Outcome::Exited(code),
        Err(e) => e,
    };
    if let Some(exit) = err.chain().find_map(|c| c.downcast_ref::<I32Exit>()) {
        return Outcome::Exited(exit.0);
    }
    let trap = err.chain().find_map(|c| c.downcast_ref::<Trap>());
    if budget.reached() || err.chain().any(|c| c.is::<OutputLimitReached>()) {
        return Outcome::OutputLimit;
    }
    match trap {
        Some(Trap::OutOfFuel) => return Outcome::FuelLimit,
        Some(Trap::Interrupt) => return Outcome::WallLimit,
        _ => {}
    }
    if err
        .chain()
        .any(|c| c.is::<host_memory::HostMemoryExceeded>())
    {
        return Outcome::MemoryLimit;
    }
    let table_full = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
        // wasmtime's own store-wide cap on component handles has no error type of its own.
        || c.to_string().contains("store handle limit exceeded")
    });
    if table_full {
        limiter.audit.emit(
            "limit",
            json!({ "limit": "memory", "value": limiter.limit, "scope": "handles",
                    "reason": format!("the guest held {} resource handles", host_memory::MAX_HANDLES) }),
        );
        return Outcome::MemoryLimit;
    }
    if limiter.refused {
        // A refused grow ends a Rust guest in an abort (`unreachable`); any failure after a
        // refusal is the memory limit's doing.
        return Outcome::MemoryLimit;
    }
    let message = match trap {
        Some(t) => t.to_string(),
        None => err.root_cause().to_string(),
    };
    Outcome::Trap(message.lines().next().unwrap_or_default().to_string())
}
