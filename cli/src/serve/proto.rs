//! The framing between `warden serve` and its workers, over the worker's stdin (requests) and
//! stdout (records and answers): each frame is a 4-byte big-endian length, one kind byte and
//! the payload. Requests and answers are JSON; an audit record is its JSON line as written.

use serde::{Deserialize, Serialize};

/// A request: run once (server → worker). JSON [`Request`].
pub const KIND_REQUEST: u8 = b'Q';
/// The worker is loaded and locked down (worker → server). JSON [`Ready`].
pub const KIND_READY: u8 = b'K';
/// The worker could not load its workload (worker → server). A UTF-8 message.
pub const KIND_FAILED: u8 = b'F';
/// One audit record, a JSON line with its newline (worker → server).
pub const KIND_AUDIT: u8 = b'A';
/// The run's answer (worker → server). JSON [`Answer`].
pub const KIND_ANSWER: u8 = b'R';

/// The largest request frame a worker accepts: the stdin body bound plus room for the
/// arguments (see `MAX_STDIN_BYTES` in serve.rs).
pub const MAX_REQUEST_FRAME: usize = 8 << 20;

/// One run a worker is asked for.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The run id the server chose: the worker's audit records and its answer carry it.
    pub run: String,
    /// The guest's arguments (the request's `arg=` values).
    pub args: Vec<String>,
    /// The run's stdin, base64; empty when the manifest does not grant stdin.
    pub stdin: String,
    /// An HTTP request for a `wasi:http/incoming-handler` component (`/http/NAME/…`), instead
    /// of a run of its command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpIn>,
    /// The run's single-file grants, staged by the server (the worker preopens these folders
    /// and neither stages nor copies back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staged: Vec<StagedIn>,
    /// Why the server could not stage them: the run fails as `warden run` would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_failed: Option<StagingFailed>,
    /// The manifest's `file:` secrets, read by the server for this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretIn>,
}

/// One folder of single-file grants the server staged for a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedIn {
    /// The guest folder.
    pub guest: String,
    /// The private host folder holding the copies.
    pub host: std::path::PathBuf,
}

/// A single-file grant the server could not stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagingFailed {
    /// The granted host file.
    pub path: std::path::PathBuf,
    /// Why.
    pub message: String,
}

/// One `file:` secret as the server read it for a run: its value, or why there is none.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretIn {
    /// The `[secrets.NAME]` name.
    pub name: String,
    /// The value, or the error message of the read.
    pub value: Result<String, String>,
}

impl std::fmt::Debug for SecretIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        f.debug_struct("SecretIn")
            .field("name", &self.name)
            .field("read", &self.value.is_ok())
            .finish_non_exhaustive()
    }
}

/// An HTTP request passed to a worker. Header values and the body are base64 (they are bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpIn {
    /// The request's method.
    pub method: String,
    /// The path and query the component is handed (`/http/NAME` taken off).
    pub path: String,
    /// The `Host` the client named.
    pub authority: String,
    /// The end-to-end headers (no `Host`, no hop-by-hop ones): names and base64 values.
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

/// A component's HTTP response, as [`HttpIn`]; `status` 0 and `message` set when there is none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HttpOut {
    /// The response's status; 0 when the component gave no response.
    pub status: u16,
    /// Names and base64 values, in the component's order.
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
    /// Why there is no response, when there is none.
    pub message: Option<String>,
}

/// What a worker reports once its workload is loaded and it is locked down.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    /// The module's SHA-256 (hex).
    pub sha256: String,
    /// `module` or `component`.
    pub kind: String,
    /// The lockdown the worker installed: `enforce` or `off`.
    pub seccomp: String,
    /// How many syscalls its allow list holds (none with the lockdown off).
    pub syscalls: Option<usize>,
    /// The workload is a component exporting `wasi:http/incoming-handler`.
    #[serde(default)]
    pub http: bool,
}

/// How a run ended, and what the guest wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// The [`Request`]'s run id.
    pub run: String,
    /// How the run ended, as the audit log's `exit` record names it (`exited`, `wall-limit`, …).
    pub outcome: String,
    /// The exit code `warden run` would have exited with.
    pub code: i32,
    /// The guest's stdout, as text (invalid UTF-8 replaced).
    pub stdout: String,
    /// The guest's stderr, as text (invalid UTF-8 replaced), or why the run could not start.
    pub stderr: String,
    /// The run's wall time, in milliseconds.
    pub wall_ms: u64,
    /// The answer to an [`HttpIn`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpOut>,
}

