//! The wall-time watchdog: ends runs that the epoch cannot stop.
//!
//! The epoch interrupts guest *code* at its wall limit, but not a guest blocked inside a host
//! call (a sleep, a read of a socket or of an inherited stdin, an HTTP response that never
//! comes). Every run therefore executes on a thread of its own (`warden-run`), and the caller
//! waits for its report on a channel. Each [`Warden`](crate::Warden) has one watchdog thread
//! that looks at its armed runs every [`WATCHDOG_POLL`]; a run still going [`WALL_GRACE`] past
//! its wall limit is *settled* by the watchdog: its read-write single files are copied back
//! (the guest is blocked, not writing), its staging removed, its `limit` and `exit` records
//! written, and the caller gets a [`RunReport`] with [`Outcome::WallLimit`].
//!
//! The stuck thread itself cannot be stopped from outside; it is abandoned. When its host call
//! returns, the epoch (long past) stops the guest at its next instruction, and the thread ends
//! without writing anything: a run is reported exactly once, by whoever settles it first.
//!
//! Under [`Interruption::EndProcess`](crate::Interruption::EndProcess) (what a one-shot
//! `warden run` uses) there is no epoch: the watchdog is then the only thing that stops a
//! guest. A guest still running code at its wall limit (the process's CPU time grew by at
//! least half of the last look's interval: nothing else of note runs in a one-shot process)
//! is settled then, without [`WALL_GRACE`], since nothing else would ever stop it; a guest
//! blocked in a host call is settled at its wall limit plus [`WALL_GRACE`], as with epochs
//! (and, as with epochs, a call that returns within the grace lets the guest end if it then
//! stops promptly; the run is still reported as the wall limit, since its wall time was past
//! it). A network or host-heap limit reached is settled at the next look,
//! as the epoch callback would at its next tick. Since the guest may still be running, the
//! settlement first closes the guest's stdout, stderr and audit records (writes under way
//! finish first), removes staging *without* copy-back (a guest still running may be halfway
//! through writing a read-write single file, and a copy taken then could be torn; `warden
//! run` keeps epochs for a manifest with such a file), writes the `limit` and `exit`
//! records, sends the report, and ends the process [`END_PROCESS_AFTER`] later if the caller
//! has not ended it first.

use crate::audit::Audit;
use crate::error::RunError;
use crate::policy::StagingHandle;
use crate::sandbox::{Outcome, RunReport};
use crate::stdio::OutputBudget;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Extra time a guest stuck in a blocking host call (one the epoch cannot interrupt) gets
/// past its wall limit before the watchdog settles the run: long enough that a host call
/// about to return (a slow but live server) is not cut short, short against any wall limit a
/// caller would wait for.
pub const WALL_GRACE: Duration = Duration::from_secs(2);

/// How often the watchdog looks at the clock: a stuck run is settled at most this late, and
/// each look is one sleep (a syscall the host lockdown always allows).
pub const WATCHDOG_POLL: Duration = Duration::from_millis(25);

/// Under [`Interruption::EndProcess`](crate::Interruption::EndProcess): how long the caller
/// has, after the report of a run the watchdog settled, to end the process itself (to print
/// its message, say) before the watchdog ends it with the run's exit code. The guest may still
/// be running meanwhile, but nothing it writes is written.
pub const END_PROCESS_AFTER: Duration = Duration::from_secs(1);

/// A check run at each look under [`Interruption::EndProcess`](crate::Interruption::EndProcess):
/// the outcome that ends the run now (its `limit` record already written), if any.
pub(crate) type StopCheck = Box<dyn Fn() -> Option<Outcome> + Send + Sync>;

/// What a run's caller receives.
pub(crate) type RunResult = Result<RunReport, RunError>;

/// Where a run's report goes: a blocking caller's channel or an async caller's.
pub(crate) enum Reply {
    Blocking(std::sync::mpsc::SyncSender<RunResult>),
    Async(tokio::sync::oneshot::Sender<RunResult>),
}

