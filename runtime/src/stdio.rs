//! The guest's stdout and stderr: where they go, and the output budget they share.
//!
//! Both streams draw on one [`OutputBudget`]. A write that would pass the budget writes what
//! still fits, then stops the guest with [`OutputLimitReached`], which the run reports as the
//! `output-limit` outcome.

use bytes::Bytes;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Largest write accepted in one call, as wasmtime-wasi's own stdio does: it bounds the
/// buffer a guest can make the host allocate at once.
const MAX_WRITE: usize = 64 * 1024;

/// The trap raised when the guest's output passes `[limits] output`.
#[derive(Debug, thiserror::Error)]
#[error("output limit of {limit} bytes reached")]
pub struct OutputLimitReached {
    pub limit: u64,
}

/// Bytes of stdout + stderr a run may still write.
#[derive(Debug)]
pub struct OutputBudget {
    limit: u64,
    used: AtomicU64,
    reached: AtomicBool,
    /// Closed when the run is settled by ending the process: later writes are dropped.
    gate: crate::gate::Gate,
}

impl OutputBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(OutputBudget {
            limit,
            used: AtomicU64::new(0),
            reached: AtomicBool::new(false),
            gate: Default::default(),
        })
    }

    /// Takes up to `want` bytes; returns how many were granted.
    fn take(&self, want: usize) -> usize {
        let want = want as u64;
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let grant = want.min(self.limit.saturating_sub(used));
            match self.used.compare_exchange_weak(
                used,
                used + grant,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                // `grant <= want`, which came from a usize.
                Ok(_) => return usize::try_from(grant).unwrap_or(0),
                Err(now) => used = now,
            }
        }
    }

    /// Charges `n` bytes written elsewhere (a served component's response body); `false`, and
    /// the limit marked as reached, when they do not all fit.
    pub(crate) fn charge(&self, n: usize) -> bool {
        if self.take(n) < n {
            self.reached.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether a write was cut short by the limit.
    pub fn reached(&self) -> bool {
        self.reached.load(Ordering::Relaxed)
    }

    /// Bytes written so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// From now on nothing more is written to either stream (writes under way finish first,
    /// within [`CLOSE_WAIT`](crate::gate::CLOSE_WAIT)). Both streams write through at once
    /// (nothing is buffered in warden), so nothing is left to flush.
    pub(crate) fn close(&self) {
        self.gate.close();
    }
}

/// Where one output stream goes.
#[derive(Clone, Debug)]
pub enum Sink {
    /// warden's own stdout.
    Stdout,
    /// warden's own stderr.
    Stderr,
    /// Discarded (still counted against the budget).
    Null,
    /// Kept in memory for the embedding program.
    Capture(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::Stderr => crate::audit::write_guest_stderr(bytes),
            Sink::Null => Ok(()),
            Sink::Capture(buf) => {
                buf.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(bytes);
                Ok(())
            }
        }
    }
}

/// A guest output stream: a [`Sink`] metered by a shared [`OutputBudget`].
#[derive(Clone, Debug)]
pub struct LimitedOutput {
    sink: Sink,
    budget: Arc<OutputBudget>,
}

impl LimitedOutput {
    pub fn new(sink: Sink, budget: Arc<OutputBudget>) -> Self {
        LimitedOutput { sink, budget }
    }

    /// Writes what the budget allows; past it, reports [`OutputLimitReached`].
    fn write_metered(&self, bytes: &[u8]) -> Result<(), WriteError> {
        // Closed: the run was settled and the process is ending; the guest's bytes go nowhere.
        let Some(_pass) = self.budget.gate.enter() else {
            return Ok(());
        };
        let granted = self.budget.take(bytes.len());
        self.sink
            .write_all(&bytes[..granted])
            .map_err(WriteError::Io)?;
        if granted < bytes.len() {
            self.budget.reached.store(true, Ordering::Relaxed);
            return Err(WriteError::Limit(OutputLimitReached {
                limit: self.budget.limit,
            }));
        }
        Ok(())
    }
}

enum WriteError {
    Io(std::io::Error),
    Limit(OutputLimitReached),
}

impl IsTerminal for LimitedOutput {
    fn is_terminal(&self) -> bool {
        // The guest is told it writes to a pipe, so it never emits terminal control sequences
        // meant for a human's terminal (see docs/security.md, terminal output).
        false
    }
}

impl StdoutStream for LimitedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LimitedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match self.write_metered(&bytes) {
            Ok(()) => Ok(()),
            // The reader has gone (a closed pipe): the stream is closed, as WASI says, not a
            // failed operation; a guest can tell "nobody listens" from an I/O error.
            Err(WriteError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(StreamError::Closed)
            }
            Err(WriteError::Io(e)) => {
                Err(StreamError::LastOperationFailed(wasmtime::Error::new(e)))
            }
            Err(WriteError::Limit(l)) => Err(StreamError::Trap(wasmtime::Error::new(l))),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_WRITE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LimitedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LimitedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(match self.write_metered(buf) {
            Ok(()) => Ok(buf.len()),
            Err(WriteError::Io(e)) => Err(e),
            Err(WriteError::Limit(l)) => Err(std::io::Error::other(l)),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Largest read from warden's stdin in one call.
const MAX_READ: usize = 64 * 1024;

/// warden's own stdin, read synchronously on the guest's thread.
///
/// wasmtime-wasi's own stdin reads through a helper thread started on first use; a thread
/// started that late would need `clone` after the host is locked down, so warden reads
/// directly instead. A guest blocked here is still bounded by the wall-time watchdog.
#[derive(Clone, Copy, Debug, Default)]
pub struct InheritedStdin;

impl InheritedStdin {
    fn read_some(size: usize) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut buf = vec![0u8; size.min(MAX_READ)];
        let n = std::io::stdin().lock().read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl IsTerminal for InheritedStdin {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdin())
    }
}

impl wasmtime_wasi::cli::StdinStream for InheritedStdin {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::InputStream> {
        Box::new(*self)
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(*self)
    }
}

impl wasmtime_wasi::p2::InputStream for InheritedStdin {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        match Self::read_some(size) {
            Ok(b) if b.is_empty() => Err(StreamError::Closed),
            Ok(b) => Ok(b.into()),
            Err(e) => Err(StreamError::LastOperationFailed(wasmtime::Error::new(e))),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for InheritedStdin {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncRead for InheritedStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Self::read_some(buf.remaining()).map(|b| buf.put_slice(&b)))
    }
}
