//! The audit record as an OCSF event (`--audit-format ocsf`), for a SIEM.
//!
//! Each native [`Record`] becomes exactly one event of the Open Cybersecurity Schema
//! Framework, version [`VERSION`]; docs/audit.md has the table of which record becomes which
//! class and activity. Every event carries:
//!
//! - the identity as `actor.user` (`uid` the identity's id, `name` its `[identity] name`
//!   once the run's `start` record was seen, `type_id` 4, a service account);
//! - `metadata.product` naming warden and its version, `metadata.version` the OCSF version,
//!   `metadata.correlation_uid` the run id, `metadata.event_code` the native `event`, and
//!   `metadata.original_time` the native `ts`;
//! - `time` in epoch milliseconds, `severity_id`, `activity_id`, `category_uid`,
//!   `class_uid` and `type_uid` (= `class_uid` × 100 + `activity_id`), each with its caption;
//! - for a decision: `status_id` (Success / Failure), `action_id` (Allowed / Denied) and
//!   `disposition_id` (Allowed / Blocked), from `allow` / `deny`;
//! - the native record, whole, as `unmapped`, so nothing is lost in the mapping.
//!
//! Only attributes of the class (with the profiles the event names in `metadata.profiles`:
//! `host` for `actor` and `device`, `security_control` for `action_id` and
//! `disposition_id`) are written: tests/all/ocsf.rs validates every event of real runs
//! against the JSON Schema of its class generated from the published OCSF schema.

use super::record::{Decided, Decision, Event, Exit, Failure, LimitReached, Record, Start};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// The OCSF version events are written in, and validated against: 1.7.0 is the first
/// release whose `user.type_id` has `Service` (4), what a non-human identity is.
pub const VERSION: &str = "1.7.0";

/// How many runs' names the encoder remembers between their `start` and `exit` records. A
/// run whose `exit` never comes (warden killed) must not grow the map for ever; past the
/// bound a forgotten run's events carry the identity's id without its name, nothing else.
/// `warden serve` holds far fewer runs at once (queue × identities).
const MAX_OPEN_RUNS: usize = 4096;

/// The OCSF `category_uid`s used, with their captions.
const SYSTEM: (u32, &str) = (1, "System Activity");
const NETWORK: (u32, &str) = (4, "Network Activity");
const APPLICATION: (u32, &str) = (6, "Application Activity");

/// An OCSF class: its `class_uid`, caption and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// `class_uid`.
    pub uid: u32,
    /// `class_name`.
    pub name: &'static str,
    /// `category_uid` and `category_name`.
    category: (u32, &'static str),
}

/// File System Activity (1001): a decision on a file operation.
pub const FILE_SYSTEM_ACTIVITY: Class = Class {
    uid: 1001,
    name: "File System Activity",
    category: SYSTEM,
};
/// Network Activity (4001): a decision on a socket operation (`net`).
pub const NETWORK_ACTIVITY: Class = Class {
    uid: 4001,
    name: "Network Activity",
    category: NETWORK,
};
/// HTTP Activity (4002): a decision on an outgoing request (`http`).
pub const HTTP_ACTIVITY: Class = Class {
    uid: 4002,
    name: "HTTP Activity",
    category: NETWORK,
};
/// Application Lifecycle (6002): a run's `start` and `exit`.
pub const APPLICATION_LIFECYCLE: Class = Class {
    uid: 6002,
    name: "Application Lifecycle",
    category: APPLICATION,
};
/// API Activity (6003): a decision on another host interface (`secret`, `env`, `clock`,
/// `random`, `stdio`, `import`).
pub const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category: APPLICATION,
};
/// Application Error (6008): a `limit` reached and warden's own `error`.
pub const APPLICATION_ERROR: Class = Class {
    uid: 6008,
    name: "Application Error",
    category: APPLICATION,
};