impl Reply {
    fn send(self, result: RunResult) {
        // A caller that went away (a dropped future) no longer wants the report.
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// The watchdog of one engine: its armed runs and the thread that watches them.
pub(crate) struct Watchdog {
    runs: Mutex<Vec<Arc<Watch>>>,
    stop: AtomicBool,
    /// [`Interruption::EndProcess`](crate::Interruption::EndProcess): no epoch; settle at the
    /// wall limit and end the process.
    end_process: bool,
    /// The process's CPU time at the last look, and when.
    last_cpu: Mutex<Option<(Instant, Duration)>>,
}

/// The process's CPU time so far (every thread, user and system).
fn process_cpu_time() -> Duration {
    // Only fails where the clock does not exist (not on Linux): then nothing counts as busy,
    // and a spinning guest is ended at its wall limit plus WALL_GRACE.
    cpu_time::ProcessTime::try_now()
        .map(|t| t.as_duration())
        .unwrap_or_default()
}

/// How a settled run was found.
#[derive(Clone, Copy)]
enum Ended {
    /// Blocked in a host call past its wall limit and [`WALL_GRACE`].
    Stuck,
    /// Running code past its wall limit, or past a network or host-heap limit.
    Running,
}

impl Watchdog {
    /// Starts the watchdog thread; it ends when the returned handle's last clone is dropped.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(crate) fn start(end_process: bool) -> std::io::Result<Arc<Watchdog>> {
        let dog = Arc::new(Watchdog {
            runs: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            end_process,
            last_cpu: Mutex::new(None),
        });
        let weak: Weak<Watchdog> = Arc::downgrade(&dog);
        std::thread::Builder::new()
            .name("warden-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(WATCHDOG_POLL);
                    let Some(dog) = weak.upgrade() else { break };
                    if dog.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    dog.look(Instant::now());
                }
            })?;
        Ok(dog)
    }

    /// Asks the thread to end at its next look.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Settles every armed run past its deadline, and forgets settled ones.
    fn look(&self, now: Instant) {
        let runs: Vec<Arc<Watch>> = {
            let mut runs = lock(&self.runs);
            runs.retain(|w| !w.is_settled());
            runs.clone()
        };
        if !self.end_process {
            for watch in runs {
                if watch.deadline(WALL_GRACE).is_some_and(|d| now >= d) {
                    watch.expire(Outcome::WallLimit, Ended::Stuck, false);
                }
            }
            return;
        }
        // Without epochs: a guest still running code at its wall limit is ended then; one
        // blocked in a host call gets WALL_GRACE, exactly as with epochs. The process's CPU
        // time tells them apart (a one-shot process runs nothing else of note meanwhile).
        let cpu = process_cpu_time();
        let busy = {
            let mut last = lock(&self.last_cpu);
            let busy = last.is_some_and(|(at, was)| {
                let spent = cpu.saturating_sub(was);
                spent >= now.saturating_duration_since(at) / 2
            });
            *last = Some((now, cpu));
            busy
        };
        for watch in runs {
            if watch.deadline(WALL_GRACE).is_some_and(|d| now >= d) {
                watch.expire(Outcome::WallLimit, Ended::Stuck, true);
            } else if busy && watch.deadline(Duration::ZERO).is_some_and(|d| now >= d) {
                watch.expire(Outcome::WallLimit, Ended::Running, true);
            } else if let Some(outcome) = watch.check() {
                watch.expire(outcome, Ended::Running, true);
            }
        }
    }
}

/// What the watchdog needs of a run once its guest has started.
pub(crate) struct Armed {
    pub(crate) started: Instant,
    pub(crate) wall: Duration,
    pub(crate) audit: Audit,
    pub(crate) staging: StagingHandle,
    /// The run's output budget, whose gate the settlement closes when it ends the process.
    pub(crate) output: Arc<OutputBudget>,
    /// The network and host-heap limits, checked at each look when there is no epoch.
    pub(crate) check: Option<StopCheck>,
}

/// One run, as seen by its thread, its caller and the watchdog.
pub(crate) struct Watch {
    state: Mutex<WatchState>,
}

struct WatchState {
    /// Reported (or about to be) by the run's thread or by the watchdog.
    settled: bool,
    /// Taken by whoever sends the report.
    reply: Option<Reply>,
    armed: Option<Armed>,
}

