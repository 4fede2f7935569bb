//! The audit record as Rust types: what every writer builds and every reader parses.
//!
//! A record is one JSON object on one line: the fields every record carries ([`Record`]'s
//! `ts`, `identity`, `run`), the `event` that names its kind, and that kind's fields
//! ([`Event`]). Readers — `warden learn`, `warden check --against`, `warden serve` — decide
//! from the machine fields (`decision`, `op`, `grant`, `access`, the exit record's `usage`),
//! never from the wording of `reason` or `message`, which are for people.
//!
//! Compatibility: fields are only ever added. A reader ignores fields it does not know, and
//! an event it does not know reads as [`Event::Other`]; a field added later is optional when
//! read, so logs written by an earlier warden still read. `warden schema --audit` prints the
//! JSON Schema derived from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "warden audit record")]
pub struct Record {
    /// When the record was written: RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// The identity's `id` (`[identity] id`).
    pub identity: String,
    /// The run's unique id (a UUID v7): every record of one run carries the same.
    pub run: String,
    /// The kind of record and its fields.
    #[serde(flatten)]
    pub event: Event,
}

/// The kinds of record, told apart by the `event` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A run starts: what runs, under which grants and which lockdown.
    Start(Start),
    /// An allow or deny decision about one operation.
    Decision(Decided),
    /// A limit was reached (or, `recorded-operations`, warden's record of a run stopped).
    Limit(LimitReached),
    /// The run ended: how, and what it used.
    Exit(Exit),
    /// Something went wrong that is warden's, not the guest's.
    Error(Failure),
    /// An event this version does not know (written by a later warden). Not in the schema:
    /// no warden writes it.
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

/// `"event": "start"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Start {
    /// `[identity] name`.
    pub name: String,
    /// The module's path as given.
    pub module: String,
    /// The module's SHA-256, hex.
    pub sha256: String,
    /// `module` (a preview 1 core module) or `component`.
    pub kind: String,
    /// The manifest's path; absent for a run from flags alone.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Every effective grant, as `warden check --json` lists them by section.
    pub grants: Value,
    /// The lockdown installed: `mode`, and `syscalls` and `groups` when one was.
    pub seccomp: Value,
    /// How the compiled module was had: `hit`, `miss`, `off`, …
    #[serde(default)]
    pub cache: Option<String>,
    /// How guest code is interrupted: `epoch` or `none`.
    #[serde(default)]
    pub interruption: Option<String>,
}

/// The answer in a `decision` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The operation went ahead.
    Allow,
    /// The operation was refused; the guest got an error.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Whether a file operation reads or writes, as the grant's access sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Reads (or only looks at) what is there.
    Read,
    /// Changes something: writes, creates, truncates, renames, removes.
    Write,
}

/// `"event": "decision"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decided {
    /// The capability: `fs`, `env`, `clock`, `random`, `stdio`, `net`, `http`, `secret`,
    /// `import`.
    pub capability: String,
    /// What the operation was on: a guest path, a host name or address, `METHOD URL`, a
    /// secret's name, an import.
    pub target: String,
    /// `allow` or `deny`.
    pub decision: Decision,
    /// The operation, a machine word (see docs/json.md, "The audit record"): `grant` for a
    /// grant set up at the start of a run, a WASI function or method for a file operation
    /// (`path_open`, `open-at`), `lookup`, `connect`, `bind`, `send`, `request`, `inject`,
    /// `open`, `reveal`, `redact`, `exfiltration`, `copy-back`, `use`, `import`. Absent in
    /// logs written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// For a file operation: whether it reads or writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// For a file operation: true when it opened or read a folder as such.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folder: bool,
    /// The grant that decided it, as the manifest writes it: an `[[http]]` rule's URL, a
    /// `[network]` entry, a secret's name. Absent when no grant applies (most refusals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Why, for people. Its wording may change; never parse it.
    pub reason: String,
}

