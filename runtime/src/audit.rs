//! The audit log: one JSON object a line, flushed after every line.
//!
//! Every record carries `ts` (RFC 3339, UTC), `event`, `identity` (the identity's `id`) and `run`
//! (a unique id of this run). Flushing per line means a run stopped by a limit, a trap or a
//! signal loses nothing that was already decided.
//!
//! Secret values never reach the log: once a run's secrets are loaded, every string in every
//! record (targets, reasons, messages, whoever put the text there) passes the run's redactor
//! before the line is written ([`Audit::set_redactor`]).
//!
//! With `--audit -` the log shares warden's stderr with the guest's stderr. The two cannot mix:
//! [`AuditSink::to_framed_stderr`] writes records and guest output through one lock, the
//! guest's lines start with [`GUEST_LINE_PREFIX`] (so no guest line can look like a record,
//! which always starts with `{`), and a record never lands inside an unterminated guest line.

pub(crate) mod ocsf;
pub mod record;

pub use record::{
    Access, Decided, Decision, Event, Exit, Failure, FileUse, GrantUsage, LimitReached, Record,
    Start,
};
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// What starts each line of guest stderr when the audit log shares stderr (`--audit -`).
pub const GUEST_LINE_PREFIX: &[u8] = b"guest: ";

// Two facts of the log that its readers (`warden check --against`, `warden learn`) need: the
// reason of a first use of a clock or the random generator in a run that records allowed
// operations (`RunOptions::record_fs`), and the bound of the file operations one run records.
pub use crate::fs_audit::MAX_RECORDED_OPS;
pub use crate::observe::USED;

/// Removes secret values from text bound for the audit log.
pub trait Redact: Send + Sync {
    /// `text` with every secret value (or fragment of one the scan catches) replaced.
    fn redact_text(&self, text: &str) -> String;
}

/// warden's stderr when it carries both audit records and guest output: whether a guest
/// line is open (written without its newline yet), and the lock both writers take.
static FRAMED_STDERR: Mutex<bool> = Mutex::new(false);

/// Whether guest stderr must be framed (set once `--audit -` is chosen).
static STDERR_FRAMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes guest stderr bytes to warden's stderr; framed (each line prefixed, and
/// interleaving with records kept whole) when the audit log goes to stderr too.
///
/// # Errors
/// Writing to stderr failed.
pub fn write_guest_stderr(bytes: &[u8]) -> std::io::Result<()> {
    if !STDERR_FRAMED.load(std::sync::atomic::Ordering::Relaxed) {
        return std::io::stderr().lock().write_all(bytes);
    }
    // Same lock order as `FramedStderr`: the frame state, then stderr.
    let mut line_open = FRAMED_STDERR.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(bytes.len() + GUEST_LINE_PREFIX.len());
    for piece in bytes.split_inclusive(|b| *b == b'\n') {
        if !*line_open {
            out.extend_from_slice(GUEST_LINE_PREFIX);
        }
        out.extend_from_slice(piece);
        *line_open = piece.last() != Some(&b'\n');
    }
    std::io::stderr().lock().write_all(&out)
}

/// Ends the guest's unterminated stderr line, if framing is on and one is open, so that what
/// warden writes next to stderr starts a line of its own.
pub fn end_guest_line() {
    if !STDERR_FRAMED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut line_open = FRAMED_STDERR.lock().unwrap_or_else(|p| p.into_inner());
    if *line_open {
        let _ = std::io::stderr().lock().write_all(b"\n");
        *line_open = false;
    }
}

/// A writer for audit records on stderr that closes an open guest line first.
struct FramedStderr;

impl Write for FramedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut line_open = FRAMED_STDERR.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        if *line_open {
            // The guest's unterminated line ends here, so the record starts a line of its own.
            err.write_all(b"\n")?;
            *line_open = false;
        }
        err.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// What an embedder supplies to receive audit records: a file, a channel, its own logger.
///
/// `write_record` is called once per record, from whichever thread decided it (the run's own
/// thread, the HTTP broker's, the wall-time watchdog's), possibly from several runs at once;
/// it should not block for long, since the run waits for it. Records of one run arrive in the
/// order they were decided.
///
/// Implemented for `std::sync::mpsc::Sender<String>` and `tokio::sync::mpsc::UnboundedSender
/// <String>` (each record a `String`; a closed channel drops records silently), and for any
/// writer through [`AuditSink::to_writer`].
pub trait AuditWriter: Send + Sync {
    /// One record: a JSON object on one line, without the line's end.
    ///
    /// # Errors
    /// The record could not be kept; warden says so on its stderr (once per record) and the
    /// run goes on.
    fn write_record(&self, record: &str) -> std::io::Result<()>;
}

