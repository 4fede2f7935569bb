//! The threads runs execute on: kept after a run and reused, so that a run costs a hand-off
//! (a lock and a wake-up, a few microseconds) rather than a thread start.
//!
//! A thread whose run is stuck in a host call (and was settled by the watchdog) is simply
//! not back in the pool until its host call returns; the pool starts another thread when none
//! is idle. Idle threads end when their engine is dropped, and past [`MAX_IDLE_RUN_THREADS`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};

/// The most run threads kept idle per engine: enough for a burst of concurrent runs to find a
/// thread each, while a past burst of thousands does not leave thousands of threads (and
/// their stacks' address space) behind.
pub(crate) const MAX_IDLE_RUN_THREADS: usize = 64;

/// After [`RunPool::prestart`], how long a run waits for a thread to come back to the pool
/// (the previous run's thread is returning as the next run arrives) before it is refused: a
/// thread stuck in a host call may never come back, and no new one may be started.
pub(crate) const WAIT_FOR_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// How many memory mappings a live run holds, for the default of
/// [`EngineSettings::max_live_runs`](crate::EngineSettings::max_live_runs): its thread's
/// stack and signal stack with their guard pages, its instances' memories and tables with
/// their guards. Measured: net-probe's runs, blocked in an HTTP call, exhausted Linux's
/// default 65,530 mappings at about 6,300 live runs (10.4 each, the process's own included);
/// 12 leaves room for the rest of the process.
pub(crate) const MAPPINGS_PER_RUN: usize = 12;

/// The default most live runs when the kernel's limit cannot be read.
const DEFAULT_MAX_LIVE: usize = 4096;

/// The default most live runs of an engine: the kernel's limit on one process's memory
/// mappings (`vm.max_map_count`) over [`MAPPINGS_PER_RUN`]. Past that limit a thread's start
/// fails inside the standard library's signal-stack setup, which aborts the whole process:
/// refusing one run instead is the only safe answer.
pub(crate) fn default_max_live() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(DEFAULT_MAX_LIVE, |maps| (maps / MAPPINGS_PER_RUN).max(1))
}

/// Why a run got no thread.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// As many runs as the engine allows are live (`max_live_runs`).
    Full(usize),
    /// No thread was idle and none could be started.
    Thread(std::io::Error),
}

/// A run's place among the pool's live runs, held by its job: given back when dropped, which
/// the job does as soon as its run is over (before it reports, so that a caller who starts
/// the next run on the report finds the place free), or however the job ends.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The idle run threads of one engine, each waiting on its own channel.
pub(crate) struct RunPool {
    idle: Mutex<Vec<Sender<Job>>>,
    /// Signalled when a thread joins `idle`.
    returned: std::sync::Condvar,
    /// Set by [`RunPool::prestart`]: no thread is started after it, runs wait for an idle one.
    fixed: std::sync::atomic::AtomicBool,
    /// The most threads kept idle: [`MAX_IDLE_RUN_THREADS`], or as many as were prestarted
    /// (a fixed pool must keep every thread it has, as it cannot start another).
    max_idle: AtomicUsize,
    name: &'static str,
    stack_size: usize,
    /// Runs live (each holding a [`Slot`]): handed to a thread and not yet over.
    live: Arc<AtomicUsize>,
    /// The most live runs at once: a run past it is refused, not given a thread.
    max_live: usize,
}

impl RunPool {
    pub(crate) fn new(name: &'static str, stack_size: usize, max_live: usize) -> Arc<RunPool> {
        Arc::new(RunPool {
            idle: Mutex::new(Vec::new()),
            returned: std::sync::Condvar::new(),
            fixed: std::sync::atomic::AtomicBool::new(false),
            max_idle: AtomicUsize::new(MAX_IDLE_RUN_THREADS),
            name,
            stack_size,
            live: Arc::new(AtomicUsize::new(0)),
            max_live: max_live.max(1),
        })
    }

    /// Starts a thread that runs `first`, then serves the pool.
    fn spawn(self: &Arc<Self>, first: Job) -> std::io::Result<()> {
        let pool = Arc::downgrade(self);
        std::thread::Builder::new()
            .name(self.name.into())
            .stack_size(self.stack_size)
            .spawn(move || worker(first, pool))?;
        Ok(())
    }

