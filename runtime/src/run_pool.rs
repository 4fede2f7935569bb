//! The threads runs execute on: kept after a run and reused, so that a run costs a hand-off
//! (a lock and a wake-up, a few microseconds) rather than a thread start.
//!
//! A thread whose run is stuck in a host call (and was settled by the watchdog) is simply
//! not back in the pool until its host call returns; the pool starts another thread when none
//! is idle. Idle threads end when their engine is dropped, and past [`MAX_IDLE_RUN_THREADS`].

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

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The idle run threads of one engine, each waiting on its own channel.
pub(crate) struct RunPool {
    idle: Mutex<Vec<Sender<Job>>>,
    /// Signalled when a thread joins `idle`.
    returned: std::sync::Condvar,
    /// Set by [`RunPool::prestart`]: no thread is started after it, runs wait for an idle one.
    fixed: std::sync::atomic::AtomicBool,
    name: &'static str,
    stack_size: usize,
}

impl RunPool {
    pub(crate) fn new(name: &'static str, stack_size: usize) -> Arc<RunPool> {
        Arc::new(RunPool {
            idle: Mutex::new(Vec::new()),
            returned: std::sync::Condvar::new(),
            fixed: std::sync::atomic::AtomicBool::new(false),
            name,
            stack_size,
        })
    }

    /// Runs `job` on an idle thread, or on a new one when none is idle.
    ///
    /// # Errors
    /// No thread was idle and a new one could not be started.
    pub(crate) fn execute(self: &Arc<Self>, job: Job) -> std::io::Result<()> {
        let mut job = job;
        let fixed = self.fixed.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + WAIT_FOR_IDLE;
        loop {
            let mut idle = lock(&self.idle);
            if fixed {
                while idle.is_empty() {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(std::io::Error::other(
                            "no idle run thread, and this process starts no new ones",
                        ));
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
        let pool = Arc::downgrade(self);
        std::thread::Builder::new()
            .name(self.name.into())
            .stack_size(self.stack_size)
            .spawn(move || worker(job, pool))?;
        Ok(())
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
        let n = n.min(MAX_IDLE_RUN_THREADS);
        let have = lock(&self.idle).len();
        for _ in have..n {
            let pool = Arc::downgrade(self);
            std::thread::Builder::new()
                .name(self.name.into())
                .stack_size(self.stack_size)
                .spawn(move || worker(Box::new(|| {}), pool))?;
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
            if idle.len() >= MAX_IDLE_RUN_THREADS {
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
        let pool = RunPool::new("test-run", 1 << 20);
        pool.prestart(1).unwrap();
        let (ids, seen) = channel();
        for _ in 0..20 {
            let tx = ids.clone();
            pool.execute(Box::new(move || {
                tx.send(std::thread::current().id()).unwrap()
            }))
            .unwrap();
        }
        let used: std::collections::HashSet<_> = (0..20).map(|_| seen.recv().unwrap()).collect();
        assert_eq!(used.len(), 1, "one thread served every run");
    }

    #[test]
    fn a_finished_runs_thread_takes_the_next_run_and_a_busy_one_does_not() {
        let pool = RunPool::new("test-run", 1 << 20);
        let (ids, seen) = channel();
        let tx = ids.clone();
        pool.execute(Box::new(move || {
            tx.send(std::thread::current().id()).unwrap()
        }))
        .unwrap();
        let first = seen.recv().unwrap();
        until_idle(&pool, 1);
        let tx = ids.clone();
        pool.execute(Box::new(move || {
            tx.send(std::thread::current().id()).unwrap()
        }))
        .unwrap();
        assert_eq!(seen.recv().unwrap(), first, "the idle thread was reused");

        // A thread blocked in its job (a run stuck in a host call) is not handed another:
        // the next job gets a thread of its own.
        until_idle(&pool, 1);
        let (release, blocked) = channel::<()>();
        let tx = ids.clone();
        pool.execute(Box::new(move || {
            tx.send(std::thread::current().id()).unwrap();
            blocked.recv().unwrap();
        }))
        .unwrap();
        assert_eq!(seen.recv().unwrap(), first);
        let tx = ids.clone();
        pool.execute(Box::new(move || {
            tx.send(std::thread::current().id()).unwrap()
        }))
        .unwrap();
        assert_ne!(
            seen.recv().unwrap(),
            first,
            "a new thread while the first is busy"
        );
        release.send(()).unwrap();
        until_idle(&pool, 2);
    }
}
