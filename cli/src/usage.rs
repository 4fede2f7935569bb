//! `warden check --against`: a manifest compared with the audit logs of real runs.
//!
//! Over-privilege is a grant the runs never used; under-privilege is an operation they show
//! refused. Every judgement reads the records' machine fields (`op`, `grant`, the exit
//! record's `usage`), never the wording of a `reason`:
//!
//! - **used**: `[[http]]`: an `allow` of a request this manifest's rules allow (each method
//!   of a rule on its own); `[secrets]`: an `allow` naming the secret (injected, opened,
//!   revealed; `reveal = true` and `inject` are judged on their own); `[network]`: an `allow`
//!   naming the entry as its grant; `[[files]]`, `[env]`, clocks, random and stdin: an exit
//!   record's `usage` counting a use (a read-write file grant only read has an unused write).
//! - **unused**: no such evidence in any run.
//! - **not observable**: the grants `usage` judges, when no exit record in the logs has one.
//!
//! Refused operations are every `deny` decision (and every `limit` reached), grouped by
//! capability and target with counts. Records of other identities are skipped and counted.

use crate::check::Finding;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use warden::Policy;
use warden::audit::{Decision, Event, GrantUsage};
use warden::broker::{HttpRules, Target};
use warden::manifest::Access;

/// The `limit` a learning run writes when its record of file operations stops at its bound.
const RECORDING_STOPPED: &str = "recorded-operations";

/// How many distinct reasons a refusal keeps: the same refusal repeated with different
/// wording (a count in the reason, say) should not make the report as long as the log.
const MAX_REASONS: usize = 3;

/// A log that cannot be used: unreadable, or a line that is not an audit record.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be read.
    #[error("{}: cannot read the audit log: {source}", path.display())]
    Read {
        /// The log.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not an audit record.
    #[error("{}:{line}: not an audit record: {why}", path.display())]
    Malformed {
        /// The log.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    #[error(
        "{}: no record of identity {identity} ({other} records of other identities); nothing to compare",
        logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    /// The logs hold no record of the manifest's identity.
    NoRecords {
        /// The logs read.
        logs: Vec<PathBuf>,
        /// The manifest's identity.
        identity: String,
        /// How many records of other identities they hold.
        other: usize,
    },
}

/// One record of an audit log: warden's typed record, read with the types it is written with.
pub type Entry = warden::audit::Record;

/// Parses one line of an audit log.
///
/// # Errors
/// Why the line is not an audit record.
pub(crate) fn parse_line(line: &str) -> Result<Entry, String> {
    Entry::parse(line)
}

/// The records of an audit log's contents, `bytes`; `path` names the log in errors. Blank
/// lines are skipped.
///
/// # Errors
/// A line that is not an audit record.
pub fn parse_log(bytes: &[u8], path: &Path) -> Result<Vec<Entry>, LogError> {
    let mut entries = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let malformed = |why: String| LogError::Malformed {
            path: path.to_owned(),
            line: i + 1,
            why,
        };
        let line = std::str::from_utf8(line).map_err(|_| malformed("not UTF-8".into()))?;
        if line.trim().is_empty() {
            continue;
        }
        entries.push(parse_line(line).map_err(malformed)?);
    }
    Ok(entries)
}

/// One refused operation, with how often the logs show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) capability: String,
    pub(crate) target: String,
    /// The distinct reasons, at most [`MAX_REASONS`], in the order first seen.
    pub(crate) reasons: Vec<String>,
    pub(crate) count: usize,
}

/// A manifest against the logs of its runs.
#[derive(Debug, Default)]
pub struct Usage {
    pub(crate) identity: String,
    /// Records of this identity.
    pub(crate) records: usize,
    /// Records of other identities, skipped.
    pub(crate) skipped: usize,
    /// Allowed decisions without an `op` (written by an earlier warden): not judged.
    pub(crate) untyped: usize,
    /// Runs of this identity.
    pub(crate) runs: usize,
    /// Runs that ended other than by the guest exiting (a limit, a trap, a signal), or whose
    /// end is not in the logs: what they would have done next is missing.
    pub(crate) incomplete_runs: usize,
    /// Runs whose record of file operations stopped at its bound (`warden learn` runs past
    /// its bound of distinct operations): their later file operations have no record of
    /// their own. File grants are judged from the exit records' counts, which the bound does
    /// not stop, so their verdicts stand.
    pub(crate) recording_stopped_runs: usize,
    pub(crate) used: Vec<Finding>,
    /// Grants no run used (what `--strict` fails on).
    pub unused: Vec<Finding>,
    pub(crate) unobservable: Vec<Finding>,
    /// Operations the logs show allowed that this manifest would not allow (the logs come
    /// from runs under another manifest, a broader one say).
    pub(crate) ungranted: Vec<Finding>,
    pub(crate) refused: Vec<Refusal>,
}

/// What the records show about one `[[http]]` rule: requests per method.
type MethodCounts = BTreeMap<String, usize>;

/// Compares `policy` with `entries` (the records of any number of logs, in order).
///
/// # Errors
/// No record is of this policy's identity (`logs` names the files for the message).
pub fn compare(policy: &Policy, entries: &[Entry], logs: &[PathBuf]) -> Result<Usage, LogError> {
    let mut judge = Judge::new(policy);
    for e in entries {
        judge.add(e);
    }
    judge.finish(logs)
}

/// `check --against` fed one record at a time, keeping only what the judgement needs (counts
/// per grant, refusals grouped, each run's end), never the records themselves: a log of
/// millions of records is read in one pass without being held whole ([`Judge::read_log`]).
pub struct Judge<'p> {
    policy: &'p Policy,
    rules: HttpRules,
    ev: Evidence,
    /// Per run of this identity: whether it ended as `exited`.
    runs: HashMap<String, bool>,
    used_by_runs: RunsUsage,
    records: usize,
    skipped: usize,
}

