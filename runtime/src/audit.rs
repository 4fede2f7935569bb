//! The audit log: one JSON object a line, flushed after every line.
//!
//! Every record carries `ts` (RFC 3339, UTC), `event`, `identity` (the identity's `id`) and `run`
//! (a unique id of this run). Flushing per line means a run stopped by a limit, a trap or a
//! signal loses nothing that was already decided.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where audit records go. Cloning shares the sink.
#[derive(Clone, Default)]
pub struct AuditSink {
    inner: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl AuditSink {
    /// A sink that drops every record (no `--audit` given).
    pub fn disabled() -> Self {
        AuditSink { inner: None }
    }

    /// A sink that writes JSON Lines to `w`, flushing after each line.
    pub fn to_writer(w: impl Write + Send + 'static) -> Self {
        AuditSink {
            inner: Some(Arc::new(Mutex::new(Box::new(w)))),
        }
    }

    /// Opens `path` for appending (created with mode 0600 if missing).
    ///
    /// # Ambient Authority
    /// Opens a file of the host's filesystem by path.
    ///
    /// # Errors
    /// The file cannot be opened for appending.
    pub fn append_to_file(path: &std::path::Path) -> std::io::Result<Self> {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        Ok(Self::to_writer(opts.open(path)?))
    }

    /// Whether records are kept at all.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn write_line(&self, line: &[u8]) {
        let Some(inner) = &self.inner else { return };
        // A poisoned lock only means another thread panicked mid-write; the sink itself is
        // still usable, and losing audit records would be worse than a torn line.
        let mut w = inner.lock().unwrap_or_else(|p| p.into_inner());
        let result = w.write_all(line).and_then(|()| w.flush());
        if let Err(e) = result {
            // The audit log is the only record of what happened: say so loudly, once per
            // failed line, rather than dropping it in silence.
            eprintln!("warden: cannot write the audit log: {e}");
        }
    }
}

/// The audit log of one run: a sink plus the identity and run id stamped on every record.
#[derive(Clone, Debug)]
pub struct Audit {
    sink: AuditSink,
    identity: Arc<str>,
    run: Arc<str>,
}

/// The answer recorded in a `decision` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl Audit {
    /// A log for one run of `identity` (the identity's `id`), with a fresh run id.
    pub fn new(sink: AuditSink, identity: &str) -> Self {
        Audit {
            sink,
            identity: identity.into(),
            run: Self::new_run_id().into(),
        }
    }

    /// A log for one run of `identity` with a run id chosen by the caller (so that records
    /// written outside the run, by a watchdog say, carry the same id).
    pub fn with_run_id(sink: AuditSink, identity: &str, run: &str) -> Self {
        Audit {
            sink,
            identity: identity.into(),
            run: run.into(),
        }
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

    /// Writes one record: the common fields, then `fields` (an object).
    pub fn emit(&self, event: &str, fields: Value) {
        if !self.sink.is_enabled() {
            return;
        }
        let mut obj = Map::new();
        obj.insert(
            "ts".into(),
            Value::String(
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            ),
        );
        obj.insert("event".into(), Value::String(event.into()));
        obj.insert("identity".into(), Value::String(self.identity.to_string()));
        obj.insert("run".into(), Value::String(self.run.to_string()));
        if let Value::Object(extra) = fields {
            obj.extend(extra);
        }
        let mut line = Value::Object(obj).to_string().into_bytes();
        line.push(b'\n');
        self.sink.write_line(&line);
    }

    /// Records an allow/deny decision about `capability` on `target`.
    pub fn decision(&self, capability: &str, target: &str, decision: Decision, reason: &str) {
        self.emit(
            "decision",
            json!({
                "capability": capability,
                "target": target,
                "decision": decision.as_str(),
                "reason": reason,
            }),
        );
    }

    /// Records that a limit was reached.
    pub fn limit(&self, limit: &str, value: u64) {
        self.emit("limit", json!({ "limit": limit, "value": value }));
    }
}
