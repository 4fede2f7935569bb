//! The tokio runtime that carries the network I/O of runs: the egress broker's HTTP
//! exchanges, DNS lookups and `wasi:sockets` readiness.
//!
//! A guest runs synchronously on its own thread; each blocking `wasi` call enters "the current
//! tokio runtime" (`wasmtime_wasi::runtime::in_tokio`) and parks the guest's thread until the
//! call's future is ready, while the runtime's worker threads poll sockets and run spawned
//! tasks (wasmtime-wasi-http spawns the broker's exchange as one). Left to itself,
//! wasmtime-wasi uses a runtime of its own with one worker per core; on a small machine the
//! workers spend much of an exchange waking, stealing from and parking one another. Each run,
//! a core module's as well as a component's, therefore enters this runtime instead, around the
//! guest's execution: one worker, which polls the sockets and runs the exchange without
//! handing work to a sibling. A one-shot `warden run` so starts one thread for I/O, not one
//! per core (a core module's file calls run on the guest's own thread and rarely wait here).
//!
//! Nothing about a run's checks depends on which runtime carries the I/O: the broker's
//! future is the same, as are its timeouts; a guest stuck on a server that never answers is
//! still settled by the watchdog.

use std::sync::OnceLock;
use tokio::runtime::{EnterGuard, Handle, Runtime};

/// Worker threads of the I/O runtime. One: an exchange is a short chain of steps that each
/// wait on the previous one, so a second worker mostly wakes up to find nothing to steal,
/// while the guests' own code runs on their run threads, not here.
pub const IO_WORKERS: usize = 1;

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The runtime, started on first use; `None` if its thread could not be started (the runs
/// then use wasmtime-wasi's own runtime, as they did before this one existed).
fn runtime() -> Option<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(IO_WORKERS)
                .thread_name("warden-io")
                .enable_io()
                .enable_time()
                .build()
                .ok()
        })
        .as_ref()
}

/// Starts the runtime's thread while starting threads is allowed: before a host lockdown.
/// If it cannot start, wasmtime-wasi's own runtime, which the runs then use, is started
/// instead, for the same reason.
pub(crate) fn start() {
    if runtime().is_none() {
        wasmtime_wasi::runtime::in_tokio(async {});
    }
}

/// The handle of the runtime, if it runs.
pub(crate) fn handle() -> Option<&'static Handle> {
    runtime().map(Runtime::handle)
}

/// Makes the runtime the current one on this thread until the guard is dropped: the
/// guest's blocking calls and the tasks they spawn then run on it.
pub(crate) fn enter() -> Option<EnterGuard<'static>> {
    handle().map(Handle::enter)
}