impl AuditWriter for std::sync::mpsc::Sender<String> {
    fn write_record(&self, record: &str) -> std::io::Result<()> {
        let _ = self.send(record.to_owned());
        Ok(())
    }
}

impl AuditWriter for tokio::sync::mpsc::UnboundedSender<String> {
    fn write_record(&self, record: &str) -> std::io::Result<()> {
        let _ = self.send(record.to_owned());
        Ok(())
    }
}

/// A writer as an [`AuditWriter`]: JSON Lines, flushed after each line.
struct LineWriter(Mutex<Box<dyn Write + Send>>);

impl AuditWriter for LineWriter {
    fn write_record(&self, record: &str) -> std::io::Result<()> {
        // A poisoned lock only means another thread panicked mid-write; the sink itself is
        // still usable, and losing audit records would be worse than a torn line.
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut line = Vec::with_capacity(record.len() + 1);
        line.extend_from_slice(record.as_bytes());
        line.push(b'\n');
        w.write_all(&line).and_then(|()| w.flush())
    }
}

/// How a sink encodes records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditFormat {
    /// warden's own record ([`Record`]), as `warden schema --audit` describes it; what
    /// `warden learn` and `warden check --against` read.
    #[default]
    Json,
    /// Each record as one OCSF event (docs/audit.md, "OCSF"), for a SIEM.
    Ocsf,
}

/// Where audit records go. Cloning shares the sink.
#[derive(Clone, Default)]
pub struct AuditSink {
    inner: Option<Arc<dyn AuditWriter>>,
    /// `None`: native records; `Some`: each one encoded as an OCSF event.
    ocsf: Option<Arc<ocsf::Encoder>>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("enabled", &self.inner.is_some())
            .field("format", &self.format())
            .finish()
    }
}

impl AuditSink {
    /// A sink that drops every record (no `--audit` given).
    pub fn disabled() -> Self {
        AuditSink::default()
    }

    /// A sink that writes JSON Lines to `w`, flushing after each line.
    pub fn to_writer(w: impl Write + Send + 'static) -> Self {
        Self::new(LineWriter(Mutex::new(Box::new(w))))
    }

    /// A sink that hands every record to `writer` (a channel, the embedder's logger).
    pub fn new(writer: impl AuditWriter + 'static) -> Self {
        AuditSink {
            inner: Some(Arc::new(writer)),
            ocsf: None,
        }
    }

    /// The same sink writing records in `format` (native JSON unless this is called).
    ///
    /// # Ambient Authority
    /// [`AuditFormat::Ocsf`] reads the host's name once, here, for the events' `device`
    /// (the `ocsf` module's encoder).
    #[must_use]
    pub fn with_format(mut self, format: AuditFormat) -> Self {
        self.ocsf = match format {
            AuditFormat::Json => None,
            AuditFormat::Ocsf => Some(Arc::new(ocsf::Encoder::new())),
        };
        self
    }

    /// How this sink encodes records.
    pub fn format(&self) -> AuditFormat {
        if self.ocsf.is_some() {
            AuditFormat::Ocsf
        } else {
            AuditFormat::Json
        }
    }

    /// Writes one native record (a JSON object, as [`Record`] serializes) in this sink's
    /// format: for a server that receives its workers' records already written.
    pub fn write_native(&self, record: &Value) {
        if self.inner.is_none() {
            return;
        }
        match &self.ocsf {
            None => self.write_record(&record.to_string()),
            Some(enc) => self.write_record(&enc.event_of_json(record).to_string()),
        }
    }

    /// A sink on warden's stderr that shares it with the guest's stderr without mixing: from
    /// now on guest stderr is framed (see the module doc).
    pub fn to_framed_stderr() -> Self {
        STDERR_FRAMED.store(true, std::sync::atomic::Ordering::Relaxed);
        Self::to_writer(FramedStderr)
    }

    /// Opens `path` for appending (created with mode 0600 if missing), never through a
    /// symbolic link, and only if it is a regular file (see
    /// [`crate::open_append_private`]).
    ///
    /// # Ambient Authority
    /// Opens a file of the host's filesystem by path.
    ///
    /// # Errors
    /// The file cannot be opened for appending, is a symbolic link, or is not a regular file.
    pub fn append_to_file(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self::to_writer(crate::open_append_private(path)?))
    }

    /// Whether records are kept at all.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn write_record(&self, record: &str) {
        let Some(inner) = &self.inner else { return };
        if let Err(e) = inner.write_record(record) {
            // The audit log is the only record of what happened: say so loudly, once per
            // failed line, rather than dropping it in silence.
            let _ = writeln!(std::io::stderr(), "warden: cannot write the audit log: {e}");
        }
    }
}

