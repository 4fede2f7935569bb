//! What a guest can make warden's own process hold is bounded by the run's limits.
//!
//! A guest's linear memories and tables are counted by the store's limiter. But a guest can
//! also make the host allocate on its behalf: `wasi:http` header fields and bodies, resource
//! handles of every kind, buffered responses, resolver work. Each of those has a cap of its
//! own in wasmtime-wasi or in warden (fields 128 KiB each, [`MAX_HANDLES`] handles, the
//! broker's response cap), but many capped things together still add up. So the host's heap
//! is metered too: a run may grow warden's heap by at most its `[limits] memory` plus
//! [`HOST_HEAP_HEADROOM`]; past that the run stops as `memory-limit` (exit 121).
//!
//! The meter counts the whole process's heap, which cannot tell one run's allocations from
//! another's. With several runs live in one process (a `warden serve` worker with
//! `--runs-per-worker`, an embedder's concurrent runs) a run is therefore stopped when the heap
//! has grown since its start by more than the allowances of all the runs live at that moment
//! together: the process as a whole stays within the sum of its live runs' allowances, and one
//! run's growth is never charged against a neighbour's allowance alone. With one live run
//! this is exactly its own allowance.
//!
//! Metering needs a counting global allocator, which only a program can install: the
//! `warden` binary installs [`CountingAllocator`] and calls [`install`]. An embedder that
//! does the same gets the bound too; without it only the per-kind caps apply.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The global allocator the `warden` binary installs: the system allocator, counted (it never
/// refuses an allocation itself; warden stops the run instead).
pub type CountingAllocator = cap::Cap<std::alloc::System>;

/// A fresh [`CountingAllocator`], for a `#[global_allocator]` static.
pub const fn counting_allocator() -> CountingAllocator {
    cap::Cap::new(std::alloc::System, usize::MAX)
}

/// Heap a run may add on top of its `[limits] memory` before it is stopped: room for the
/// buffers warden itself keeps for a guest at their caps (a response of
/// [`crate::broker::MAX_RESPONSE_BYTES`] and its redacted copy, a request body, the guest's
/// pending output), with slack for the runtime's own bookkeeping.
pub const HOST_HEAP_HEADROOM: u64 = 48 << 20;

/// The most host resources (files, streams, HTTP fields and bodies, sockets, secrets, …) a
/// component may hold at once. wasmtime-wasi's table allows a million and wasmtime caps a
/// store at 100,000 live component handles; warden's cap sits below both so that the run
/// usually ends here, as `memory-limit`, with a record saying why (wasmtime's own cap, when it
/// is reached first, ends the run the same way). Ordinary guests hold tens; the stress corpus
/// holds 80,000 of four kinds without harm.
pub const MAX_HANDLES: usize = 90_000;

static METER: OnceLock<fn() -> usize> = OnceLock::new();

/// Registers the function that reports the bytes the process's heap holds now (for
/// [`CountingAllocator`], `|| ALLOCATOR.allocated()`). Later calls are ignored.
pub fn install(meter: fn() -> usize) {
    let _ = METER.set(meter);
}

/// Bytes warden's heap holds now, if a meter is installed.
pub fn allocated() -> Option<u64> {
    METER.get().map(|m| m() as u64)
}

/// The allowances of the runs live now, summed.
static LIVE_ALLOWANCE: AtomicU64 = AtomicU64::new(0);

/// A live run's allowance, counted in [`live_allowance`] until dropped.
pub(crate) struct Allowance(u64);

impl Allowance {
    pub(crate) fn register(bytes: u64) -> Allowance {
        LIVE_ALLOWANCE.fetch_add(bytes, Ordering::AcqRel);
        Allowance(bytes)
    }
}

impl Drop for Allowance {
    fn drop(&mut self) {
        LIVE_ALLOWANCE.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// The allowances of the runs live now, summed (see the module doc).
pub(crate) fn live_allowance() -> u64 {
    LIVE_ALLOWANCE.load(Ordering::Acquire)
}

/// The error a run stops with when the host heap passes its ceiling.
#[derive(Debug, thiserror::Error)]
#[error("warden's heap grew past the run's allowance ({allowance} bytes) on the guest's behalf")]
pub struct HostMemoryExceeded {
    /// The run's own allowance in bytes: its `[limits] memory` plus [`HOST_HEAP_HEADROOM`].
    pub allowance: u64,
}
