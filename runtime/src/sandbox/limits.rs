//! Limits acting inside a run: the memory limiter, fuel and the epoch callback (wall time,
//! network limits, the host-heap bound).

use crate::audit::{Audit, Event, LimitReached};
use crate::egress::{EgressMeter, NetLimitReached};
use crate::host_memory;
use std::sync::Arc;
use wasmtime::{Store, Trap};

/// Bytes charged against `[limits] memory` for each table element (a pointer-sized slot).
const TABLE_ELEMENT_BYTES: u64 = 8;

/// Enforces `[limits] memory` across all memories and tables of a store.
pub(super) struct MemoryLimiter {
    pub(super) limit: u64,
    pub(super) used: u64,
    pub(super) peak: u64,
    pub(super) refused: bool,
    /// `[limits] handles`, for the record when a component's resource table is full.
    pub(super) handles: u64,
    pub(super) audit: Audit,
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

/// Fuel, and the epoch callback that runs every tick: it stops the run once the wall-time
/// limit's ticks have passed or a network limit was reached (which the HTTP broker records
/// from another thread). `ticks` is `None` for an engine without epochs
/// ([`Interruption::EndProcess`]), whose watchdog checks these limits instead.
pub(super) fn setup_store<T>(
    store: &mut Store<T>,
    fuel: Option<u64>,
    ticks: Option<u64>,
    meter: &Arc<EgressMeter>,
    heap: HeapWatch,
) {
    if let Some(f) = fuel {
        // Only fails when the engine lacks fuel metering, which `load` already refused.
        let _ = store.set_fuel(f);
    }
    let Some(ticks) = ticks else { return };
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
pub(super) struct HeapWatch {
    /// The heap's size when the run started, when a meter is installed.
    start: Option<u64>,
    /// The run's allowance, for the record.
    allowance: u64,
    /// The allowance counted among the live runs' while this run lives.
    _live: host_memory::Allowance,
    audit: Audit,
}

impl HeapWatch {
    pub(super) fn new(memory_limit: u64, audit: &Audit) -> HeapWatch {
        let allowance = memory_limit.saturating_add(host_memory::HOST_HEAP_HEADROOM);
        HeapWatch {
            start: host_memory::allocated(),
            allowance,
            _live: host_memory::Allowance::register(allowance),
            audit: audit.clone(),
        }
    }

    pub(super) fn check(&self) -> wasmtime::Result<()> {
        let (Some(start), Some(now)) = (self.start, host_memory::allocated()) else {
            return Ok(());
        };
        if now.saturating_sub(start) > host_memory::live_allowance() {
            self.audit.record(Event::Limit(LimitReached {
                limit: "memory".into(),
                value: self.allowance.into(),
                scope: Some("host".into()),
                handles: None,
                reason: Some(
                    "warden's heap grew past the run's allowance on the guest's behalf".into(),
                ),
            }));
            return Err(wasmtime::Error::new(host_memory::HostMemoryExceeded {
                allowance: self.allowance,
            }));
        }
        Ok(())
    }
}