    /// Runs `job` on an idle thread, or on a new one when none is idle; the job gets the
    /// run's [`Slot`] among the live runs.
    ///
    /// # Errors
    /// `max_live` runs are live, or no thread was idle and a new one could not be started.
    pub(crate) fn execute(
        self: &Arc<Self>,
        job: impl FnOnce(Slot) + Send + 'static,
    ) -> Result<(), PoolError> {
        let reserved = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_live).then_some(n + 1)
            });
        if reserved.is_err() {
            return Err(PoolError::Full(self.max_live));
        }
        // From here, a job that is dropped undone (no thread for it) gives its place back.
        let slot = Slot(self.live.clone());
        let job: Job = Box::new(move || job(slot));
        let mut job = job;
        let fixed = self.fixed.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + WAIT_FOR_IDLE;
        loop {
            let mut idle = lock(&self.idle);
            if fixed {
                while idle.is_empty() {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(PoolError::Thread(std::io::Error::other(
                            "no idle run thread, and this process starts no new ones",
                        )));
                    }
                    idle = self
                        .returned
                        .wait_timeout(idle, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
            let Some(worker) = idle.pop() else {
                break;
            };
            drop(idle);
            match worker.send(job) {
                Ok(()) => return Ok(()),
                // That thread has ended: try the next one.
                Err(std::sync::mpsc::SendError(back)) => job = back,
            }
        }
        self.spawn(job).map_err(PoolError::Thread)
    }
}

