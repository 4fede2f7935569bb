//! A gate that a run's writers (guest stdout and stderr, the run's audit records) pass
//! through, and that the watchdog closes before it writes a run's last records when it ends
//! the process (see [`Interruption::EndProcess`](crate::Interruption::EndProcess)): from then
//! on nothing the guest does is written, so the `exit` record is the run's last word.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`Gate::close`] waits for writes already under way to finish. A write blocked on
/// a full pipe may never finish; the process then ends with it cut short, and its bytes (if
/// any reach the pipe) are at most one write of the guest's.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    inside: AtomicUsize,
}

/// One writer inside the gate; leaves it when dropped.
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// Enters the gate, or `None` once it is closed. Sequentially consistent with
    /// [`Gate::close`]: a writer either sees the gate closed or is counted by the closer.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        Some(pass)
    }

    /// Closes the gate and waits (at most [`CLOSE_WAIT`]) for the writers inside to leave.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let until = Instant::now() + CLOSE_WAIT;
        while self.inside.load(Ordering::SeqCst) != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_lets_no_writer_in() {
        let g = Gate::default();
        assert!(g.enter().is_some());
        g.close();
        assert!(g.enter().is_none());
    }
}