impl Decided {
    /// A decision on `target` of `capability`: the operation `op` (a machine word), and why,
    /// for people. Add the grant that decided it with [`Decided::by`] and a file operation's
    /// access with [`Decided::access`].
    pub fn new(
        capability: &str,
        target: &str,
        decision: Decision,
        op: &str,
        reason: impl Into<String>,
    ) -> Decided {
        Decided {
            capability: capability.to_owned(),
            target: target.to_owned(),
            decision,
            op: Some(op.to_owned()),
            access: None,
            folder: false,
            grant: None,
            reason: reason.into(),
        }
    }

    /// The grant that decided it, as the manifest writes it.
    #[must_use]
    pub fn by(mut self, grant: &str) -> Decided {
        self.grant = Some(grant.to_owned());
        self
    }

    /// Whether the file operation reads or writes.
    #[must_use]
    pub fn access(mut self, access: Access) -> Decided {
        self.access = Some(access);
        self
    }
}

/// `"event": "limit"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LimitReached {
    /// The limit: a `[limits]` key (`memory`, `fuel`, `wall`, `output`, `egress`,
    /// `http-requests`), or `recorded-operations` when a learning run's record of file
    /// operations stopped at its bound (the run goes on).
    pub limit: String,
    /// The limit's value, in its unit (bytes, milliseconds, a count).
    pub value: Value,
    /// Where a memory limit was met: `handles` or `host`; absent for the guest's memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// With `scope: handles`: `[limits] handles`, the number of handles the guest held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handles: Option<u64>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `"event": "exit"`: the last record of every run that started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Exit {
    /// `exited`, or the limit or event that ended the run: `memory-limit`, `fuel-limit`,
    /// `wall-limit`, `output-limit`, `egress-limit`, `http-requests-limit`, `trap`,
    /// `signal`, `worker-died`, `error`.
    pub outcome: String,
    /// warden's exit code for this outcome (the guest's own code when it exited).
    pub code: i32,
    /// The code the guest passed to exit, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_code: Option<i32>,
    /// The signal that stopped warden (`outcome: signal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// What happened, for people (a trap's message, why a run was stopped from outside).
    pub message: Option<String>,
    /// Wall time of the run.
    pub wall_ms: Option<u64>,
    /// Fuel consumed, when `[limits] fuel` is set and the run's end was seen from inside.
    pub fuel_used: Option<u64>,
    /// Peak linear memory of the guest in bytes, when the run's end was seen from inside.
    pub peak_memory: Option<u64>,
    /// Bytes the guest wrote to stdout and stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// Bytes sent through `wasi:http` and `[network]` sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_bytes: Option<u64>,
    /// What the run used of its grants, counted as it ran; absent when the run's end was
    /// seen from outside it (a watchdog, a signal, a worker that died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<GrantUsage>,
}

/// What one run used of its grants: counted cheaply while it ran (a counter per grant, no
/// record per operation), so that `warden check --against` can judge every grant from
/// ordinary runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GrantUsage {
    /// One entry per `[[files]]` grant, in the manifest's order.
    pub files: Vec<FileUse>,
    /// Whether the guest read its environment (`[env]`): the whole environment is handed
    /// over at once, so which names it then looked at is not knowable.
    pub env: bool,
    /// Whether the guest read the wall clock (`[clocks] wall`); false when not granted.
    pub wall_clock: bool,
    /// Whether the guest read the monotonic clock (`[clocks] monotonic`).
    pub monotonic_clock: bool,
    /// Whether the guest drew from the secure random generator (`[random] secure`).
    pub random: bool,
    /// Whether the guest read warden's stdin (`[stdio] stdin = "inherit"`).
    pub stdin: bool,
}