impl RunPool {
    /// Starts threads until `n` are idle, and returns once they are: a process that locks
    /// itself down after loading (a `warden serve` worker, whose filter allows no thread
    /// start) calls it before the lockdown. From then on the pool starts no thread: a run
    /// waits for an idle one (at most [`WAIT_FOR_IDLE`]).
    ///
    /// # Errors
    /// A thread could not be started.
    pub(crate) fn prestart(self: &Arc<Self>, n: usize) -> std::io::Result<()> {
        // More threads than live runs would never all be used.
        let n = n.min(self.max_live);
        self.max_idle.fetch_max(n, Ordering::AcqRel);
        let have = lock(&self.idle).len();
        for _ in have..n {
            self.spawn(Box::new(|| {}))?;
        }
        let mut idle = lock(&self.idle);
        while idle.len() < n {
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
        drop(idle);
        self.fixed.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// A run thread: runs its first job, then offers itself to the pool for the next.
fn worker(first: Job, pool: Weak<RunPool>) {
    let mut job = first;
    loop {
        job();
        // A channel of its own for each wait: its only sender is in the pool, so the wait
        // ends when the pool is dropped.
        let (tx, rx): (Sender<Job>, Receiver<Job>) = std::sync::mpsc::channel();
        {
            let Some(pool) = pool.upgrade() else { return };
            let mut idle = lock(&pool.idle);
            if idle.len() >= pool.max_idle.load(Ordering::Acquire) {
                return;
            }
            idle.push(tx);
            pool.returned.notify_all();
        }
        job = match rx.recv() {
            Ok(j) => j,
            Err(_) => return,
        };
    }
}

/// A poisoned lock only means a thread panicked holding it; the list is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// Waits until `n` threads are idle in `pool`.
    fn until_idle(pool: &RunPool, n: usize) {
        while lock(&pool.idle).len() != n {
            std::thread::yield_now();
        }
    }

    /// After `prestart`, back-to-back runs wait for the prestarted thread rather than start
    /// another (which a locked-down process could not).
    #[test]
    fn after_prestart_back_to_back_runs_all_use_the_prestarted_thread() {
        let pool = RunPool::new("test-run", 1 << 20, 64);
        pool.prestart(1).unwrap();
        let (ids, seen) = channel();
        for _ in 0..20 {
            let tx = ids.clone();
            pool.execute(move |_| tx.send(std::thread::current().id()).unwrap())
                .unwrap();
        }
        let used: std::collections::HashSet<_> = (0..20).map(|_| seen.recv().unwrap()).collect();
        assert_eq!(used.len(), 1, "one thread served every run");
    }

    /// A pool prestarted past [`MAX_IDLE_RUN_THREADS`] (a serve worker holding many runs at
    /// once) holds that many runs at once and keeps every thread after they end: it could
    /// not start one again.
    #[test]
    fn a_pool_prestarted_past_the_idle_bound_runs_that_many_at_once_and_keeps_them() {
        let n = MAX_IDLE_RUN_THREADS + 36;
        let pool = RunPool::new("test-run", 1 << 20, n + 10);
        pool.prestart(n).unwrap();
        assert_eq!(lock(&pool.idle).len(), n);
        let gate = std::sync::Arc::new(std::sync::Barrier::new(n + 1));
        let (ids, seen) = channel();
        for _ in 0..n {
            let (gate, tx) = (gate.clone(), ids.clone());
            pool.execute(move |_| {
                tx.send(std::thread::current().id()).unwrap();
                // Every run waits for all the others: n at once, or this never returns.
                gate.wait();
            })
            .unwrap();
        }
        gate.wait();
        let used: std::collections::HashSet<_> = (0..n).map(|_| seen.recv().unwrap()).collect();
        assert_eq!(used.len(), n);
        until_idle(&pool, n);
        // Control: unprestarted, threads past the idle bound end when their runs do.
        let pool = RunPool::new("test-run", 1 << 20, n + 10);
        let gate = std::sync::Arc::new(std::sync::Barrier::new(n + 1));
        for _ in 0..n {
            let gate = gate.clone();
            pool.execute(move |_| {
                gate.wait();
            })
            .unwrap();
        }
        gate.wait();
        until_live(&pool, 0);
        until_idle(&pool, MAX_IDLE_RUN_THREADS);
    }

    #[test]
    fn a_finished_runs_thread_takes_the_next_run_and_a_busy_one_does_not() {
        let pool = RunPool::new("test-run", 1 << 20, 64);
        let (ids, seen) = channel();
        let tx = ids.clone();
        pool.execute(move |_| tx.send(std::thread::current().id()).unwrap())
            .unwrap();
        let first = seen.recv().unwrap();
        until_idle(&pool, 1);
        let tx = ids.clone();
        pool.execute(move |_| tx.send(std::thread::current().id()).unwrap())
            .unwrap();
        assert_eq!(seen.recv().unwrap(), first, "the idle thread was reused");

        // A thread blocked in its job (a run stuck in a host call) is not handed another:
        // the next job gets a thread of its own.
        until_idle(&pool, 1);
        let (release, blocked) = channel::<()>();
        let tx = ids.clone();
        pool.execute(move |_| {
            tx.send(std::thread::current().id()).unwrap();
            blocked.recv().unwrap();
        })
        .unwrap();
        assert_eq!(seen.recv().unwrap(), first);
        let tx = ids.clone();
        pool.execute(move |_| tx.send(std::thread::current().id()).unwrap())
            .unwrap();
        assert_ne!(
            seen.recv().unwrap(),
            first,
            "a new thread while the first is busy"
        );
        release.send(()).unwrap();
        until_idle(&pool, 2);
    }

    /// Waits (at most 5 s) until `n` runs of `pool` are live.
    fn until_live(pool: &RunPool, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pool.live.load(Ordering::Acquire) != n {
            assert!(
                std::time::Instant::now() < deadline,
                "a place was not freed"
            );
            std::thread::yield_now();
        }
    }

    /// Past `max_live` live runs a job is refused at once (not queued, no thread started);
    /// a run that is over frees its place even before its thread is back in the pool, and
    /// so does a job that panics.
    #[test]
    fn runs_past_max_live_are_refused_until_one_is_over() {
        let pool = RunPool::new("test-run", 1 << 20, 2);
        let mut releases = Vec::new();
        let (started, seen) = channel();
        for _ in 0..2 {
            let (release, blocked) = channel::<()>();
            let tx = started.clone();
            pool.execute(move |slot| {
                tx.send(()).unwrap();
                blocked.recv().unwrap();
                drop(slot);
                // Still on its way back to the pool when the next run arrives.
                std::thread::sleep(std::time::Duration::from_millis(200));
            })
            .unwrap();
            releases.push(release);
            seen.recv().unwrap();
        }
        assert!(matches!(pool.execute(|_| ()), Err(PoolError::Full(2))));
        // CONTROL: one run over (its thread not yet idle), the next one fits.
        releases.pop().unwrap().send(()).unwrap();
        until_live(&pool, 1);
        let (tx, done) = channel();
        pool.execute(move |_| tx.send(()).unwrap()).unwrap();
        done.recv().unwrap();
        until_live(&pool, 1);
        // A job that panics gives its place back too.
        let (tx, done) = channel::<()>();
        pool.execute(move |_| {
            let _tx = tx;
            panic!("a job that panics (expected in this test)");
        })
        .unwrap();
        assert!(done.recv().is_err(), "the job ended");
        until_live(&pool, 1);
        releases.pop().unwrap().send(()).unwrap();
    }
}
