//! serve's front door: what one client, or many, can make the server hold and for how long.
//!
//! - **Request heads** must arrive whole within `--header-timeout` of their first byte; a
//!   client that trickles one (slowloris) is disconnected.
//! - **Idle keep-alive connections** (no request under way, nothing sent) are closed after
//!   `--idle-timeout`; so is a connection that sends nothing at all after it opens.
//! - **Connections** are capped at `--max-connections`: past it a new connection is accepted
//!   and closed at once (so the kernel's backlog never fills with them), and counted.
//! - **Request bodies** held in memory, across all connections, are capped at
//!   `--max-body-memory`: a body that would pass it is answered 503 as it arrives, before it
//!   is held.
//! - **Out of descriptors** (`EMFILE`, `ENFILE`) the accept loop backs off instead of
//!   spinning, says so once, and goes on when descriptors are free again.
//!
//! The clock of a connection is kept by [`Watched`], a wrapper of its socket that notes when
//! bytes move, and by the request service, which says when a request starts and is answered.
//! A watcher per connection checks the clock four times per shortest timeout.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default `--max-connections`: well under the usual 1,024-descriptor soft limit minus the
/// workers' pipes, so the server never runs out of descriptors through clients alone.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long the accept loop waits after running out of descriptors before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The front door's settings and shared counters.
#[derive(Debug)]
pub struct FrontDoor {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Bytes of request bodies that may be held at once, over all connections.
    body_memory: Arc<Semaphore>,
    pub max_body_memory: usize,
    open: AtomicUsize,
}

impl FrontDoor {
    pub fn new(
        header_timeout: Duration,
        idle_timeout: Duration,
        max_connections: usize,
        max_body_memory: usize,
    ) -> FrontDoor {
        FrontDoor {
            header_timeout,
            idle_timeout,
            max_connections,
            body_memory: Arc::new(Semaphore::new(max_body_memory.min(Semaphore::MAX_PERMITS))),
            max_body_memory,
            open: AtomicUsize::new(0),
        }
    }

    /// A place for one more connection, or `None` at the cap.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut now = self.open.load(Ordering::SeqCst);
        loop {
            if now >= self.max_connections {
                return None;
            }
            match self
                .open
                .compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Admitted(self.clone())),
                Err(n) => now = n,
            }
        }
    }

    /// Reads a request body of at most `limit` bytes, holding its bytes against the bound on
    /// body memory as they arrive. The permit goes with the bytes: dropped, it frees them.
    ///
    /// # Errors
    /// [`BodyError::TooLarge`] past `limit`, [`BodyError::Busy`] past the memory bound,
    /// [`BodyError::Read`] when the client's body breaks off.
    pub async fn read_body(
        &self,
        body: Incoming,
        limit: usize,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
        let mut body = std::pin::pin!(body);
        let mut data = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            if data.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            let n = u32::try_from(chunk.len()).map_err(|_| BodyError::TooLarge)?;
            let permit = self
                .body_memory
                .clone()
                .try_acquire_many_owned(n)
                .map_err(|_| BodyError::Busy)?;
            match &mut held {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            data.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(data), held))
    }
}

/// Why a request body was not read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Busy,
    Read(String),
}

/// One admitted connection's place; freed when dropped.
#[derive(Debug)]
pub struct Admitted(Arc<FrontDoor>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether an accept error means the process (or the system) is out of descriptors, which
/// only time cures: the loop then backs off.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Waits before the next accept after an error: [`ACCEPT_BACKOFF`] when out of
/// descriptors, a millisecond otherwise (a connection reset before it was accepted, say).
pub async fn back_off(e: &std::io::Error) {
    let pause = if out_of_descriptors(e) {
        ACCEPT_BACKOFF
    } else {
        Duration::from_millis(1)
    };
    tokio::time::sleep(pause).await;
}

/// One connection's clock, shared by its socket wrapper, its request service and its
/// watcher.
#[derive(Debug)]
pub struct Clock {
    state: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    /// Requests being handled (a head was read, no answer yet).
    in_service: usize,
    /// When the first byte of the next request head came, if one has while none is being
    /// handled.
    head_began: Option<Instant>,
    /// When bytes last moved either way.
    last_io: Instant,
}

impl Clock {
    pub fn new() -> Arc<Clock> {
        Arc::new(Clock {
            state: Mutex::new(ClockState {
                in_service: 0,
                head_began: None,
                last_io: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.lock();
        let now = Instant::now();
        s.last_io = now;
        if s.in_service == 0 && s.head_began.is_none() {
            s.head_began = Some(now);
        }
    }

    fn wrote(&self, n: usize) {
        if n > 0 {
            self.lock().last_io = Instant::now();
        }
    }

    /// A request's head was read: its handling starts.
    pub fn request_started(&self) -> Served<'_> {
        let mut s = self.lock();
        s.in_service += 1;
        s.head_began = None;
        Served(self)
    }

    /// Why the connection should be closed now, if it should.
    pub fn expired(&self, door: &FrontDoor) -> Option<&'static str> {
        let s = self.lock();
        if s.in_service > 0 {
            return None;
        }
        match s.head_began {
            Some(t) if t.elapsed() > door.header_timeout => Some("header timeout"),
            None if s.last_io.elapsed() > door.idle_timeout => Some("idle timeout"),
            _ => None,
        }
    }
}

/// A request being handled; its end (drop) makes the connection wait for the next head.
#[derive(Debug)]
pub struct Served<'a>(&'a Clock);

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_service = s.in_service.saturating_sub(1);
        s.last_io = Instant::now();
    }
}

/// How often a connection's watcher looks at its clock: a quarter of the shorter timeout.
pub fn watch_period(door: &FrontDoor) -> Duration {
    (door.header_timeout.min(door.idle_timeout) / 4).max(Duration::from_millis(10))
}

/// A socket whose reads and writes move its connection's [`Clock`].
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    clock: Arc<Clock>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, clock: Arc<Clock>) -> Self {
        Watched { inner, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            self.clock.read(buf.filled().len() - before);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.clock.wrote(*n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.clock.wrote(*n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn door(header_ms: u64, idle_ms: u64) -> FrontDoor {
        FrontDoor::new(
            Duration::from_millis(header_ms),
            Duration::from_millis(idle_ms),
            2,
            1024,
        )
    }

    #[test]
    fn a_head_begun_and_not_finished_expires_by_the_header_timeout_not_the_idle_one() {
        let d = door(20, 10_000);
        let c = Clock::new();
        c.read(3);
        assert_eq!(c.expired(&d), None);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.expired(&d), Some("header timeout"));
        // A head that became a request: handled, then idle again.
        let served = c.request_started();
        assert_eq!(c.expired(&d), None);
        drop(served);
        assert_eq!(c.expired(&d), None);
    }

    #[test]
    fn a_silent_connection_expires_by_the_idle_timeout() {
        let d = door(10_000, 20);
        let c = Clock::new();
        assert_eq!(c.expired(&d), None);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.expired(&d), Some("idle timeout"));
        // Never while a request is handled, however long.
        let _served = c.request_started();
        assert_eq!(c.expired(&d), None);
    }

    #[test]
    fn connections_past_the_cap_are_not_admitted_until_one_closes() {
        let d = Arc::new(door(10, 10));
        let a = d.admit().unwrap();
        let _b = d.admit().unwrap();
        assert!(d.admit().is_none());
        drop(a);
        assert!(d.admit().is_some());
    }
}
