//! The engine, loaded workloads and runs.
//!
//! A [`Warden`] owns one wasmtime engine, its linkers and the epoch ticker; it is built once
//! and shared. [`Warden::load`] turns a [`Policy`] into a [`Workload`]: the module read,
//! pinned, compiled (or taken from the cache), checked against what the linker provides and
//! pre-instantiated. [`Workload::run`] then runs it as many times as asked, each run in a
//! fresh store with its own WASI context, limits and audit run id.

mod engine;
mod http;
mod limits;
mod load;
mod options;
mod outcome;
mod run;

use crate::audit::Audit;
use crate::broker::Broker;
use crate::cache::{CacheStatus, ModuleCache};
use crate::error::Cause;
use crate::fs_audit;
use crate::grant_use::GrantCounters;
use crate::policy::Policy;
use crate::secrets::SecretsCtx;
use crate::sockets::SocketGate;
use crate::watchdog::Watchdog;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{self, ResourceTable};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use http::{HttpReport, HttpRequest, HttpResponse};
use limits::MemoryLimiter;
pub use options::{Captured, Input, RunOptions};
pub use outcome::{MAX_GUEST_EXIT, Outcome, RunReport};

/// How often the epoch advances. Wall-time limits are enforced to within one tick; 10 ms
/// keeps the ticker's own cost negligible while a limit of seconds stays accurate.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The least time loading (and, on a cache miss, compiling) a module is given by default,
/// whatever the wall limit: a large component compiles in seconds on an idle core but many
/// times that on a loaded machine (or in a debug build), and a wall limit sized for the run
/// (say 300 ms) must not make a module impossible ever to compile and cache. The budget
/// `warden run` gives [`Warden::load_within`] (the wall limit, and at least this) and the
/// time `warden serve` gives a new worker to load its workload.
pub const COMPILE_BUDGET_FLOOR: Duration = Duration::from_secs(120);

/// The stack of a run's thread: what a process's main thread gets on Linux, so that a run
/// behaves alike on the main thread of `warden run` before and on its own thread now (guest
/// stack depth is bounded by wasmtime's own `max_wasm_stack`, well below this).
const RUN_THREAD_STACK: usize = 8 << 20;

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
    /// How the wall-time limit stops a guest that is running code (see [`Interruption`]).
    pub interruption: Interruption,
    /// The most runs live at once on this engine; past it a run is refused with
    /// [`RunError::AtCapacity`](crate::RunError::AtCapacity). A live run holds a thread of
    /// its own (until its guest's last host call returns, even after the watchdog settled
    /// it) and its instances' memory mappings. `None`: the kernel's limit on one process's
    /// mappings (`vm.max_map_count`) over 12, 5,460 with Linux's default of 65,530 — a
    /// process that runs out of mappings cannot start a thread, and the standard library
    /// aborts the whole process then, so refusing one run is the safe answer. A service that
    /// holds more runs raises `vm.max_map_count` (10,000 live runs of a small connector need
    /// about 105,000 mappings and 3.8 GiB; BENCHMARKS.md).
    pub max_live_runs: Option<usize>,
}

impl EngineSettings {
    /// What [`EngineSettings::max_live_runs`] `None` means on this host: `vm.max_map_count`
    /// over 12 (4,096 when it cannot be read).
    pub fn host_max_live_runs() -> usize {
        crate::run_pool::default_max_live()
    }
}

/// How `[limits] wall` (and the network and host-heap limits, which are checked on the same
/// beat) stop a guest that is running code rather than waiting in a host call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interruption {
    /// Epoch interruption (the default): compiled code checks a counter at every function
    /// entry and loop header, a ticker thread advances it every [`EPOCH_TICK`], and a run is
    /// stopped at its limit as a trap; the process goes on. Right for any process that runs
    /// many workloads (an embedder, a `warden serve` worker). It costs time on branchy code.
    #[default]
    Epoch,
    /// No epoch instrumentation and no ticker thread: the wall-time watchdog settles a run
    /// still running code at its wall limit (one blocked in a host call at the wall limit
    /// plus [`WALL_GRACE`](crate::watchdog::WALL_GRACE), as with epochs): the guest's stdout,
    /// stderr and audit records are closed first, staging is removed *without* copy-back of
    /// read-write single files (the guest may still be writing them), the limit and exit
    /// records are written and flushed, the report is sent, and then the whole process ends
    /// with the run's exit code (124), at the latest
    /// [`END_PROCESS_AFTER`](crate::watchdog::END_PROCESS_AFTER) after the report. The
    /// network and host-heap limits are checked by the watchdog every
    /// [`WATCHDOG_POLL`](crate::watchdog::WATCHDOG_POLL) and end the process the same way.
    /// Only for a process that runs one workload and then exits, as `warden run` does.
    EndProcess,
}

impl Interruption {
    /// The name in the `start` audit record: `epoch` or `end-process`.
    pub fn name(self) -> &'static str {
        match self {
            Interruption::Epoch => "epoch",
            Interruption::EndProcess => "end-process",
        }
    }
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
    /// Stops the epoch ticker (which [`Interruption::EndProcess`] does not start).
    ticker_stop: Arc<AtomicBool>,
    /// Ends runs stuck in a host call past their wall limit (see [`crate::watchdog`]).
    watchdog: Arc<Watchdog>,
    /// The threads runs execute on, reused (see [`crate::run_pool`]).
    runs: Arc<crate::run_pool::RunPool>,
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
    /// Components: each descriptor's guest path (see `fs_audit::p2`).
    descriptors: std::collections::HashMap<u32, String>,
    /// What the run used of its grants, for the exit record.
    grant_use: Arc<GrantCounters>,
}

impl<W> Host<W> {
    fn new(
        wasi: W,
        limiter: MemoryLimiter,
        audit: &Audit,
        preopens: &[String],
        record_fs: bool,
        grant_use: &Arc<GrantCounters>,
    ) -> Self {
        Host {
            wasi,
            limiter,
            audit: audit.clone(),
            preopens: preopens.to_vec(),
            shim: None,
            seen: record_fs.then(Default::default),
            descriptors: Default::default(),
            grant_use: grant_use.clone(),
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
    fn descriptors(&mut self) -> &mut std::collections::HashMap<u32, String> {
        &mut self.descriptors
    }
}

impl<W> crate::grant_use::Counted for Host<W> {
    fn grant_use(&self) -> &GrantCounters {
        &self.grant_use
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

enum CoreEntry {
    Start,
    Invoke { name: String, returns_i32: bool },
}

enum ComponentEntry {
    Run(Box<CommandPre<Host<ComponentCtx>>>),
    /// A `wasi:http/incoming-handler` component: served by [`Workload::handle_http`].
    Http(Box<wasmtime_wasi_http::p2::bindings::sync::ProxyPre<Host<ComponentCtx>>>),
    Invoke {
        name: String,
        results: usize,
    },
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