/// One frame, header and payload, ready to write in one call.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// Reads one frame (blocking); `Ok(None)` at end of stream before a header.
///
/// # Errors
/// A read error, a stream cut inside a frame, or a frame larger than `max`.
pub fn read_frame(
    r: &mut impl std::io::Read,
    max: usize,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (len, kind) = parse_header(&header, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// Reads frames from an async stream. [`FrameReader::next`] is cancel-safe: bytes read by a
/// call dropped before it returned stay in the buffer for the next call, so a caller may
/// `select!` between a worker's next frame and other events without losing its place.
pub struct FrameReader<R> {
    inner: R,
    buf: bytes::BytesMut,
    max: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> FrameReader<R> {
    /// Frames from `inner`, none larger than `max` bytes.
    pub fn new(inner: R, max: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: bytes::BytesMut::with_capacity(64 << 10),
            max,
        }
    }

    /// The next frame; `Ok(None)` at end of stream between frames.
    ///
    /// # Errors
    /// As [`read_frame`].
    pub async fn next(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(header) = self.buf.first_chunk::<5>() {
                let (len, kind) = parse_header(header, self.max)?;
                if self.buf.len() >= 5 + len {
                    let frame = self.buf.split_to(5 + len);
                    return Ok(Some((kind, frame[5..].to_vec())));
                }
                self.buf.reserve(5 + len - self.buf.len());
            } else if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 << 10);
            }
            // Cancel-safe: either it returns with the bytes appended, or it read nothing.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }
}

fn parse_header(header: &[u8; 5], max: usize) -> std::io::Result<(usize, u8)> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes, more than the {max} allowed"),
        ));
    }
    Ok((len, header[4]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut bytes = frame(KIND_AUDIT, b"{\"a\":1}\n");
        bytes.extend(frame(KIND_ANSWER, b""));
        let mut r = &bytes[..];
        assert_eq!(
            read_frame(&mut r, 100).unwrap(),
            Some((KIND_AUDIT, b"{\"a\":1}\n".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r, 100).unwrap(),
            Some((KIND_ANSWER, vec![]))
        );
        assert_eq!(read_frame(&mut r, 100).unwrap(), None);
        let big = frame(KIND_AUDIT, &[b'x'; 10]);
        assert!(read_frame(&mut &big[..], 9).is_err());
        assert!(read_frame(&mut &big[..3], 100).is_err());
    }

    #[test]
    fn a_frame_read_given_up_half_way_is_read_whole_by_the_next_call() {
        use tokio::io::AsyncWriteExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut w, r) = tokio::io::duplex(1 << 20);
            let mut frames = FrameReader::new(r, 1 << 20);
            let whole = frame(KIND_ANSWER, &[b'z'; 100_000]);
            w.write_all(&whole[..3]).await.unwrap();
            // Cut short with part of the header read, then with part of the payload.
            let t = std::time::Duration::from_millis(20);
            assert!(tokio::time::timeout(t, frames.next()).await.is_err());
            w.write_all(&whole[3..50_000]).await.unwrap();
            assert!(tokio::time::timeout(t, frames.next()).await.is_err());
            w.write_all(&whole[50_000..]).await.unwrap();
            w.write_all(&frame(KIND_AUDIT, b"x\n")).await.unwrap();
            let got = frames.next().await.unwrap().unwrap();
            assert_eq!((got.0, got.1.len()), (KIND_ANSWER, 100_000));
            assert_eq!(
                frames.next().await.unwrap(),
                Some((KIND_AUDIT, b"x\n".to_vec()))
            );
            // A stream cut inside a frame is an error; between frames, its end.
            w.write_all(&whole[..10]).await.unwrap();
            drop(w);
            assert!(frames.next().await.is_err());
            let (w, r) = tokio::io::duplex(64);
            drop(w);
            assert_eq!(FrameReader::new(r, 64).next().await.unwrap(), None);
            // Control: larger than allowed.
            let (mut w, r) = tokio::io::duplex(1 << 20);
            w.write_all(&whole).await.unwrap();
            assert!(FrameReader::new(r, 99_999).next().await.is_err());
        });
    }
}