/// The class a decision on `capability` is written as.
pub fn class_of_capability(capability: &str) -> Class {
    match capability {
        "fs" => FILE_SYSTEM_ACTIVITY,
        "net" => NETWORK_ACTIVITY,
        "http" => HTTP_ACTIVITY,
        _ => API_ACTIVITY,
    }
}

/// The run facts later records lack: the workload's name, module and hash, from `start`.
#[derive(Debug, Clone)]
struct RunInfo {
    name: String,
    module: String,
    sha256: String,
}

/// Turns native records into OCSF events. One encoder serves every run of a sink; it keeps
/// each open run's `start` facts (up to [`MAX_OPEN_RUNS`]) so that its later events name the
/// identity and the application.
#[derive(Debug)]
pub struct Encoder {
    host: String,
    runs: Mutex<HashMap<String, RunInfo>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder whose events name this machine as their `device`.
    ///
    /// # Ambient Authority
    /// Reads the host's name from `/proc/sys/kernel/hostname` (once, here: a locked-down
    /// run never reads it); `localhost` when it cannot.
    pub fn new() -> Encoder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Encoder::on_host(&host)
    }

    /// An encoder whose events name `host` as their `device`.
    pub fn on_host(host: &str) -> Encoder {
        Encoder {
            host: host.to_owned(),
            runs: Mutex::default(),
        }
    }

    /// The OCSF event of a native record given as JSON: [`Encoder::event`] of the record,
    /// or, when `native` is not one (never, for what warden writes), an Application Error
    /// event that keeps it whole in `unmapped`.
    pub fn event_of_json(&self, native: &Value) -> Value {
        match serde_json::from_value::<Record>(native.clone()) {
            Ok(r) => self.event(&r),
            Err(e) => {
                let mut ev = self.base(
                    APPLICATION_ERROR,
                    (1, "General Error"),
                    (3, "Medium"),
                    native.get("ts").and_then(Value::as_str).unwrap_or(""),
                    native.get("run").and_then(Value::as_str).unwrap_or(""),
                    native.get("event").and_then(Value::as_str).unwrap_or(""),
                );
                let identity = native.get("identity").and_then(Value::as_str).unwrap_or("");
                ev.insert("actor".into(), actor(identity, None));
                ev.insert("device".into(), self.device());
                ev.insert("message".into(), format!("not a warden record: {e}").into());
                ev.insert("unmapped".into(), native.clone());
                Value::Object(ev)
            }
        }
    }

    /// The OCSF event of one native record.
    pub fn event(&self, record: &Record) -> Value {
        let info = self.remember(record);
        let name = info.as_ref().map(|i| i.name.as_str());
        let mut ev = match &record.event {
            Event::Start(s) => self.start(record, s),
            Event::Decision(d) => self.decision(record, d),
            Event::Limit(l) => self.limit(record, l),
            Event::Exit(x) => self.exit(record, x, info.as_ref()),
            Event::Error(f) => self.failure(record, f),
            Event::Other => self.other(record),
        };
        ev.insert("actor".into(), actor(&record.identity, name));
        ev.insert("device".into(), self.device());
        ev.insert(
            "unmapped".into(),
            serde_json::to_value(record).unwrap_or(Value::Null),
        );
        Value::Object(ev)
    }

    /// Keeps a `start` record's facts, forgets them at `exit`; returns the run's facts.
    fn remember(&self, record: &Record) -> Option<RunInfo> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        match &record.event {
            Event::Start(s) => {
                if runs.len() >= MAX_OPEN_RUNS
                    && !runs.contains_key(&record.run)
                    && let Some(k) = runs.keys().next().cloned()
                {
                    runs.remove(&k);
                }
                let info = RunInfo {
                    name: s.name.clone(),
                    module: s.module.clone(),
                    sha256: s.sha256.clone(),
                };
                runs.insert(record.run.clone(), info.clone());
                Some(info)
            }
            Event::Exit(_) => runs.remove(&record.run),
            _ => runs.get(&record.run).cloned(),
        }
    }

    fn device(&self) -> Value {
        json!({ "hostname": self.host, "type_id": 0, "type": "Unknown" })
    }

    /// The attributes every event has.
    fn base(
        &self,
        class: Class,
        activity: (u32, &str),
        severity: (u32, &str),
        ts: &str,
        run: &str,
        event_code: &str,
    ) -> Map<String, Value> {
        let time = humantime::parse_rfc3339_weak(ts)
            .unwrap_or_else(|_| std::time::SystemTime::now())
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut metadata = json!({
            "version": VERSION,
            "product": {
                "name": "warden",
                "vendor_name": "warden",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "profiles": ["host"],
            "event_code": event_code,
            "original_time": ts,
            "log_name": "audit",
        });
        if !run.is_empty() {
            metadata["correlation_uid"] = run.into();
        }
        let (activity_id, activity_name) = activity;
        let mut ev = Map::new();
        ev.insert("class_uid".into(), class.uid.into());
        ev.insert("class_name".into(), class.name.into());
        ev.insert("category_uid".into(), class.category.0.into());
        ev.insert("category_name".into(), class.category.1.into());
        ev.insert("activity_id".into(), activity_id.into());
        ev.insert("activity_name".into(), activity_name.into());
        ev.insert(
            "type_uid".into(),
            (u64::from(class.uid) * 100 + u64::from(activity_id)).into(),
        );
        ev.insert(
            "type_name".into(),
            format!("{}: {activity_name}", class.name).into(),
        );
        ev.insert("severity_id".into(), severity.0.into());
        ev.insert("severity".into(), severity.1.into());
        ev.insert("time".into(), time.into());
        ev.insert("metadata".into(), metadata);
        ev
    }

    fn base_of(
        &self,
        record: &Record,
        class: Class,
        activity: (u32, &str),
        severity: (u32, &str),
    ) -> Map<String, Value> {
        self.base(
            class,
            activity,
            severity,
            &record.ts,
            &record.run,
            event_name(&record.event),
        )
    }

    fn start(&self, record: &Record, s: &Start) -> Map<String, Value> {
        let mut ev = self.base_of(
            record,
            APPLICATION_LIFECYCLE,
            (3, "Start"),
            (1, "Informational"),
        );
        ev.insert(
            "app".into(),
            json!({ "name": s.name, "path": s.module, "uid": s.sha256 }),
        );
        set_status(&mut ev, Status::Success);
        ev.insert(
            "message".into(),
            format!("{} started ({})", s.name, s.module).into(),
        );
        ev
    }

    fn exit(&self, record: &Record, x: &Exit, info: Option<&RunInfo>) -> Map<String, Value> {
        let (status, severity) = match x.outcome.as_str() {
            "exited" => (Status::Success, (1, "Informational")),
            o if o.ends_with("-limit") => (Status::Failure, (2, "Low")),
            _ => (Status::Failure, (3, "Medium")),
        };
        let mut ev = self.base_of(record, APPLICATION_LIFECYCLE, (4, "Stop"), severity);
        // The exit record itself does not name the application; its run's `start` did.
        let app = match info {
            Some(i) => json!({ "name": i.name, "path": i.module, "uid": i.sha256 }),
            None => json!({ "name": record.identity }),
        };
        ev.insert("app".into(), app);
        set_status(&mut ev, status);
        ev.insert("status_code".into(), x.code.to_string().into());
        ev.insert("status_detail".into(), x.outcome.clone().into());
        if let Some(ms) = x.wall_ms {
            ev.insert("duration".into(), ms.into());
        }
        let message = match &x.message {
            Some(m) => format!("{} (code {}): {m}", x.outcome, x.code),
            None => format!("{} (code {})", x.outcome, x.code),
        };
        ev.insert("message".into(), message.into());
        ev
    }

    fn decision(&self, record: &Record, d: &Decided) -> Map<String, Value> {
        let class = class_of_capability(&d.capability);
        let op = d.op.as_deref().unwrap_or("unknown");
        let activity = match class.uid {
            1001 => file_activity(op, d),
            4001 => network_activity(op, d.decision),
            4002 => http_activity(&d.target),
            _ => api_activity(op),
        };
        let severity = match (d.decision, op) {
            (Decision::Allow, _) => (1, "Informational"),
            // A secret on its way out is the one refusal a SIEM should page about.
            (Decision::Deny, "exfiltration") => (4, "High"),
            (Decision::Deny, _) => (2, "Low"),
        };
        let mut ev = self.base_of(record, class, activity, severity);
        if let Some(Value::Array(p)) = ev.get_mut("metadata").and_then(|m| m.get_mut("profiles")) {
            p.push("security_control".into());
        }
        match class.uid {
            1001 => {
                let (type_id, type_name) = if d.folder {
                    (2, "Folder")
                } else {
                    (0, "Unknown")
                };
                ev.insert(
                    "file".into(),
                    json!({
                        "name": base_name(&d.target),
                        "path": d.target,
                        "type_id": type_id,
                        "type": type_name,
                    }),
                );
            }
            4001 => {
                // A socket's own address (bind, listen, accept) is its source; what it
                // reaches (lookup, connect, send) its destination.
                let side = match op {
                    "bind" | "listen" | "accept" => "src_endpoint",
                    _ => "dst_endpoint",
                };
                ev.insert(side.into(), endpoint(&d.target));
            }
            4002 => {
                let (method, url) = match d.target.split_once(' ') {
                    Some((m, u)) => (Some(m), u),
                    None => (None, d.target.as_str()),
                };
                let mut req = json!({ "url": { "url_string": url } });
                if let Some(m) = method {
                    req["http_method"] = m.into();
                }
                ev.insert("http_request".into(), req);
            }
            _ => {
                ev.insert(
                    "api".into(),
                    json!({ "operation": op, "service": { "name": d.capability } }),
                );
                ev.insert(
                    "resources".into(),
                    json!([{ "name": d.target, "type": d.capability }]),
                );
                // The caller is the guest, on this machine.
                ev.insert("src_endpoint".into(), json!({ "hostname": self.host }));
            }
        }
        let allowed = d.decision == Decision::Allow;
        set_status(
            &mut ev,
            if allowed {
                Status::Success
            } else {
                Status::Failure
            },
        );
        set_control(&mut ev, allowed);
        ev.insert("status_detail".into(), d.reason.clone().into());
        ev.insert("message".into(), d.reason.clone().into());
        ev
    }

    fn limit(&self, record: &Record, l: &LimitReached) -> Map<String, Value> {
        // The recording bound of `warden learn` stops a record, not the run.
        let bookkeeping = l.limit == "recorded-operations";
        let severity = if bookkeeping {
            (1, "Informational")
        } else {
            (2, "Low")
        };
        let mut ev = self.base_of(record, APPLICATION_ERROR, (99, "Limit Reached"), severity);
        let value = match &l.value {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let message = match &l.reason {
            Some(r) => format!("limit {} = {value} reached: {r}", l.limit),
            None => format!("limit {} = {value} reached", l.limit),
        };
        ev.insert("message".into(), message.into());
        ev.insert("status_detail".into(), l.limit.clone().into());
        if !bookkeeping {
            if let Some(Value::Array(p)) =
                ev.get_mut("metadata").and_then(|m| m.get_mut("profiles"))
            {
                p.push("security_control".into());
            }
            set_status(&mut ev, Status::Failure);
            set_control(&mut ev, false);
        }
        ev
    }

    fn failure(&self, record: &Record, f: &Failure) -> Map<String, Value> {
        let mut ev = self.base_of(
            record,
            APPLICATION_ERROR,
            (1, "General Error"),
            (3, "Medium"),
        );
        ev.insert("message".into(), f.message.clone().into());
        set_status(&mut ev, Status::Failure);
        if let Some(c) = f.code {
            ev.insert("status_code".into(), c.to_string().into());
        }
        ev
    }

    fn other(&self, record: &Record) -> Map<String, Value> {
        let mut ev = self.base_of(
            record,
            APPLICATION_ERROR,
            (99, "Other"),
            (1, "Informational"),
        );
        ev.insert(
            "message".into(),
            "a record of a kind this warden does not know".into(),
        );
        ev
    }
}

/// The native `event` word of a record.
fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Start(_) => "start",
        Event::Decision(_) => "decision",
        Event::Limit(_) => "limit",
        Event::Exit(_) => "exit",
        Event::Error(_) => "error",
        Event::Other => "other",
    }
}