impl Watch {
    pub(crate) fn new(reply: Reply) -> Arc<Watch> {
        Arc::new(Watch {
            state: Mutex::new(WatchState {
                settled: false,
                reply: Some(reply),
                armed: None,
            }),
        })
    }

    fn is_settled(&self) -> bool {
        lock(&self.state).settled
    }

    /// When the run passes its wall limit plus `grace`.
    fn deadline(&self, grace: Duration) -> Option<Instant> {
        let state = lock(&self.state);
        let armed = state.armed.as_ref()?;
        armed.started.checked_add(armed.wall.saturating_add(grace))
    }

    /// The outcome a limit other than wall time asks for now, if any.
    fn check(&self) -> Option<Outcome> {
        let state = lock(&self.state);
        state.armed.as_ref()?.check.as_ref()?()
    }

    /// The guest is about to start: from now on the watchdog may settle the run.
    pub(crate) fn arm(self: &Arc<Self>, dog: &Watchdog, armed: Armed) {
        lock(&self.state).armed = Some(armed);
        lock(&dog.runs).push(self.clone());
    }

    /// The run's thread claims the right to report; `false` when the watchdog settled the run
    /// already (the thread then writes nothing).
    pub(crate) fn claim(&self) -> bool {
        let mut state = lock(&self.state);
        !std::mem::replace(&mut state.settled, true)
    }

    /// Sends the run's report (after [`Watch::claim`], or for a run that never started).
    pub(crate) fn send(&self, result: RunResult) {
        let reply = {
            let mut state = lock(&self.state);
            state.settled = true;
            state.reply.take()
        };
        if let Some(reply) = reply {
            reply.send(result);
        }
    }

    /// The watchdog's settlement of a run: stuck past its deadline (`WallLimit`), or, when it
    /// ends the process, any limit its check reported.
    fn expire(&self, outcome: Outcome, how: Ended, end_process: bool) {
        let (reply, armed) = {
            let mut state = lock(&self.state);
            if std::mem::replace(&mut state.settled, true) {
                return;
            }
            (state.reply.take(), state.armed.take())
        };
        let Some(armed) = armed else { return };
        let wall_ms = u64::try_from(armed.wall.as_millis()).unwrap_or(u64::MAX);
        let code = outcome.exit_code();
        let audit = if end_process {
            // The guest may still be running: nothing of it is written from here on, and its
            // read-write single files are not copied back (it may be halfway through a write).
            armed.output.close();
            armed.staging.finish(false);
            armed.audit.seal()
        } else {
            // The guest is blocked in a host call, not writing: copy back as a normal end does.
            armed.staging.finish(true);
            armed.audit.clone()
        };
        if outcome == Outcome::WallLimit {
            audit.limit("wall", wall_ms);
        }
        let message = match (how, end_process) {
            (Ended::Stuck, false) => "stuck in a host call past the wall limit",
            (Ended::Stuck, true) => {
                "stuck in a host call past the wall limit; the run was ended with the process \
                 (no epoch interruption), read-write single files not copied back"
            }
            (Ended::Running, _) => {
                "the run was ended with the process (no epoch interruption); read-write single \
                 files not copied back"
            }
        };
        audit.exit(crate::audit::Exit::from_outside(
            outcome.name(),
            code,
            Some(wall_ms),
            message,
        ));
        if let Some(reply) = reply {
            reply.send(Ok(RunReport {
                outcome,
                wall: armed.started.elapsed(),
                fuel_used: None,
                peak_memory: 0,
                run_id: armed.audit.run_id().to_string(),
            }));
        }
        if end_process {
            // The caller normally ends the process on the report; if it does not, this does:
            // the guest cannot be stopped otherwise.
            std::thread::sleep(END_PROCESS_AFTER);
            std::process::exit(code);
        }
    }
}

/// Sends [`RunError::Lost`] if the run's thread ends (a panic) without a report.
pub(crate) struct LostGuard(pub(crate) Arc<Watch>);

impl Drop for LostGuard {
    fn drop(&mut self) {
        self.0.send(Err(RunError::Lost));
    }
}

/// A poisoned lock only means a thread panicked holding it; the state is still usable, and a
/// caller waiting for its report matters more.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