/// The audit log of one run: a sink plus the identity and run id stamped on every record.
#[derive(Clone)]
pub struct Audit {
    sink: AuditSink,
    identity: Arc<str>,
    run: Arc<str>,
    /// Set once the run's secrets are loaded; shared by every clone of this run's log.
    redactor: Arc<OnceLock<Arc<dyn Redact>>>,
    /// Closed by [`Audit::seal`]; shared by every clone.
    gate: Arc<crate::gate::Gate>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("sink", &self.sink)
            .field("identity", &self.identity)
            .field("run", &self.run)
            .field("redacting", &self.redactor.get().is_some())
            .finish()
    }
}

impl Audit {
    /// A log for one run of `identity` (the identity's `id`), with a fresh run id.
    pub fn new(sink: AuditSink, identity: &str) -> Self {
        Self::with_run_id(sink, identity, &Self::new_run_id())
    }

    /// A log for one run of `identity` with a run id chosen by the caller (so that records
    /// written outside the run, by a watchdog say, carry the same id).
    pub fn with_run_id(sink: AuditSink, identity: &str, run: &str) -> Self {
        Audit {
            sink,
            identity: identity.into(),
            run: run.into(),
            redactor: Arc::default(),
            gate: Arc::default(),
        }
    }

    /// Closes this log for every clone (records being written finish first), and returns a
    /// log of the same run that still writes: for the records that end a run settled from
    /// outside while its guest may still be running, so that they are its last.
    pub(crate) fn seal(&self) -> Audit {
        self.gate.close();
        Audit {
            gate: Arc::default(),
            ..self.clone()
        }
    }

    /// From now on every string in every record of this run (and of its clones) passes
    /// `redactor` before it is written. Set once, when the run's secrets are loaded; a second
    /// call is ignored.
    pub fn set_redactor(&self, redactor: Arc<dyn Redact>) {
        let _ = self.redactor.set(redactor);
    }

    /// A fresh, unique, time-ordered run id.
    pub fn new_run_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Whether records are kept: callers skip building costly records when they are not.
    pub fn is_enabled(&self) -> bool {
        self.sink.is_enabled()
    }

    /// This run's unique id.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The identity stamped on every record.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Writes one record: the fields every record carries, then `event`'s.
    pub fn record(&self, event: Event) {
        if !self.sink.is_enabled() {
            return;
        }
        let Some(_pass) = self.gate.enter() else {
            return;
        };
        // `event` first after `ts`, as people read a line: ts, event, identity, run, the rest.
        let Ok(Value::Object(mut fields)) = serde_json::to_value(&event) else {
            return;
        };
        let kind = fields.remove("event").unwrap_or(Value::Null);
        let mut obj = Map::new();
        obj.insert(
            "ts".into(),
            Value::String(
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
        );
        obj.insert("event".into(), kind);
        obj.insert("identity".into(), Value::String(self.identity.to_string()));
        obj.insert("run".into(), Value::String(self.run.to_string()));
        if let Some(r) = self.redactor.get() {
            for value in fields.values_mut() {
                redact_value(value, r.as_ref());
            }
        }
        obj.extend(fields);
        self.sink.write_native(&Value::Object(obj));
    }

    /// Records an allow/deny decision.
    pub fn decision(&self, decided: Decided) {
        self.record(Event::Decision(decided));
    }

    /// Records that a limit was reached.
    pub fn limit(&self, limit: &str, value: u64) {
        self.record(Event::Limit(LimitReached {
            limit: limit.to_owned(),
            value: value.into(),
            scope: None,
            handles: None,
            reason: None,
        }));
    }

    /// Records the end of the run (the one constructor of exit records is [`Exit`]).
    pub fn exit(&self, exit: Exit) {
        self.record(Event::Exit(exit));
    }

    /// Records an error of warden's (not the guest's), with the exit code it ends in, if any.
    pub fn error(&self, message: &str, code: Option<i32>) {
        self.record(Event::Error(Failure {
            message: message.to_owned(),
            code,
        }));
    }
}

/// Redacts every string inside `value`, in place.
fn redact_value(value: &mut Value, r: &dyn Redact) {
    match value {
        Value::String(s) => {
            let clean = r.redact_text(s);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, r)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_value(v, r)),
        _ => {}
    }
}