/// The identity as the OCSF actor: a service account.
fn actor(identity: &str, name: Option<&str>) -> Value {
    let mut user = json!({ "uid": identity, "type_id": 4, "type": "Service" });
    if let Some(n) = name {
        user["name"] = n.into();
    }
    json!({ "user": user })
}

#[derive(Clone, Copy)]
enum Status {
    Success,
    Failure,
}

fn set_status(ev: &mut Map<String, Value>, s: Status) {
    let (id, name) = match s {
        Status::Success => (1, "Success"),
        Status::Failure => (2, "Failure"),
    };
    ev.insert("status_id".into(), id.into());
    ev.insert("status".into(), name.into());
}

/// `action_id` and `disposition_id` (the `security_control` profile).
fn set_control(ev: &mut Map<String, Value>, allowed: bool) {
    let (action, disposition) = if allowed {
        ((1, "Allowed"), (1, "Allowed"))
    } else {
        ((2, "Denied"), (2, "Blocked"))
    };
    ev.insert("action_id".into(), action.0.into());
    ev.insert("action".into(), action.1.into());
    ev.insert("disposition_id".into(), disposition.0.into());
    ev.insert("disposition".into(), disposition.1.into());
}

/// The File System Activity of an operation (the WASI function or method in `op`).
fn file_activity(op: &str, d: &Decided) -> (u32, &'static str) {
    match op {
        "path_open" | "open-at" | "open" => (14, "Open"),
        "path_unlink_file" | "unlink-file-at" | "path_remove_directory" | "remove-directory-at" => {
            (4, "Delete")
        }
        "path_rename" | "rename-at" => (5, "Rename"),
        "path_create_directory"
        | "create-directory-at"
        | "path_symlink"
        | "symlink-at"
        | "path_link"
        | "link-at" => (1, "Create"),
        "path_filestat_get" | "stat-at" | "stat" | "fd_filestat_get" | "metadata-hash-at" => {
            (8, "Get Attributes")
        }
        "path_filestat_set_times" | "set-times-at" | "set-times" | "fd_filestat_set_times" => {
            (6, "Set Attributes")
        }
        "fd_readdir" | "read-directory" | "path_readlink" | "readlink-at" => (2, "Read"),
        "copy-back" => (3, "Update"),
        "grant" => (99, "Grant"),
        _ => match d.access {
            Some(super::record::Access::Write) => (3, "Update"),
            Some(super::record::Access::Read) => (2, "Read"),
            None => (99, "Other"),
        },
    }
}

