//! How a run ended: [`Outcome`], [`RunReport`], and the classification of a guest's result.

use super::limits::MemoryLimiter;
use crate::audit::{Event, LimitReached};
use crate::egress::{EgressMeter, NetLimit};
use crate::host_memory;
use crate::stdio::{OutputBudget, OutputLimitReached};
use std::time::Duration;
use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

/// The largest guest exit code passed through as is; larger codes are reported as this one,
/// since 120 and up carry warden's own meanings.
pub const MAX_GUEST_EXIT: i32 = 119;

/// What the guest's entry point returned: an exit code, or the error that stopped it.
pub(super) type GuestResult = Result<i32, wasmtime::Error>;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The guest exited with this code (0 for a normal return).
    Exited(i32),
    /// The guest trapped; the message says why.
    Trap(String),
    /// `[limits] memory` was reached: by the guest's memories and tables, by its live
    /// resource handles (`[limits] handles`), or by warden's heap grown on its behalf. Exit
    /// code 121.
    MemoryLimit,
    /// `[limits] fuel` was used up. Exit code 122.
    FuelLimit,
    /// `[limits] wall` was reached, by a guest running code or stuck in a host call. Exit
    /// code 124.
    WallLimit,
    /// `[limits] output` was reached: stdout and stderr together (and an HTTP handler's
    /// response body) passed it. Exit code 120.
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
    /// How the run ended.
    pub outcome: Outcome,
    /// How long the guest ran, from just before its instance was made to its end (the audit
    /// `exit` record's `wall_ms`).
    pub wall: Duration,
    /// Fuel consumed, when `[limits] fuel` is set.
    pub fuel_used: Option<u64>,
    /// Largest linear memory + table footprint seen, in bytes.
    pub peak_memory: u64,
    /// The audit run id.
    pub run_id: String,
}

pub(super) fn classify(
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
        limiter.audit.record(Event::Limit(LimitReached {
            limit: "memory".into(),
            value: limiter.limit.into(),
            scope: Some("handles".into()),
            handles: Some(limiter.handles),
            reason: Some(format!(
                "the guest held {} resource handles ([limits] handles)",
                limiter.handles
            )),
        }));
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