impl<'p> Judge<'p> {
    /// A judge of `policy` that has seen no record yet.
    pub fn new(policy: &'p Policy) -> Self {
        let rules = HttpRules::new(&policy.http);
        let ev = Evidence::new(rules.rules().len());
        Judge {
            policy,
            rules,
            ev,
            runs: HashMap::new(),
            used_by_runs: RunsUsage::default(),
            records: 0,
            skipped: 0,
        }
    }

    /// Takes one record into account (a record of another identity is counted as skipped).
    pub fn add(&mut self, e: &Entry) {
        if e.identity != self.policy.identity.id {
            self.skipped += 1;
            return;
        }
        self.records += 1;
        let ended = match self.runs.get_mut(e.run.as_str()) {
            Some(ended) => ended,
            None => self.runs.entry(e.run.clone()).or_insert(false),
        };
        if let Event::Exit(x) = &e.event {
            *ended = x.outcome == "exited";
            if let Some(usage) = &x.usage {
                self.used_by_runs.add(usage);
            }
        }
        self.ev.add(self.policy, &self.rules, e);
    }

    /// Reads the audit log at `path` line by line into the judgement. Blank lines are
    /// skipped.
    ///
    /// # Errors
    /// The log cannot be read, or a line is not an audit record (the records before it are
    /// already counted: a caller stops at the error).
    pub fn read_log(&mut self, path: &Path) -> Result<(), LogError> {
        use std::io::BufRead;
        let read_err = |source| LogError::Read {
            path: path.to_owned(),
            source,
        };
        let file = warden::open_regular_file(path).map_err(read_err)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        for i in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(read_err)? == 0 {
                return Ok(());
            }
            let malformed = |why: String| LogError::Malformed {
                path: path.to_owned(),
                line: i,
                why,
            };
            let text = std::str::from_utf8(&line).map_err(|_| malformed("not UTF-8".into()))?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            if text.trim().is_empty() {
                continue;
            }
            self.add(&parse_line(text).map_err(malformed)?);
        }
        Ok(())
    }

    /// The judgement of everything added.
    ///
    /// # Errors
    /// No record was of this policy's identity (`logs` names the files for the message).
    pub fn finish(self, logs: &[PathBuf]) -> Result<Usage, LogError> {
        let policy = self.policy;
        let id = &policy.identity.id;
        if self.records == 0 {
            return Err(LogError::NoRecords {
                logs: logs.to_vec(),
                identity: id.clone(),
                other: self.skipped,
            });
        }
        let mut u = Usage {
            identity: id.clone(),
            skipped: self.skipped,
            records: self.records,
            runs: self.runs.len(),
            incomplete_runs: self.runs.values().filter(|ended| !**ended).count(),
            ..Usage::default()
        };
        let ev = self.ev;
        u.untyped = ev.untyped;
        judge_http(&self.rules, &ev.http, &mut u);
        judge_secrets(policy, &ev.secrets, &mut u);
        judge_net(policy, &ev, &mut u);
        judge_from_exits(policy, &self.used_by_runs, &ev.copied_back, &mut u);
        u.ungranted = ev
            .ungranted
            .into_iter()
            .map(|((capability, target), why)| Finding::new(&capability, &target, why))
            .collect();
        u.recording_stopped_runs = ev.stopped_runs.len();
        u.refused = ev.refused.list;
        Ok(u)
    }
}

/// Refusals in the order first seen, found again by (capability, target) in one lookup, so
/// that a log of a million distinct refusals is read in linear time.
#[derive(Default)]
struct Refusals {
    list: Vec<Refusal>,
    /// Per capability, per target: the refusal's place in `list`.
    at: HashMap<String, HashMap<String, usize>>,
}

impl Refusals {
    fn note(&mut self, capability: &str, target: &str, reason: &str) {
        if let Some(&i) = self.at.get(capability).and_then(|t| t.get(target)) {
            let r = &mut self.list[i];
            r.count += 1;
            if r.reasons.len() < MAX_REASONS && !r.reasons.iter().any(|x| x == reason) {
                r.reasons.push(reason.to_owned());
            }
        } else {
            self.at
                .entry(capability.to_owned())
                .or_default()
                .insert(target.to_owned(), self.list.len());
            self.list.push(Refusal {
                capability: capability.to_owned(),
                target: target.to_owned(),
                reasons: vec![reason.to_owned()],
                count: 1,
            });
        }
    }
}

/// What the decision and limit records of one identity's runs show, per grant.
#[derive(Default)]
struct Evidence {
    /// Per `[[http]]` rule, by position: requests per method.
    http: Vec<MethodCounts>,
    /// Per secret: (injected, opened, revealed).
    secrets: BTreeMap<String, [usize; 3]>,
    /// Per connect entry: (lookups, connections).
    net: BTreeMap<String, [usize; 2]>,
    /// Allowed decisions per listen and udp entry (udp ones: the first per peer and use).
    listen_used: BTreeMap<String, usize>,
    udp_used: BTreeMap<String, usize>,
    copied_back: BTreeMap<String, usize>,
    ungranted: BTreeMap<(String, String), String>,
    stopped_runs: std::collections::HashSet<String>,
    refused: Refusals,
    /// Decisions written before decisions named their operation.
    untyped: usize,
}

impl Evidence {
    fn new(rules: usize) -> Self {
        Evidence {
            http: vec![MethodCounts::new(); rules],
            ..Evidence::default()
        }
    }