/// The Network Activity of a socket operation; a refused connection is `Refuse`.
fn network_activity(op: &str, decision: Decision) -> (u32, &'static str) {
    match (op, decision) {
        ("connect" | "accept", Decision::Allow) => (1, "Open"),
        ("connect" | "accept", Decision::Deny) => (5, "Refuse"),
        ("listen", _) => (7, "Listen"),
        ("send" | "receive" | "exfiltration", _) => (6, "Traffic"),
        ("lookup", _) => (99, "Lookup"),
        ("bind", _) => (99, "Bind"),
        ("grant", _) => (99, "Grant"),
        _ => (99, "Other"),
    }
}

/// The HTTP Activity of a request, from its method (`METHOD URL`).
fn http_activity(target: &str) -> (u32, &'static str) {
    match target.split_once(' ').map(|(m, _)| m) {
        Some("CONNECT") => (1, "Connect"),
        Some("DELETE") => (2, "Delete"),
        Some("GET") => (3, "Get"),
        Some("HEAD") => (4, "Head"),
        Some("OPTIONS") => (5, "Options"),
        Some("POST") => (6, "Post"),
        Some("PUT") => (7, "Put"),
        Some("TRACE") => (8, "Trace"),
        Some("PATCH") => (9, "Patch"),
        _ => (99, "Other"),
    }
}

