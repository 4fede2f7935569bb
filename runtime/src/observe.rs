//! Whether a guest calls its clocks, its random generator and its stdin.
//!
//! A module that imports a clock function has not thereby used the clock: Rust's standard
//! library, for one, links clocks and random into every WASI program. So each granted clock,
//! the granted generator and an inherited stdin are wrapped in every run: their first use is
//! counted for the exit record's `usage` ([`crate::grant_use`]), and, when the run records
//! allowed operations ([`crate::RunOptions::record_fs`], `warden learn`), also written as one
//! `allow` decision with `op` `use` and the reason [`USED`] (`clock`/`wall`,
//! `clock`/`monotonic`, `random`/`secure`, `stdio`/`stdin`). Nothing else changes: the guest
//! gets the same host clock, generator and stdin as without the wrappers.
//!
//! Ungranted clocks and random are warden's frozen ones whatever happens, and are not wrapped.

use crate::audit::{Audit, Decided, Decision};
use crate::grant_use::{GrantCounters, Used};
use rand_core::TryRng;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, Rng, WasiCtxBuilder};

/// The reason of the `allow` decision written at a grant's first use.
pub const USED: &str = "used by the guest";

/// Counts the first use, and writes its decision when the run records them.
struct Once {
    done: AtomicBool,
    audit: Option<Audit>,
    counters: Arc<GrantCounters>,
    used: Used,
    capability: &'static str,
    target: &'static str,
}

impl Once {
    fn new(
        audit: Option<&Audit>,
        counters: &Arc<GrantCounters>,
        used: Used,
        capability: &'static str,
        target: &'static str,
    ) -> Once {
        Once {
            done: AtomicBool::new(false),
            audit: audit.cloned(),
            counters: counters.clone(),
            used,
            capability,
            target,
        }
    }

    fn note(&self) {
        // A load first: after the first use no call writes the shared line again.
        if self.done.load(Ordering::Relaxed) || self.done.swap(true, Ordering::Relaxed) {
            return;
        }
        self.counters.used(self.used);
        if let Some(audit) = &self.audit {
            audit.decision(Decided::new(
                self.capability,
                self.target,
                Decision::Allow,
                "use",
                USED,
            ));
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
/// own, wrapped so that their first use is counted (and recorded when `audit` is given). `wall`,
/// `monotonic` and `secure` say what is granted; what is not granted is left as the policy
/// configured it (frozen).
pub(crate) fn watch_calls(
    builder: &mut WasiCtxBuilder,
    audit: Option<&Audit>,
    counters: &Arc<GrantCounters>,
    wall: bool,
    monotonic: bool,
    secure: bool,
) {
    if wall {
        builder.wall_clock(Wall(
            wasmtime_wasi::clocks::wall_clock(),
            Once::new(audit, counters, Used::WallClock, "clock", "wall"),
        ));
    }
    if monotonic {
        builder.monotonic_clock(Monotonic(
            wasmtime_wasi::clocks::monotonic_clock(),
            Once::new(audit, counters, Used::MonotonicClock, "clock", "monotonic"),
        ));
    }
    if secure {
        builder.secure_random(Random(
            wasmtime_wasi::thread_rng(),
            Once::new(audit, counters, Used::Random, "random", "secure"),
        ));
    }
}

/// A run's stdin (warden's own, or bytes handed in), counting its first read (and recording
/// it as `stdio`/`stdin` when `audit` is given).
#[derive(Clone)]
pub(crate) struct Stdin<S> {
    inner: S,
    once: Arc<Once>,
}

/// `inner` as the stdin of a run, watched.
pub(crate) fn stdin<S>(inner: S, audit: Option<&Audit>, counters: &Arc<GrantCounters>) -> Stdin<S> {
    Stdin {
        inner,
        once: Arc::new(Once::new(audit, counters, Used::Stdin, "stdio", "stdin")),
    }
}

/// One of the stream halves of a watched stdin.
struct Noting<T> {
    inner: T,
    once: Arc<Once>,
}

impl<S: wasmtime_wasi::cli::IsTerminal> wasmtime_wasi::cli::IsTerminal for Stdin<S> {
    fn is_terminal(&self) -> bool {
        self.inner.is_terminal()
    }
}

impl<S: wasmtime_wasi::cli::StdinStream + Clone + 'static> wasmtime_wasi::cli::StdinStream
    for Stdin<S>
{
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::InputStream> {
        Box::new(Noting {
            inner: self.inner.p2_stream(),
            once: self.once.clone(),
        })
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(Noting {
            inner: Box::into_pin(self.inner.async_stream()),
            once: self.once.clone(),
        })
    }
}

impl wasmtime_wasi::p2::InputStream for Noting<Box<dyn wasmtime_wasi::p2::InputStream>> {
    fn read(&mut self, size: usize) -> wasmtime_wasi::p2::StreamResult<bytes::Bytes> {
        self.once.note();
        self.inner.read(size)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for Noting<Box<dyn wasmtime_wasi::p2::InputStream>> {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

impl tokio::io::AsyncRead for Noting<std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send + Sync>>> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.once.note();
        self.inner.as_mut().poll_read(cx, buf)
    }
}
