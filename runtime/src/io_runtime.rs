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
//!
//! # The blocking pool
//!
//! wasmtime-wasi 48 hands some file operations to tokio's blocking pool whatever the WASI
//! context says (`allow_blocking_current_thread` covers only the calls that check it): a
//! component's file input and output streams (`read-via-stream`, `write-via-stream`,
//! `append-via-stream`: every read, every write, and `subscribe` on them), and therefore a core
//! module's `poll_oneoff` on a file descriptor, which polls such a stream. Left alone, the pool
//! starts its threads on demand, i.e. after the lockdown, where starting a thread is not
//! allowed with file grants alone. So the pool is made a fixed size, [`BLOCKING_THREADS`], its
//! threads are started by [`start_blocking_pool`] before the lockdown, and they never retire:
//! from then on tokio queues a blocking task for an idle thread instead of starting one, and
//! no file grant needs `clone`. The price is that at most [`BLOCKING_THREADS`] such file
//! operations of a process run at once; the others wait their turn (each is a bounded read or
//! write of a regular file, so the wait is short; a guest that blocks one on a FIFO holds a
//! place until its wall limit ends it).

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::runtime::{EnterGuard, Handle, Runtime};

/// Worker threads of the I/O runtime. One: an exchange is a short chain of steps that each
/// wait on the previous one, so a second worker mostly wakes up to find nothing to steal,
/// while the guests' own code runs on their run threads, not here.
pub const IO_WORKERS: usize = 1;

/// Threads of the runtime's blocking pool, all started before the lockdown and never retired
/// (see the module docs). Four: a guest has at most one operation in flight per open file
/// stream, and a run rarely reads or writes more than a few files at once; more would cost
/// every run with file grants a thread start each, for a concurrency file I/O on a shared disk
/// seldom gains from.
pub const BLOCKING_THREADS: usize = 4;

/// How long an idle blocking thread waits for work before it ends: for ever, since a thread
/// that ended could not be replaced under the lockdown.
const BLOCKING_KEEP_ALIVE: Duration = Duration::MAX;

/// How long [`start_blocking_pool`] waits for the pool's threads to run: thread starts take
/// microseconds; past this the process is out of threads or memory.
const BLOCKING_START_BOUND: Duration = Duration::from_secs(5);

/// Whether [`start_blocking_pool`] has started the pool's threads (once per process).
static BLOCKING_STARTED: OnceLock<bool> = OnceLock::new();

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The runtime, started on first use; `None` if its thread could not be started (the runs
/// then use wasmtime-wasi's own runtime, as they did before this one existed).
fn runtime() -> Option<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(IO_WORKERS)
                .thread_name("warden-io")
                .max_blocking_threads(BLOCKING_THREADS)
                .thread_keep_alive(BLOCKING_KEEP_ALIVE)
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

/// Starts every thread of the runtime's blocking pool now, while starting threads is
/// allowed, and returns once all [`BLOCKING_THREADS`] of them run: from then on a blocking task
/// (a component's file stream read or write, a core module's `poll_oneoff` on a file) waits
/// for one of them instead of starting a thread. Done once per process; later calls return at
/// once.
///
/// # Errors
/// The runtime or one of the pool's threads could not be started. A run that needs the pool
/// must not go on under a lockdown then: its first file stream would start a thread there.
pub(crate) fn start_blocking_pool() -> std::io::Result<()> {
    // Test builds only: leave the pool to start its threads on demand, as before, so that a
    // test can show its guest really needs the pool (the control is killed by the lockdown).
    #[cfg(feature = "test-escape")]
    if std::env::var_os("WARDEN_TEST_LAZY_BLOCKING_POOL").is_some() {
        return Ok(());
    }
    let started = BLOCKING_STARTED.get_or_init(|| {
        let Some(handle) = handle() else {
            return false;
        };
        // Each task holds its thread until all of them are running, so the pool cannot hand
        // two of them to one thread: every place in the pool gets a thread of its own. A
        // thread that cannot start leaves its task queued; the wait then ends after a bound
        // and the pool counts as not started.
        let gate = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        for _ in 0..BLOCKING_THREADS {
            let gate = gate.clone();
            drop(handle.spawn_blocking(move || {
                let (lock, cvar) = &*gate;
                let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
                state.0 += 1;
                cvar.notify_all();
                while !state.1 {
                    state = cvar.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            }));
        }
        let (lock, cvar) = &*gate;
        let state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut state, _) = cvar
            .wait_timeout_while(state, BLOCKING_START_BOUND, |s| s.0 < BLOCKING_THREADS)
            .unwrap_or_else(PoisonError::into_inner);
        let all = state.0 == BLOCKING_THREADS;
        state.1 = true;
        cvar.notify_all();
        all
    });
    if *started {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "the I/O runtime's threads could not be started",
        ))
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