/// The API Activity of an operation on a host interface.
fn api_activity(op: &str) -> (u32, &'static str) {
    match op {
        "open" | "reveal" | "inject" | "use" => (2, "Read"),
        "redact" => (3, "Update"),
        _ => (99, "Other"),
    }
}

/// The last component of a guest path (`/` for the root).
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => name,
        _ if trimmed.is_empty() => "/",
        _ => trimmed,
    }
}

/// A `[network]` target (`host:port`, `[v6]:port`, `address`, `host`) as an OCSF
/// network endpoint.
fn endpoint(target: &str) -> Value {
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                // `::1` alone is an address, not `:` port 1.
                Ok(port) if !h.ends_with(':') && (h.starts_with('[') || !h.contains(':')) => {
                    (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
                }
                _ => (target, None),
            }
        }
        _ => (target, None),
    };
    let mut ep = if host.parse::<std::net::IpAddr>().is_ok() {
        json!({ "ip": host })
    } else {
        json!({ "hostname": host })
    };
    if let Some(p) = port {
        ep["port"] = p.into();
    }
    ep
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::record::{Access, looks_like_ocsf};

    fn record(event: Event) -> Record {
        Record {
            ts: "2026-12-07T12:00:00.250Z".into(),
            identity: "spiffe://test.example/nhi".into(),
            run: "run-1".into(),
            event,
        }
    }

    fn decided(cap: &str, target: &str, decision: Decision, op: &str) -> Value {
        Encoder::on_host("h").event(&record(Event::Decision(Decided::new(
            cap, target, decision, op, "because",
        ))))
    }

    fn assert_common(ev: &Value, class: Class) {
        assert_eq!(ev["class_uid"], class.uid, "{ev}");
        assert_eq!(ev["class_name"], class.name, "{ev}");
        assert_eq!(ev["category_uid"], class.category.0, "{ev}");
        let activity = ev["activity_id"].as_u64().unwrap();
        assert_eq!(
            ev["type_uid"],
            u64::from(class.uid) * 100 + activity,
            "{ev}"
        );
        assert_eq!(ev["time"], 1_796_644_800_250_u64, "{ev}");
        assert_eq!(ev["metadata"]["version"], VERSION);
        assert_eq!(ev["metadata"]["product"]["name"], "warden");
        assert_eq!(
            ev["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(ev["metadata"]["correlation_uid"], "run-1");
        assert_eq!(ev["actor"]["user"]["uid"], "spiffe://test.example/nhi");
        assert_eq!(ev["actor"]["user"]["type_id"], 4);
        assert_eq!(ev["unmapped"]["identity"], "spiffe://test.example/nhi");
        assert_eq!(ev["unmapped"]["run"], "run-1");
    }

    fn assert_allowed(ev: &Value) {
        assert_eq!(
            (
                &ev["status_id"],
                &ev["status"],
                &ev["action_id"],
                &ev["disposition_id"],
                &ev["disposition"],
                &ev["severity_id"],
            ),
            (
                &json!(1),
                &json!("Success"),
                &json!(1),
                &json!(1),
                &json!("Allowed"),
                &json!(1)
            ),
            "{ev}"
        );
        assert!(
            ev["metadata"]["profiles"]
                .as_array()
                .unwrap()
                .contains(&json!("security_control"))
        );
    }

    fn assert_blocked(ev: &Value) {
        assert_eq!(
            (
                &ev["status_id"],
                &ev["status"],
                &ev["action_id"],
                &ev["disposition_id"],
                &ev["disposition"],
            ),
            (
                &json!(2),
                &json!("Failure"),
                &json!(2),
                &json!(2),
                &json!("Blocked")
            ),
            "{ev}"
        );
        assert!(ev["severity_id"].as_u64().unwrap() >= 2, "{ev}");
    }

    #[test]
    fn ocsf_a_file_decision_is_file_system_activity() {
        let mut d = Decided::new("fs", "/data/a.txt", Decision::Allow, "path_open", "ok")
            .access(Access::Read);
        let ev = Encoder::on_host("h").event(&record(Event::Decision(d.clone())));
        assert_common(&ev, FILE_SYSTEM_ACTIVITY);
        assert_allowed(&ev);
        assert_eq!(ev["activity_id"], 14, "{ev}");
        assert_eq!(ev["file"]["name"], "a.txt");
        assert_eq!(ev["file"]["path"], "/data/a.txt");
        assert_eq!(ev["device"]["hostname"], "h");
        assert_eq!(ev["unmapped"]["access"], "read");
        d.decision = Decision::Deny;
        d.op = Some("path_unlink_file".into());
        let ev = Encoder::on_host("h").event(&record(Event::Decision(d)));
        assert_common(&ev, FILE_SYSTEM_ACTIVITY);
        assert_blocked(&ev);
        assert_eq!(
            (&ev["activity_id"], &ev["type_uid"]),
            (&json!(4), &json!(100_104))
        );
    }

    #[test]
    fn ocsf_a_network_decision_is_network_activity_and_a_refused_connect_is_refuse() {
        let ev = decided("net", "api.example.test:443", Decision::Allow, "connect");
        assert_common(&ev, NETWORK_ACTIVITY);
        assert_allowed(&ev);
        assert_eq!(ev["activity_id"], 1);
        assert_eq!(
            ev["dst_endpoint"],
            json!({"hostname": "api.example.test", "port": 443})
        );
        let ev = decided("net", "[::1]:8080", Decision::Deny, "connect");
        assert_common(&ev, NETWORK_ACTIVITY);
        assert_blocked(&ev);
        assert_eq!(ev["activity_id"], 5);
        assert_eq!(ev["dst_endpoint"], json!({"ip": "::1", "port": 8080}));
        let ev = decided("net", "127.0.0.1:0", Decision::Allow, "bind");
        assert_eq!(ev["src_endpoint"], json!({"ip": "127.0.0.1", "port": 0}));
        assert_eq!(endpoint("::1"), json!({"ip": "::1"}));
        assert_eq!(endpoint("db"), json!({"hostname": "db"}));
    }

    #[test]
    fn ocsf_an_http_decision_is_http_activity_by_method() {
        let ev = decided(
            "http",
            "POST https://api.example.test/v1/x",
            Decision::Deny,
            "request",
        );
        assert_common(&ev, HTTP_ACTIVITY);
        assert_blocked(&ev);
        assert_eq!(ev["activity_id"], 6);
        assert_eq!(ev["http_request"]["http_method"], "POST");
        assert_eq!(
            ev["http_request"]["url"]["url_string"],
            "https://api.example.test/v1/x"
        );
        let ev = decided("http", "GET https://a.test/", Decision::Allow, "request");
        assert_allowed(&ev);
        assert_eq!(ev["type_uid"], 400_203);
    }

    #[test]
    fn ocsf_other_capabilities_are_api_activity_and_exfiltration_is_high() {
        for cap in ["secret", "env", "clock", "random", "stdio", "import"] {
            let ev = decided(cap, "T", Decision::Allow, "grant");
            assert_common(&ev, API_ACTIVITY);
            assert_allowed(&ev);
            assert_eq!(ev["api"]["operation"], "grant");
            assert_eq!(ev["api"]["service"]["name"], cap);
            assert_eq!(ev["resources"][0]["name"], "T");
        }
        let ev = decided("secret", "TOKEN", Decision::Deny, "exfiltration");
        assert_blocked(&ev);
        assert_eq!(ev["severity_id"], 4);
        let ev = decided("secret", "TOKEN", Decision::Allow, "reveal");
        assert_eq!(ev["activity_id"], 2);
    }

    #[test]
    fn ocsf_start_and_exit_are_application_lifecycle_naming_the_identity() {
        let enc = Encoder::on_host("h");
        let start = enc.event(&record(Event::Start(Start {
            name: "test-nhi".into(),
            module: "m.wasm".into(),
            sha256: "ab".into(),
            kind: "module".into(),
            manifest: None,
            grants: json!({}),
            seccomp: json!({"mode": "off"}),
            cache: None,
            interruption: None,
        })));
        assert_common(&start, APPLICATION_LIFECYCLE);
        assert_eq!(
            (&start["activity_id"], &start["status_id"]),
            (&json!(3), &json!(1))
        );
        assert_eq!(start["app"]["name"], "test-nhi");
        assert_eq!(start["actor"]["user"]["name"], "test-nhi");
        let decision = enc.event(&record(Event::Decision(Decided::new(
            "fs",
            "/x",
            Decision::Deny,
            "path_open",
            "no",
        ))));
        assert_eq!(decision["actor"]["user"]["name"], "test-nhi");
        let exit = enc.event(&record(Event::Exit(Exit::from_outside(
            "wall-limit",
            124,
            Some(30),
            "late",
        ))));
        assert_common(&exit, APPLICATION_LIFECYCLE);
        assert_eq!(
            (
                &exit["activity_id"],
                &exit["status_id"],
                &exit["status_code"],
                &exit["duration"]
            ),
            (&json!(4), &json!(2), &json!("124"), &json!(30))
        );
        assert_eq!(exit["app"]["path"], "m.wasm");
        // The run is forgotten at its exit: a later record of it names only the id.
        let after = enc.event(&record(Event::Error(Failure {
            message: "m".into(),
            code: Some(125),
        })));
        assert_common(&after, APPLICATION_ERROR);
        assert!(after["actor"]["user"].get("name").is_none(), "{after}");
        let ok = enc.event(&record(Event::Exit(Exit {
            outcome: "exited".into(),
            ..Exit::default()
        })));
        assert_eq!(
            (&ok["status_id"], &ok["severity_id"]),
            (&json!(1), &json!(1))
        );
        assert_eq!(ok["app"]["name"], "spiffe://test.example/nhi");
    }

    #[test]
    fn ocsf_a_limit_is_an_application_error_that_blocked() {
        let ev = Encoder::on_host("h").event(&record(Event::Limit(LimitReached {
            limit: "memory".into(),
            value: json!(8_388_608),
            scope: None,
            handles: None,
            reason: None,
        })));
        assert_common(&ev, APPLICATION_ERROR);
        assert_blocked(&ev);
        assert_eq!(ev["activity_id"], 99);
        assert_eq!(ev["status_detail"], "memory");
    }

    #[test]
    fn ocsf_events_are_told_from_native_records() {
        let enc = Encoder::on_host("h");
        let line = enc
            .event(&record(Event::Error(Failure {
                message: "m".into(),
                code: None,
            })))
            .to_string();
        assert!(looks_like_ocsf(&line));
        let err = Record::parse(&line).unwrap_err();
        assert!(err.contains("OCSF"), "{err}");
        let native = serde_json::to_string(&record(Event::Error(Failure {
            message: "m".into(),
            code: None,
        })))
        .unwrap();
        assert!(!looks_like_ocsf(&native));
        // Not a record at all: kept whole as an Application Error.
        let ev = enc.event_of_json(&json!({"ts": "x", "what": 1}));
        assert_eq!(ev["class_uid"], 6008);
        assert_eq!(ev["unmapped"]["what"], 1);
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("rel"), "rel");
    }
}