    /// Takes one record of the identity's runs into account.
    fn add(&mut self, policy: &Policy, rules: &HttpRules, e: &Entry) {
        let d = match &e.event {
            Event::Decision(d) if d.decision == Decision::Deny => {
                self.refused.note(&d.capability, &d.target, &d.reason);
                return;
            }
            // The recording bound of a learning run is no refusal: the run went on, and only
            // warden's record of its file operations stopped (past it they are unknown).
            Event::Limit(l) if l.limit == RECORDING_STOPPED => {
                if !self.stopped_runs.contains(e.run.as_str()) {
                    self.stopped_runs.insert(e.run.clone());
                }
                return;
            }
            Event::Limit(l) => {
                self.refused
                    .note("limit", &l.limit, &format!("limit reached ({})", l.value));
                return;
            }
            Event::Decision(d) => d,
            _ => return,
        };
        let target = d.target.as_str();
        let grant = d.grant.as_deref();
        let Some(op) = d.op.as_deref() else {
            // Written before decisions named their operation: no evidence either way.
            self.untyped += 1;
            return;
        };
        match (d.capability.as_str(), op) {
            ("http", "request") => self.http_request(rules, target, grant),
            ("secret", "inject" | "open" | "reveal") => {
                if !policy.secrets.iter().any(|s| s.name == target) {
                    self.ungranted.insert(
                        ("secret".into(), target.to_owned()),
                        "the manifest grants no secret by this name".into(),
                    );
                    return;
                }
                let slot = match op {
                    "inject" => 0,
                    "open" => 1,
                    _ => 2,
                };
                match self.secrets.get_mut(target) {
                    Some(counts) => counts[slot] += 1,
                    None => self.secrets.entry(target.to_owned()).or_default()[slot] += 1,
                }
            }
            ("net", "bind" | "listen") => {
                if let Some(entry) = grant {
                    *self.listen_used.entry(entry.to_owned()).or_default() += 1;
                }
            }
            ("net", "send" | "receive") => {
                if let Some(entry) = grant {
                    *self.udp_used.entry(entry.to_owned()).or_default() += 1;
                }
            }
            ("net", "lookup" | "connect") => {
                let Some(entry) = grant else {
                    return;
                };
                let Some(listed) = policy.network.iter().find(|n| n.as_str() == entry) else {
                    self.ungranted.insert(
                        ("net".into(), target.to_owned()),
                        format!("allowed by connect entry {entry:?}, which this manifest lacks"),
                    );
                    return;
                };
                let slot = usize::from(op != "lookup");
                self.net.entry(listed.as_str().to_owned()).or_default()[slot] += 1;
            }
            ("fs", "copy-back") => {
                if let Some(guest) = grant {
                    *self.copied_back.entry(guest.to_owned()).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    /// A request the broker allowed: counted against the rule of this manifest that allows
    /// it, or noted as ungranted.
    fn http_request(&mut self, rules: &HttpRules, target: &str, grant: Option<&str>) {
        let Some((method, url)) = target.split_once(' ') else {
            return;
        };
        // This manifest's rules decide which rule a request used, as the broker would.
        // When they cannot (a URL the log redacted no longer parses), the rule the
        // record names is taken if this manifest has it with that method.
        // Rules are told apart by position, not URL: two rules may share a URL with
        // different methods, and each is used only by its own methods.
        let position =
            |rule: &warden::broker::Rule| rules.rules().iter().position(|r| std::ptr::eq(r, rule));
        let named = grant.and_then(|named| {
            rules
                .rules()
                .iter()
                .find(|r| r.url == named && r.methods.iter().any(|m| m == method))
        });
        let verdict = url
            .parse::<http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|uri| Target::of(&uri))
            .and_then(|t| rules.check(method, &t).map(position))
            .or_else(|why| named.map(position).ok_or(why));
        match verdict {
            Ok(Some(i)) => {
                *self.http[i].entry(method.to_owned()).or_default() += 1;
            }
            Ok(None) => {}
            Err(why) => {
                self.ungranted
                    .insert(("http".into(), target.to_owned()), why);
            }
        }
    }
}

/// `[[http]]`: each rule, and each method of it, used or not.
fn judge_http(rules: &HttpRules, http: &[MethodCounts], u: &mut Usage) {
    for (rule, counts) in rules.rules().iter().zip(http) {
        let total: usize = counts.values().sum();
        if total == 0 {
            u.unused.push(Finding::new(
                "http",
                &rule.url,
                format!(
                    "no request in these runs was allowed by it ({})",
                    rule.methods.join(",")
                ),
            ));
            continue;
        }
        for m in &rule.methods {
            match counts.get(m) {
                Some(n) => u.used.push(Finding::new(
                    "http",
                    &format!("{m} {}", rule.url),
                    format!("{n} request{}", plural(*n)),
                )),
                None => u.unused.push(Finding::new(
                    "http",
                    &format!("{m} {}", rule.url),
                    format!(
                        "the rule allows {m}; no {m} request in these runs (the rule's other \
                         methods were used)"
                    ),
                )),
            }
        }
    }
}

/// `[secrets]`: each used at all, and the parts granted on their own (injection, reveal).
fn judge_secrets(policy: &Policy, secrets: &BTreeMap<String, [usize; 3]>, u: &mut Usage) {
    for s in &policy.secrets {
        let [injected, opened, revealed] =
            secrets.get(s.name.as_str()).copied().unwrap_or_default();
        if injected + opened + revealed == 0 {
            u.unused.push(Finding::new(
                "secret",
                &s.name,
                "never injected, opened or revealed in these runs",
            ));
            continue;
        }
        let mut how = Vec::new();
        for (n, what) in [
            (injected, "injected"),
            (opened, "opened"),
            (revealed, "revealed"),
        ] {
            if n > 0 {
                how.push(format!("{what} {n} time{}", plural(n)));
            }
        }
        u.used.push(Finding::new("secret", &s.name, how.join(", ")));
        if s.inject.is_some() && injected == 0 {
            u.unused.push(Finding::new(
                "secret",
                &format!("{} inject", s.name),
                "the secret is bound for injection; it was never injected in these runs",
            ));
        }
        if s.reveal && revealed == 0 {
            u.unused.push(Finding::new(
                "secret",
                &format!("{} reveal", s.name),
                "reveal = true; the guest never revealed it in these runs",
            ));
        }
    }
}

/// `[network]`: each connect, listen and udp entry, used or not.
fn judge_net(policy: &Policy, ev: &Evidence, u: &mut Usage) {
    for n in &policy.network {
        match ev.net.get(n.as_str()) {
            None => u.unused.push(Finding::new(
                "net",
                n,
                "no lookup or connection in these runs was allowed by it",
            )),
            Some([lookups, connects]) => u.used.push(Finding::new(
                "net",
                n,
                format!(
                    "{lookups} lookup{}, {connects} connection{}",
                    plural(*lookups),
                    plural(*connects)
                ),
            )),
        }
    }
    let entries = policy
        .listen
        .iter()
        .map(|l| {
            (
                &l.entry,
                &ev.listen_used,
                "no bind or listen in these runs was allowed by it",
            )
        })
        .chain(policy.udp.iter().map(|r| {
            (
                &r.entry,
                &ev.udp_used,
                "no datagram in these runs was allowed by it",
            )
        }));
    for (entry, used, never) in entries {
        match used.get(entry) {
            None => u.unused.push(Finding::new("net", entry, never)),
            Some(n) => u.used.push(Finding::new(
                "net",
                entry,
                format!("{n} allowed decision{}", plural(*n)),
            )),
        }
    }
}

/// What the exit records' `usage` says, summed over the runs that carry one.
#[derive(Default)]
struct RunsUsage {
    /// Runs whose exit record has `usage`.
    runs: usize,
    /// Per grant's guest path: reads, writes, creates, deletes.
    files: HashMap<String, [u64; 4]>,
    /// Runs that read the environment, the wall clock, the monotonic clock, random, stdin.
    env: usize,
    wall: usize,
    monotonic: usize,
    random: usize,
    stdin: usize,
}

impl RunsUsage {
    fn add(&mut self, usage: &GrantUsage) {
        self.runs += 1;
        for f in &usage.files {
            let counts = self.files.entry(f.guest.clone()).or_default();
            for (c, n) in counts
                .iter_mut()
                .zip([f.reads, f.writes, f.creates, f.deletes])
            {
                *c += n;
            }
        }
        for (count, used) in [
            (&mut self.env, usage.env),
            (&mut self.wall, usage.wall_clock),
            (&mut self.monotonic, usage.monotonic_clock),
            (&mut self.random, usage.random),
            (&mut self.stdin, usage.stdin),
        ] {
            *count += usize::from(used);
        }
    }
}

/// Judges the grants the exit records' `usage` counts (files, env, clocks, random, stdin);
/// with no such record in the logs they are not observable.
fn judge_from_exits(
    policy: &Policy,
    used: &RunsUsage,
    copied_back: &BTreeMap<String, usize>,
    u: &mut Usage,
) {
    const NO_USAGE: &str = "no exit record in these logs counts what its run used (logs of an \
                            earlier warden, or runs ended from outside)";
    let runs = |n: usize| format!("{n} run{}", plural(n));
    for f in &policy.files {
        let written = copied_back.get(&f.guest).copied().unwrap_or(0);
        let [reads, writes, creates, deletes] =
            used.files.get(&f.guest).copied().unwrap_or_default();
        let changes = writes + creates + deletes;
        if used.runs == 0 && written == 0 {
            u.unobservable.push(Finding::new("fs", &f.guest, NO_USAGE));
            continue;
        }
        if reads + changes == 0 && written == 0 {
            u.unused.push(Finding::new(
                "fs",
                &f.guest,
                format!("no operation on it in {}", runs(used.runs)),
            ));
            continue;
        }
        let mut how = vec![format!(
            "{reads} read{}, {writes} write{}, {creates} create{}, {deletes} delete{}",
            plural64(reads),
            plural64(writes),
            plural64(creates),
            plural64(deletes)
        )];
        if written > 0 {
            how.push(format!(
                "the guest's changes copied back in {}",
                runs(written)
            ));
        }
        u.used.push(Finding::new("fs", &f.guest, how.join("; ")));
        if f.access == Access::ReadWrite && changes == 0 && written == 0 {
            u.unused.push(Finding::new(
                "fs",
                &format!("{} write", f.guest),
                "read-write: these runs only read it (read would do)",
            ));
        }
    }
    let mut judge = |granted: bool, capability: &str, target: &str, count: usize, what: &str| {
        if !granted {
            return;
        }
        let finding = if used.runs == 0 {
            Finding::new(capability, target, NO_USAGE)
        } else if count == 0 {
            Finding::new(
                capability,
                target,
                format!("the guest never {what} in {}", runs(used.runs)),
            )
        } else {
            Finding::new(capability, target, format!("{what} in {}", runs(count)))
        };
        match (used.runs, count) {
            (0, _) => u.unobservable.push(finding),
            (_, 0) => u.unused.push(finding),
            _ => u.used.push(finding),
        }
    };
    for e in &policy.env {
        judge(true, "env", &e.name, used.env, "read its environment");
    }
    let stdin = policy.stdio.stdin == warden::manifest::StdinMode::Inherit;
    judge(stdin, "stdio", "stdin", used.stdin, "read stdin");
    judge(
        policy.clocks.wall,
        "clock",
        "wall",
        used.wall,
        "read the clock",
    );
    judge(
        policy.clocks.monotonic,
        "clock",
        "monotonic",
        used.monotonic,
        "read the clock",
    );
    judge(
        policy.random.secure,
        "random",
        "secure",
        used.random,
        "drew random bytes",
    );
}

fn plural64(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One `  KIND    TARGET: REASON` line.
fn line(out: &mut String, f: &Finding) {
    let _ = writeln!(
        out,
        "  {:7} {}: {}",
        shown(&f.capability),
        shown(&f.target),
        shown(&f.reason)
    );
}

/// A string from an audit log as the text report shows it, on one line and inert: control
/// characters (a newline that would start a forged report line, an escape sequence that would
/// drive the reader's terminal) become `\u{..}`, as in a Rust string. Guest-chosen paths,
/// hosts and names reach the log, and so this report.
pub(crate) fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        if ch.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(ch));
        } else {
            out.push(ch);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Usage {
    /// The comparison as `warden check --against` prints it, after the grants table.
    pub fn render_text(&self, logs: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nagainst {logs} log{}: {} run{} of {} ({} records; {} records of other \
             identities skipped)",
            plural(logs),
            self.runs,
            plural(self.runs),
            shown(&self.identity),
            self.records,
            self.skipped
        );
        if self.incomplete_runs > 0 {
            let _ = writeln!(
                out,
                "  {} run{} did not end by exiting (a limit, a trap, a signal, or no exit \
                 record): what they would have done next is not in the logs",
                self.incomplete_runs,
                plural(self.incomplete_runs)
            );
        }
        if self.recording_stopped_runs > 0 {
            let _ = writeln!(
                out,
                "  in {} run{}, the record of file operations stopped at its bound ({} \
                 distinct operations): the file operations after it are unknown",
                self.recording_stopped_runs,
                plural(self.recording_stopped_runs),
                warden::audit::MAX_RECORDED_OPS
            );
        }
        let sections: [(&str, &[Finding]); 4] = [
            ("grants used in these runs", &self.used),
            ("grants never used in these runs", &self.unused),
            (
                "not observable from these logs (neither used nor unused)",
                &self.unobservable,
            ),
            (
                "allowed in these runs but not by this manifest",
                &self.ungranted,
            ),
        ];
        for (title, findings) in sections {
            if findings.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{title}:");
            for f in findings {
                line(&mut out, f);
            }
        }
        if !self.refused.is_empty() {
            let _ = writeln!(out, "\nrefused in these runs:");
            for r in &self.refused {
                let _ = writeln!(
                    out,
                    "  {:7} {} ({}x): {}",
                    shown(&r.capability),
                    shown(&r.target),
                    r.count,
                    shown(&r.reasons.join("; "))
                );
            }
        }
        out
    }

    /// The comparison's part of `warden check --json`.
    pub fn to_json(&self) -> Value {
        let list = |fs: &[Finding]| fs.iter().map(Finding::to_json).collect::<Vec<_>>();
        json!({
            "runs": self.runs,
            "incomplete_runs": self.incomplete_runs,
            "recording_stopped_runs": self.recording_stopped_runs,
            "records": self.records,
            "skipped_records": self.skipped,
            "used": list(&self.used),
            "unused": list(&self.unused),
            "unobservable": list(&self.unobservable),
            "ungranted": list(&self.ungranted),
            "refused": self.refused.iter().map(|r| json!({
                "capability": r.capability,
                "target": r.target,
                "reason": r.reasons.join("; "),
                "count": r.count,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use warden::Manifest;

    const ID: &str = "spiffe://test.example/nhi";

    fn policy(body: &str) -> Policy {
        let text = format!("[identity]\nname = \"t\"\nid = \"{ID}\"\n\n{body}");
        let m = Manifest::from_str_at(&text, Path::new("t.warden.toml"), Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}"));
        Policy::from_manifest(m)
    }

    /// A decision record of `identity` in run `run`, as warden writes it: the operation `op`
    /// and the grant that decided it are taken from `(op, grant)` in `how` ("" for none).
    fn decided(
        identity: &str,
        run: &str,
        cap: &str,
        target: &str,
        d: &str,
        (op, grant): (&str, &str),
        reason: &str,
    ) -> String {
        let mut v = serde_json::json!({
            "ts": "2026-12-02T12:00:00.000Z", "event": "decision", "identity": identity,
            "run": run, "capability": cap, "target": target, "decision": d, "op": op,
            "reason": reason,
        });
        if !grant.is_empty() {
            v["grant"] = grant.into();
        }
        v.to_string()
    }

    /// A decision record whose operation does not matter to the test (a refusal, say).
    fn decision(
        identity: &str,
        run: &str,
        cap: &str,
        target: &str,
        d: &str,
        reason: &str,
    ) -> String {
        decided(identity, run, cap, target, d, ("path_open", ""), reason)
    }

    fn exit(run: &str, outcome: &str) -> String {
        serde_json::json!({
            "ts": "2026-12-02T12:00:01.000Z", "event": "exit", "identity": ID, "run": run,
            "outcome": outcome, "code": 0,
        })
        .to_string()
    }

    fn compare_lines(p: &Policy, lines: &[String]) -> Result<Usage, LogError> {
        let entries: Vec<Entry> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
        compare(p, &entries, &[PathBuf::from("a.jsonl")])
    }

    fn targets(fs: &[Finding]) -> Vec<String> {
        fs.iter()
            .map(|f| format!("{} {}", f.capability, f.target))
            .collect()
    }

    const TWO_RULES: &str = "[[http]]\nurl = \"https://api.example.com/v1/\"\nmethods = [\"GET\", \"POST\"]\n\n\
         [[http]]\nurl = \"https://hooks.example.com/receipts\"\nmethods = [\"POST\"]\n";

    fn http_allow(run: &str, method: &str, url: &str, rule: &str) -> String {
        decided(
            ID,
            run,
            "http",
            &format!("{method} {url}"),
            "allow",
            ("request", rule),
            &format!("[[http]] {rule} {method} (address 192.0.2.1:443)"),
        )
    }

    #[test]
    fn an_http_rule_no_request_used_is_unused_and_so_is_a_method_never_used() {
        let p = policy(TWO_RULES);
        let u = compare_lines(
            &p,
            &[
                http_allow(
                    "r1",
                    "GET",
                    "https://api.example.com/v1/charges?x=1",
                    "https://api.example.com/v1/",
                ),
                http_allow(
                    "r2",
                    "GET",
                    "https://api.example.com/v1/refunds",
                    "https://api.example.com/v1/",
                ),
                exit("r1", "exited"),
                exit("r2", "exited"),
            ],
        )
        .unwrap();
        assert_eq!(targets(&u.used), ["http GET https://api.example.com/v1/"]);
        assert_eq!(u.used[0].reason, "2 requests");
        assert_eq!(
            targets(&u.unused),
            [
                "http POST https://api.example.com/v1/",
                "http https://hooks.example.com/receipts"
            ]
        );
        assert_eq!((u.runs, u.incomplete_runs), (2, 0));

        // Control: every rule and method used, nothing unused.
        let u = compare_lines(
            &p,
            &[
                http_allow(
                    "r1",
                    "GET",
                    "https://api.example.com/v1/a",
                    "https://api.example.com/v1/",
                ),
                http_allow(
                    "r1",
                    "POST",
                    "https://api.example.com/v1/a",
                    "https://api.example.com/v1/",
                ),
                http_allow(
                    "r1",
                    "POST",
                    "https://hooks.example.com/receipts",
                    "https://hooks.example.com/receipts",
                ),
            ],
        )
        .unwrap();
        assert!(u.unused.is_empty(), "{:?}", u.unused);
        assert_eq!(u.used.len(), 3);
        assert_eq!(u.incomplete_runs, 1, "no exit record: incomplete");
    }

    fn limit(run: &str, limit: &str, value: u64) -> String {
        serde_json::json!({
            "ts": "2026-12-02T12:00:00.500Z", "event": "limit", "identity": ID, "run": run,
            "limit": limit, "value": value, "reason": "…",
        })
        .to_string()
    }

    #[test]
    fn a_recording_bound_is_no_refusal_and_the_report_says_what_is_unknown() {
        let p = policy("[[files]]\nhost = \"/\"\nguest = \"/data\"\naccess = \"read\"\n");
        let u = compare_lines(
            &p,
            &[
                limit("r1", "recorded-operations", 4096),
                exit("r1", "exited"),
            ],
        )
        .unwrap();
        assert!(u.refused.is_empty(), "{:?}", u.refused);
        assert_eq!(u.recording_stopped_runs, 1);
        assert!(u.unused.is_empty(), "a file grant is never called unused");
        assert_eq!(targets(&u.unobservable), ["fs /data"]);
        let text = u.render_text(1);
        assert!(
            text.contains(&format!(
                "stopped at its bound ({} distinct operations)",
                warden::audit::MAX_RECORDED_OPS
            )),
            "{text}"
        );
        assert_eq!(u.to_json()["recording_stopped_runs"], 1);

        // Control: a limit the run reached is a refusal, and nothing is said of a bound.
        let u = compare_lines(
            &p,
            &[limit("r1", "memory", 1 << 20), exit("r1", "memory-limit")],
        )
        .unwrap();
        assert_eq!(u.refused.len(), 1);
        assert_eq!(u.refused[0].target, "memory");
        assert_eq!(u.recording_stopped_runs, 0);
        assert!(!u.render_text(1).contains("stopped at its bound"));
    }

    #[test]
    fn a_request_this_manifest_would_refuse_is_listed_as_ungranted() {
        let p = policy(TWO_RULES);
        let u = compare_lines(
            &p,
            &[http_allow(
                "r1",
                "DELETE",
                "https://api.example.com/v1/a",
                "https://api.example.com/",
            )],
        )
        .unwrap();
        assert_eq!(
            targets(&u.ungranted),
            ["http DELETE https://api.example.com/v1/a"]
        );
        assert!(
            u.ungranted[0].reason.contains("allows GET, POST only"),
            "{:?}",
            u.ungranted
        );
        assert_eq!(u.unused.len(), 2, "neither rule was used: {:?}", u.unused);
    }

    #[test]
    fn a_request_whose_url_the_log_redacted_counts_for_the_rule_the_record_names() {
        let p = policy(TWO_RULES);
        let u = compare_lines(
            &p,
            &[http_allow(
                "r1",
                "POST",
                "https://hooks.example.com/receipts?k=[REDACTED: stripe] x",
                "https://hooks.example.com/receipts",
            )],
        )
        .unwrap();
        assert_eq!(
            targets(&u.used),
            ["http POST https://hooks.example.com/receipts"]
        );
        assert!(u.ungranted.is_empty(), "{:?}", u.ungranted);
    }

    #[test]
    fn records_of_other_identities_are_skipped_and_counted() {
        let p = policy(TWO_RULES);
        let other = "spiffe://test.example/other";
        let u = compare_lines(
            &p,
            &[
                http_allow(
                    "r1",
                    "GET",
                    "https://api.example.com/v1/a",
                    "https://api.example.com/v1/",
                ),
                decision(
                    other,
                    "r9",
                    "http",
                    "POST https://hooks.example.com/receipts",
                    "allow",
                    "[[http]] https://hooks.example.com/receipts POST",
                ),
                decision(other, "r9", "fs", "/etc/passwd", "deny", "path_open: EPERM"),
            ],
        )
        .unwrap();
        assert_eq!((u.records, u.skipped, u.runs), (1, 2, 1));
        assert!(targets(&u.unused).contains(&"http https://hooks.example.com/receipts".to_owned()));
        assert!(
            u.refused.is_empty(),
            "another identity's refusal is not this one's"
        );

        // Only other identities: nothing to compare, an error rather than "all unused".
        let e = compare_lines(&p, &[decision(other, "r9", "fs", "/x", "deny", "no")]).unwrap_err();
        assert!(
            e.to_string().contains(
                "no record of identity spiffe://test.example/nhi (1 records of other identities)"
            ),
            "{e}"
        );
    }

    #[test]
    fn refusals_are_grouped_by_capability_and_target_with_counts() {
        let p = policy("");
        let deny = |run: &str, cap: &str, target: &str, reason: &str| {
            decision(ID, run, cap, target, "deny", reason)
        };
        let u = compare_lines(
            &p,
            &[
                deny("r1", "fs", "/data/new.txt", "path_open: EPERM"),
                deny("r2", "fs", "/data/new.txt", "path_open: EPERM"),
                deny("r2", "fs", "/data/new.txt", "path_unlink_file: EPERM"),
                deny(
                    "r2",
                    "http",
                    "GET http://169.254.169.254/",
                    "no [[http]] rule allows this URL",
                ),
                deny(
                    "r2",
                    "import",
                    "wasi:sockets/tcp@0.2.0",
                    "no grant provides it",
                ),
                // The same target under another capability is another refusal.
                deny("r2", "env", "/data/new.txt", "not granted"),
            ],
        )
        .unwrap();
        let fs = &u.refused[0];
        assert_eq!(
            (fs.capability.as_str(), fs.target.as_str(), fs.count),
            ("fs", "/data/new.txt", 3)
        );
        assert_eq!(fs.reasons, ["path_open: EPERM", "path_unlink_file: EPERM"]);
        assert_eq!(u.refused.len(), 4);
        assert_eq!(
            (u.refused[3].capability.as_str(), u.refused[3].count),
            ("env", 1),
            "in the order first seen"
        );
        assert!(
            u.render_text(1)
                .contains("fs      /data/new.txt (3x): path_open: EPERM; path_unlink_file: EPERM")
        );
    }

    #[test]
    fn setup_records_are_no_evidence_of_use() {
        let p = policy(
            "[env]\nREGION = \"eu\"\n[clocks]\nwall = true\n[random]\nsecure = true\n[stdio]\nstdin = \"inherit\"\n",
        );
        let allow = |cap: &str, target: &str, reason: &str| {
            decided(ID, "r1", cap, target, "allow", ("grant", ""), reason)
        };
        let u = compare_lines(
            &p,
            &[
                allow("env", "REGION", "declared in [env]"),
                allow("clock", "wall", "granted by [clocks] wall"),
                allow("random", "secure", "granted by [random] secure"),
                allow("stdio", "stdin", "stdin = \"inherit\""),
            ],
        )
        .unwrap();
        assert!(u.used.is_empty() && u.unused.is_empty(), "{u:?}");
        assert_eq!(
            targets(&u.unobservable),
            ["env REGION", "stdio stdin", "clock wall", "random secure"]
        );
    }

    /// An exit record carrying `usage` (what the run used, counted as it ran).
    fn exit_with_usage(run: &str, usage: &serde_json::Value) -> String {
        serde_json::json!({
            "ts": "2026-12-02T12:00:01.000Z", "event": "exit", "identity": ID, "run": run,
            "outcome": "exited", "code": 0, "message": null, "wall_ms": 1, "fuel_used": null,
            "peak_memory": 65536, "usage": usage,
        })
        .to_string()
    }

    #[test]
    fn exit_records_judge_files_env_clocks_random_and_stdin() {
        let p = policy(
            "[[files]]\nhost = \"/\"\nguest = \"/data\"\naccess = \"read-write\"\n\n\
             [[files]]\nhost = \"/\"\nguest = \"/spare\"\naccess = \"read\"\n\n\
             [env]\nREGION = \"eu\"\n[clocks]\nwall = true\n[random]\nsecure = true\n\
             [stdio]\nstdin = \"inherit\"\n",
        );
        let usage = |data: [u64; 4], env: bool, wall: bool| {
            serde_json::json!({
                "files": [
                    {"guest": "/data", "reads": data[0], "writes": data[1], "creates": data[2], "deletes": data[3]},
                    {"guest": "/spare", "reads": 0, "writes": 0, "creates": 0, "deletes": 0},
                ],
                "env": env, "wall_clock": wall, "monotonic_clock": false, "random": false,
                "stdin": false,
            })
        };
        // Two runs: one only read /data, the other read the clock.
        let u = compare_lines(
            &p,
            &[
                exit_with_usage("r1", &usage([3, 0, 0, 0], false, false)),
                exit_with_usage("r2", &usage([0, 0, 0, 0], false, true)),
            ],
        )
        .unwrap();
        assert_eq!(targets(&u.used), ["fs /data", "clock wall"]);
        assert_eq!(
            targets(&u.unused),
            [
                "fs /data write",
                "fs /spare",
                "env REGION",
                "stdio stdin",
                "random secure"
            ]
        );
        assert!(u.unobservable.is_empty(), "{:?}", u.unobservable);
        assert_eq!(u.used[1].reason, "read the clock in 1 run");

        // Control: a run that wrote /data and read its environment uses both.
        let u = compare_lines(
            &p,
            &[exit_with_usage("r1", &usage([1, 0, 1, 0], true, false))],
        )
        .unwrap();
        assert_eq!(targets(&u.used), ["fs /data", "env REGION"]);
        assert!(!targets(&u.unused).contains(&"fs /data write".to_string()));
        // Without any exit record that counts, the same grants are not observable.
        let u = compare_lines(&p, &[exit("r1", "exited")]).unwrap();
        assert!(u.used.is_empty() && u.unused.is_empty(), "{u:?}");
        assert_eq!(u.unobservable.len(), 6);
    }

    #[test]
    fn listen_and_udp_entries_are_used_when_a_decision_names_them() {
        let p = policy(
            "[network]\nlisten = [\"127.0.0.1:8080\", \"127.0.0.1:0\"]\n\
             udp = [\"10.0.0.53:53\", \"10.0.0.54:53\"]\n",
        );
        let allow = |target: &str, how: (&str, &str), reason: &str| {
            decided(ID, "r1", "net", target, "allow", how, reason)
        };
        let u = compare_lines(
            &p,
            &[
                allow(
                    "127.0.0.1:8080",
                    ("bind", "127.0.0.1:8080"),
                    "TcpBind: listen entry \"127.0.0.1:8080\"",
                ),
                allow(
                    "127.0.0.1:8080",
                    ("listen", "127.0.0.1:8080"),
                    "TcpListen: listen entry \"127.0.0.1:8080\"",
                ),
                allow(
                    "10.0.0.53:53",
                    ("send", "10.0.0.53:53"),
                    "UdpSend: udp entry \"10.0.0.53:53\"",
                ),
            ],
        )
        .unwrap();
        assert_eq!(targets(&u.used), ["net 127.0.0.1:8080", "net 10.0.0.53:53"]);
        assert_eq!(u.used[0].reason, "2 allowed decisions");
        assert_eq!(targets(&u.unused), ["net 127.0.0.1:0", "net 10.0.0.54:53"]);
    }

    #[test]
    fn secrets_and_network_entries_are_matched_by_name_and_entry() {
        let p = policy(
            "[network]\nconnect = [\"db.internal.example:5432\", \"10.1.0.0/16:443\"]\n\n\
             [secrets.stripe]\nfrom = \"env:STRIPE_KEY\"\nreveal = true\n\
             inject = { header = \"Authorization\", format = \"Bearer {secret}\", url = \"https://api.example.com/\" }\n\n\
             [secrets.unused]\nfrom = \"env:UNUSED_KEY\"\n",
        );
        let allow = |cap: &str, target: &str, how: (&str, &str), reason: &str| {
            decided(ID, "r1", cap, target, "allow", how, reason)
        };
        let db = "db.internal.example:5432";
        let u = compare_lines(
            &p,
            &[
                allow("secret", "stripe", ("inject", "stripe"), "injected into POST https://api.example.com/x (the URL is within its binding)"),
                allow("net", "db.internal.example", ("lookup", db), "lookup: connect entry \"db.internal.example:5432\" -> [10.0.0.5] (each address is checked again on connect)"),
                allow("net", "10.0.0.5:5432", ("connect", db), "TcpConnect: connect entry \"db.internal.example:5432\" (via name \"db.internal.example\")"),
                allow("net", "192.0.2.1:443", ("connect", "192.0.2.0/24:443"), "TcpConnect: connect entry \"192.0.2.0/24:443\""),
            ],
        )
        .unwrap();
        assert_eq!(
            targets(&u.used),
            ["secret stripe", "net db.internal.example:5432"]
        );
        assert_eq!(u.used[1].reason, "1 lookup, 1 connection");
        assert_eq!(
            targets(&u.unused),
            [
                "secret stripe reveal",
                "secret unused",
                "net 10.1.0.0/16:443"
            ]
        );
        assert_eq!(targets(&u.ungranted), ["net 192.0.2.1:443"]);
    }

    #[test]
    fn a_line_that_is_not_a_record_says_why() {
        let ok = decision(ID, "r1", "fs", "/x", "deny", "no");
        assert!(parse_line(&ok).is_ok());
        for (line, why) in [
            ("not json", "expected ident"),
            ("[1, 2]", "invalid type: sequence"),
            (
                r#"{"ts":"t","event":"exit","run":"r","outcome":"exited"}"#,
                "missing field `identity`",
            ),
            (
                r#"{"ts":"t","event":"decision","identity":"i","run":"r","capability":"fs","target":"/x","decision":"maybe","reason":""}"#,
                "unknown variant `maybe`, expected `allow` or `deny`",
            ),
            (
                r#"{"ts":"t","event":"decision","identity":"i","run":7}"#,
                "expected a string",
            ),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn a_malformed_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let good = decision(ID, "r1", "fs", "/x", "deny", "no");
        std::fs::write(&path, format!("{good}\n\n{good}\n{{\"ts\": \n")).unwrap();
        let p = policy("");
        let e = Judge::new(&p).read_log(&path).unwrap_err();
        assert!(
            e.to_string()
                .contains("a.jsonl:4: not an audit record: EOF while parsing"),
            "{e}"
        );
        std::fs::write(&path, format!("{good}\n\n{good}")).unwrap();
        let mut judge = Judge::new(&p);
        judge.read_log(&path).unwrap();
        let u = judge.finish(std::slice::from_ref(&path)).unwrap();
        assert_eq!(
            u.records, 2,
            "blank lines are skipped, a last line without its newline read"
        );
    }

    #[test]
    fn reading_a_log_record_by_record_judges_as_the_whole_log_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut lines = Vec::new();
        for run in ["r1", "r2", "r3"] {
            lines.push(decision(
                ID,
                run,
                "fs",
                "/etc/passwd",
                "deny",
                "outside every grant",
            ));
            lines.push(decision(ID, run, "net", "10.0.0.1:80", "deny", "no entry"));
            lines.push(decision("spiffe://other", run, "fs", "/x", "deny", "no"));
        }
        std::fs::write(&path, lines.join("\n")).unwrap();
        let p = policy("");
        let logs = std::slice::from_ref(&path);
        let whole = compare(
            &p,
            &parse_log(lines.join("\n").as_bytes(), &path).unwrap(),
            logs,
        )
        .unwrap();
        let mut judge = Judge::new(&p);
        judge.read_log(&path).unwrap();
        let streamed = judge.finish(logs).unwrap();
        assert_eq!(streamed.to_json(), whole.to_json());
        // Not vacuous: the records were judged (two refusal groups, three runs each, and the
        // other identity's records skipped).
        assert_eq!(streamed.refused.len(), 2);
        assert_eq!(streamed.refused[0].count, 3);
        assert_eq!((streamed.runs, streamed.skipped), (3, 3));
    }
}
