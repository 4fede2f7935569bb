//! Whether a guest calls its clocks and its random generator (for `warden learn`).
//!
//! A module that imports a clock function has not thereby used the clock: Rust's standard
//! library, for one, links clocks and random into every WASI program. When a run records
//! allowed operations ([`crate::RunOptions::record_fs`]), each granted clock and the granted
//! generator are wrapped so that their first use writes one `allow` decision with the reason
//! [`USED`] (`clock`/`wall`, `clock`/`monotonic`, `random`/`secure`). Nothing else changes:
//! the guest gets the same host clock and the same generator as in any run.
//!
//! Calls are not observed in ordinary runs (the wrappers are not installed), and ungranted
//! clocks and random are warden's frozen ones whatever happens.

use crate::audit::{Audit, Decision};
use rand_core::TryRng;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, Rng, WasiCtxBuilder};

/// The reason of the `allow` decision written at a grant's first use.
pub const USED: &str = "used by the guest";

/// Writes the decision once, at the first use.
struct Once {
    done: AtomicBool,
    audit: Audit,
    capability: &'static str,
    target: &'static str,
}

impl Once {
    fn new(audit: &Audit, capability: &'static str, target: &'static str) -> Once {
        Once {
            done: AtomicBool::new(false),
            audit: audit.clone(),
            capability,
            target,
        }
    }

    fn note(&self) {
        if !self.done.swap(true, Ordering::Relaxed) {
            self.audit
                .decision(self.capability, self.target, Decision::Allow, USED);
        }
    }
}

struct Wall(Box<dyn HostWallClock + Send>, Once);

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        self.0.resolution()
    }
    fn now(&self) -> Duration {
        self.1.note();
        self.0.now()
    }
}

struct Monotonic(Box<dyn HostMonotonicClock + Send>, Once);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        self.0.resolution()
    }
    fn now(&self) -> u64 {
        self.1.note();
        self.0.now()
    }
}

struct Random(Box<dyn Rng + Send>, Once);

impl TryRng for Random {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.1.note();
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.1.note();
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.1.note();
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// Replaces the granted clocks and the granted secure generator of `builder` with the host's
/// own, wrapped so that their first use is recorded. `wall`, `monotonic` and `secure` say what
/// is granted; what is not granted is left as the policy configured it (frozen).
pub(crate) fn record_calls(
    builder: &mut WasiCtxBuilder,
    audit: &Audit,
    wall: bool,
    monotonic: bool,
    secure: bool,
) {
    if wall {
        builder.wall_clock(Wall(
            wasmtime_wasi::clocks::wall_clock(),
            Once::new(audit, "clock", "wall"),
        ));
    }
    if monotonic {
        builder.monotonic_clock(Monotonic(
            wasmtime_wasi::clocks::monotonic_clock(),
            Once::new(audit, "clock", "monotonic"),
        ));
    }
    if secure {
        builder.secure_random(Random(
            wasmtime_wasi::thread_rng(),
            Once::new(audit, "random", "secure"),
        ));
    }
}

/// warden's own stdin ([`crate::stdio::InheritedStdin`]), recording its first read
/// (`stdio`/`stdin`).
#[derive(Clone)]
pub(crate) struct Stdin {
    inner: crate::stdio::InheritedStdin,
    once: std::sync::Arc<Once>,
}

/// warden's stdin for a run that records its calls.
pub(crate) fn stdin(audit: &Audit) -> Stdin {
    Stdin {
        inner: crate::stdio::InheritedStdin,
        once: std::sync::Arc::new(Once::new(audit, "stdio", "stdin")),
    }
}

impl wasmtime_wasi::cli::IsTerminal for Stdin {
    fn is_terminal(&self) -> bool {
        self.inner.is_terminal()
    }
}

impl wasmtime_wasi::cli::StdinStream for Stdin {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

impl wasmtime_wasi::p2::InputStream for Stdin {
    fn read(&mut self, size: usize) -> wasmtime_wasi::p2::StreamResult<bytes::Bytes> {
        self.once.note();
        self.inner.read(size)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for Stdin {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncRead for Stdin {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.once.note();
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}