/// The operations on one `[[files]]` grant that succeeded. An open for reading counts as a
/// read, one that may write (write access, truncate, append) as a write; one that may create
/// counts as a create; unlinking a file or removing a folder as a delete. Operations through a
/// descriptor warden cannot place on a grant are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileUse {
    /// The grant's `guest` path.
    pub guest: String,
    /// Reads, stats and folder listings.
    pub reads: u64,
    /// Writes: opens for writing, renames, time changes.
    pub writes: u64,
    /// Opens that may create, new folders and links.
    pub creates: u64,
    /// Files unlinked and folders removed.
    pub deletes: u64,
}

impl Exit {
    /// The exit record of a run ended from outside its guest (a watchdog, a signal, a worker
    /// that died, a start that failed): no figure from inside the run is known.
    pub fn from_outside(outcome: &str, code: i32, wall_ms: Option<u64>, message: &str) -> Exit {
        Exit {
            outcome: outcome.to_owned(),
            code,
            message: Some(message.to_owned()),
            wall_ms,
            ..Exit::default()
        }
    }
}

/// `"event": "error"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The exit code warden ends with because of it, when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
}

/// The JSON Schema of one record (`warden schema --audit`), pretty-printed with a newline.
pub fn schema_text() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Record>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

impl Record {
    /// Parses one line of an audit log.
    ///
    /// # Errors
    /// The line is not JSON, or not a record of a kind this version knows with the fields
    /// that kind must have; an OCSF event (`--audit-format ocsf`) is told apart as such.
    pub fn parse(line: &str) -> Result<Record, String> {
        serde_json::from_str(line).map_err(|e| {
            if looks_like_ocsf(line) {
                "an OCSF event (written with --audit-format ocsf), not a native warden record; \
                 this reads logs written with --audit-format json (the default)"
                    .to_owned()
            } else {
                e.to_string()
            }
        })
    }
}

/// Whether `line` is an OCSF event (as `--audit-format ocsf` writes) rather than a native
/// record: readers of native logs use it to say so instead of a bare parse error. Here, with
/// the reader, not in `ocsf.rs`, which only writes events (and depends on this file).
pub(crate) fn looks_like_ocsf(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| {
        v.get("class_uid").is_some_and(Value::is_u64)
            && v.get("metadata").is_some_and(Value::is_object)
            && v.get("event").is_none()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_decision_reads_back_with_its_machine_fields_and_old_logs_still_read() {
        let line = r#"{"ts":"2026-12-07T12:00:00.000Z","event":"decision","identity":"i","run":"r","capability":"net","target":"api.example.test","decision":"allow","op":"lookup","grant":"api.example.test:443","reason":"lookup: fine","later":1}"#;
        let r = Record::parse(line).unwrap();
        let Event::Decision(d) = &r.event else {
            panic!("{r:?}")
        };
        assert_eq!(d.op.as_deref(), Some("lookup"));
        assert_eq!(d.grant.as_deref(), Some("api.example.test:443"));
        assert_eq!(d.decision, Decision::Allow);
        // Written before `op` existed: still a decision, without it.
        let old = line.replace(r#""op":"lookup","grant":"api.example.test:443","#, "");
        let Event::Decision(d) = Record::parse(&old).unwrap().event else {
            panic!()
        };
        assert_eq!((d.op, d.grant), (None, None));
        // An event a later warden may write reads as Other; a decision without its
        // decision does not read at all.
        let later = line.replace(r#""event":"decision""#, r#""event":"pause""#);
        assert_eq!(Record::parse(&later).unwrap().event, Event::Other);
        let broken = line.replace(r#""decision":"allow","#, "");
        assert!(Record::parse(&broken).is_err());
    }

    #[test]
    fn an_exit_record_round_trips() {
        let r = Record {
            ts: "t".into(),
            identity: "i".into(),
            run: "r".into(),
            event: Event::Exit(Exit::from_outside("wall-limit", 124, Some(30_000), "late")),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""event":"exit""#), "{line}");
        assert!(line.contains(r#""fuel_used":null"#), "{line}");
        assert_eq!(Record::parse(&line).unwrap(), r);
    }
}
