//! `warden learn`: the narrowest manifest within a broad one that allows what a run used.
//!
//! The run itself is an ordinary `warden run` under BROAD (contained and locked down), with
//! allowed filesystem operations recorded too (`RunOptions::record_fs`). This module reads its
//! audit log and writes LEARNED, as TOML text with a comment on every grant saying what was
//! observed. The rules (docs/learn.md says the same):
//!
//! - `[[http]]`: a BROAD rule no request used is dropped; a used one keeps only the methods
//!   used, and the narrowest path prefix covering the paths requested (their longest common
//!   prefix, cut at a `/`; never wider than the BROAD rule).
//! - `[secrets]`: a secret injected, opened or revealed is kept with its BROAD source and
//!   binding (the binding is not narrowed); `reveal` only if a reveal was observed. Others
//!   are dropped.
//! - `[network]`: an entry that allowed a lookup or a connection is kept; others dropped.
//! - `[[files]]` (core modules and components alike): a grant no operation touched is
//!   dropped; a touched one is `read` unless something was written. Under a directory grant,
//!   at most `MAX_SINGLE_FILES` files touched, each a regular file on the host, and no
//!   operation on the folder itself (listing, creating, removing or renaming entries) become
//!   single-file grants; otherwise the folder is kept.
//! - `[env]`: kept as in BROAD when the guest read its environment (which names it looked at
//!   is not knowable), dropped when the run's exit record says it never did.
//! - stdin, clocks, random: dropped when the module imports nothing that could use them
//!   (the lint of `warden check`) or the run never used them ([`warden::audit::USED`]); kept
//!   when it did.
//! - `[limits]`: observed figures with headroom (`memory_limit` and its siblings), never
//!   above BROAD's; `staged-file` is kept from BROAD (not in the exit record).

use crate::usage::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use warden::Decision;
use warden::Policy;
use warden::audit::Event;
use warden::broker::{HttpRules, Target, UrlPrefix};
use warden::manifest::{Access, EnvSource, FileKind, OutputMode, SecretSource, StdinMode};

/// At most this many files touched under one directory grant become single-file grants; a
/// workload that touches more is given the folder (a list of many single files is harder to
/// review than one folder, and more likely to miss a file the next run needs).
pub(crate) const MAX_SINGLE_FILES: usize = 3;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Headroom over an observed peak (memory, output, requests, fuel): twice what was seen, so
/// a run with somewhat larger input still fits.
pub(crate) const HEADROOM: u64 = 2;
/// Headroom over the observed wall time: three times, since wall time varies with the
/// machine's load far more than memory does.
pub(crate) const WALL_HEADROOM: u64 = 3;
/// The least memory limit learned: a guest's allocator grows in steps, and 16 MiB is well
/// below any default while above what a small connector's first growth asks for.
pub(crate) const MIN_MEMORY: u64 = 16 * MIB;
/// The least wall limit learned, in ms: a loaded machine can make a 50 ms run take seconds.
pub(crate) const MIN_WALL_MS: u64 = 5_000;
/// The least output limit learned: room for an error message the learning run never printed.
pub(crate) const MIN_OUTPUT: u64 = 64 * KIB;
/// The least `http-requests` limit learned: a retry or two more than the learning run made.
pub(crate) const MIN_HTTP_REQUESTS: u64 = 10;
/// The least `egress` limit learned: a connector's requests vary with their input far more
/// than its memory does, and 1 MiB leaves room for a retry and a larger body.
pub(crate) const MIN_EGRESS: u64 = MIB;
/// The least fuel limit learned (when BROAD sets one).
pub(crate) const MIN_FUEL: u64 = 10_000_000;

/// Paths listed in one comment at most.
const MAX_LISTED: usize = 5;

/// What the `exit` record of the run says.
#[derive(Debug, Clone, Default)]
pub struct ExitFacts {
    /// How the run ended (`exited`, `wall-limit`, …); none without an `exit` record.
    pub outcome: Option<String>,
    pub(crate) wall_ms: Option<u64>,
    pub(crate) peak_memory: Option<u64>,
    pub(crate) output_bytes: Option<u64>,
    pub(crate) fuel_used: Option<u64>,
    pub(crate) egress_bytes: Option<u64>,
    /// What the run used of its grants, when the exit record says.
    pub(crate) usage: Option<warden::audit::GrantUsage>,
}

/// One learning run's audit log: its records and what its `exit` record says.
#[derive(Debug, Default)]
pub struct RunLog {
    pub(crate) entries: Vec<Entry>,
    /// What its `exit` record says.
    pub exit: ExitFacts,
    /// The run id of the records.
    pub(crate) run: Option<String>,
    /// The run's recording stopped at its bound (a `limit` record of `recorded-operations`):
    /// file operations after it are unknown, so no file grant can be judged unused.
    pub(crate) recording_stopped: bool,
}

/// Reads the audit log of a learning run.
///
/// # Ambient Authority
/// Reads `path`.
///
/// # Errors
/// The log cannot be read or holds a line that is not an audit record.
pub fn read_run(path: &Path) -> Result<RunLog, String> {
    let bytes = warden::read_regular_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    run_log(&bytes, path)
}

/// The record of a learning run from its audit log's contents, `bytes`; `path` names the log
/// in errors.
///
/// # Errors
/// A line that is not an audit record.
pub fn run_log(bytes: &[u8], path: &Path) -> Result<RunLog, String> {
    let entries = crate::usage::parse_log(bytes, path).map_err(|e| e.to_string())?;
    let mut exit = ExitFacts::default();
    let mut recording_stopped = false;
    for e in &entries {
        match &e.event {
            Event::Limit(l) if l.limit == "recorded-operations" => recording_stopped = true,
            Event::Exit(x) => {
                exit = ExitFacts {
                    outcome: Some(x.outcome.clone()),
                    wall_ms: x.wall_ms,
                    peak_memory: x.peak_memory,
                    output_bytes: x.output_bytes,
                    egress_bytes: x.egress_bytes,
                    fuel_used: x.fuel_used,
                    usage: x.usage.clone(),
                };
            }
            _ => {}
        }
    }
    let run = entries.first().map(|e| e.run.clone());
    Ok(RunLog {
        entries,
        exit,
        run,
        recording_stopped,
    })
}

/// What `learn` works from.
#[derive(Debug)]
pub struct Input<'a> {
    /// The upper bound.
    pub broad: &'a Policy,
    /// Where BROAD was read from, for the header.
    pub broad_path: &'a Path,
    /// The learning run's audit log.
    pub log: &'a RunLog,
    /// The date of the run, for the header.
    pub date: &'a str,
    /// The module's bytes when they could be read: its digest goes in the header and its
    /// imports decide stdin, clocks and random.
    pub module: Option<&'a [u8]>,
    /// `--append`: the earlier LEARNED, and its text (whose header lines are kept).
    pub earlier: Option<(&'a Policy, &'a str)>,
    /// Whether a directory grant may become single-file grants (see `MAX_SINGLE_FILES`).
    pub single_files: bool,
}

/// A TOML basic string on one line: `"` and `\` escaped, every control character as
/// `\uXXXX` (the toml crate would write a multi-line string for a value with a newline).
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch if ch.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// Text for a comment: control characters (a newline in a guest's path, say) could end the
/// comment and smuggle TOML into LEARNED, so each becomes `?`.
fn c(s: &str) -> String {
    s.chars()
        .map(|ch| if ch.is_control() { '?' } else { ch })
        .collect()
}

/// A bare TOML key if `k` can be one, else a quoted key.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        k.to_owned()
    } else {
        q(k)
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A size as the manifest writes it: `NMiB`, `NKiB` or bytes.
fn size(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("\"{}MiB\"", bytes / MIB)
    } else if bytes.is_multiple_of(KIB) {
        format!("\"{}KiB\"", bytes / KIB)
    } else {
        bytes.to_string()
    }
}

fn duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    }
}

/// `max(peak × 2, 16 MiB)`, rounded up to a MiB, at most `broad`.
pub(crate) fn memory_limit(peak: u64, broad: u64) -> u64 {
    let want = peak.saturating_mul(HEADROOM).max(MIN_MEMORY);
    want.div_ceil(MIB).saturating_mul(MIB).min(broad)
}

/// `max(wall × 3, 5 s)`, rounded up to a second, at most `broad` (all in ms).
pub(crate) fn wall_limit_ms(wall_ms: u64, broad_ms: u64) -> u64 {
    let want = wall_ms.saturating_mul(WALL_HEADROOM).max(MIN_WALL_MS);
    want.div_ceil(1000).saturating_mul(1000).min(broad_ms)
}

/// `max(output × 2, 64 KiB)`, rounded up to a KiB, at most `broad`.
pub(crate) fn output_limit(bytes: u64, broad: u64) -> u64 {
    let want = bytes.saturating_mul(HEADROOM).max(MIN_OUTPUT);
    want.div_ceil(KIB).saturating_mul(KIB).min(broad)
}

/// `max(requests × 2, 10)`, at most `broad`.
pub(crate) fn http_requests_limit(requests: u64, broad: u64) -> u64 {
    requests
        .saturating_mul(HEADROOM)
        .max(MIN_HTTP_REQUESTS)
        .min(broad)
}

/// `egress` (bytes): `max(observed × 2, 1 MiB)` rounded up to a KiB, at most `broad`.
pub(crate) fn egress_limit(bytes: u64, broad: u64) -> u64 {
    let want = bytes.saturating_mul(HEADROOM).max(MIN_EGRESS);
    want.div_ceil(KIB).saturating_mul(KIB).min(broad)
}

/// The narrowest path prefix covering `paths`, within `broad` (a rule's path): the longest
/// common prefix when every path is it or continues below it with `/`, else that prefix cut
/// after its last `/`. `broad` itself when nothing narrower lies within it.
pub(crate) fn narrow_prefix(paths: &BTreeSet<String>, broad: &str) -> String {
    let mut it = paths.iter();
    let Some(first) = it.next() else {
        return broad.to_owned();
    };
    let mut lcp: &str = first;
    for p in it {
        let n = lcp
            .char_indices()
            .zip(p.chars())
            .find(|((_, a), b)| a != b)
            .map_or(lcp.len().min(p.len()), |((i, _), _)| i);
        lcp = lcp.get(..n).unwrap_or("");
    }
    let exact = !lcp.is_empty()
        && paths.iter().all(|p| {
            p == lcp
                || (lcp.ends_with('/') && p.starts_with(lcp))
                || p.get(lcp.len()..).is_some_and(|r| r.starts_with('/'))
        });
    let prefix = if exact {
        lcp.to_owned()
    } else {
        match lcp.rfind('/') {
            Some(i) => lcp.get(..=i).unwrap_or("/").to_owned(),
            None => "/".to_owned(),
        }
    };
    if prefix_within(&prefix, broad) {
        prefix
    } else {
        broad.to_owned()
    }
}

/// Whether everything `prefix` covers, `broad` covers too (both paths of rules).
fn prefix_within(prefix: &str, broad: &str) -> bool {
    broad == "/"
        || prefix == broad
        || (broad.ends_with('/') && prefix.starts_with(broad))
        || prefix
            .strip_prefix(broad)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `scheme://authority` of a rule's URL as written.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url.get(after..).and_then(|rest| rest.find('/')) {
        Some(i) => url.get(..after + i).unwrap_or(url),
        None => url,
    }
}

/// A guest path with `.` segments and repeated `/` removed and `..` applied.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The path below `grant` (a guest path), if `path` is at or below it.
fn below<'p>(path: &'p str, grant: &str) -> Option<&'p str> {
    if path == grant {
        return Some("");
    }
    if grant == "/" {
        return path.strip_prefix('/');
    }
    path.strip_prefix(grant)
        .and_then(|rest| rest.strip_prefix('/'))
}

#[derive(Debug, Default, Clone)]
struct HttpSeen {
    methods: BTreeMap<String, u64>,
    /// Path → method → requests.
    paths: BTreeMap<String, BTreeMap<String, u64>>,
    earlier: bool,
}

#[derive(Debug, Default, Clone)]
struct FilesSeen {
    /// Guest path → written.
    paths: BTreeMap<String, bool>,
    /// Operations on the folder itself or on its entries as entries (list, create a folder,
    /// remove, rename, link): a single-file grant could not allow them.
    folder_ops: BTreeSet<String>,
    write: bool,
    /// The earlier LEARNED had the whole folder.
    whole: bool,
    earlier: bool,
    ops: u64,
}

impl FilesSeen {
    fn touched(&self) -> bool {
        !self.paths.is_empty() || !self.folder_ops.is_empty() || self.whole || self.earlier
    }
}

/// Operations a single-file grant cannot serve: they act on a folder's entries.
const FOLDER_OPS: &[&str] = &[
    "path_create_directory",
    "path_remove_directory",
    "path_unlink_file",
    "path_rename",
    "path_symlink",
    "path_link",
    "path_readlink",
    // components (`wasi:filesystem`)
    "create-directory-at",
    "remove-directory-at",
    "unlink-file-at",
    "rename-at",
    "symlink-at",
    "link-at",
    "readlink-at",
    "read-directory",
];

/// `[clocks] wall`, `[random] secure`: how the "not learned" list names a clock or random.
fn section_key(cap: &str, target: &str) -> String {
    match cap {
        "clock" => format!("[clocks] {target}"),
        "stdio" => format!("[stdio] {target}"),
        _ => format!("[random] {target}"),
    }
}

/// Whether a file `allow` record is an operation the guest made (not a grant's own `allow`
/// at the start of a run, nor a copy-back).
fn is_fs_op(op: &str) -> bool {
    !matches!(op, "grant" | "copy-back")
}

/// The observations of one run (and, with `--append`, of the earlier LEARNED).
struct Observed {
    rules: HttpRules,
    http: Vec<HttpSeen>,
    requests: u64,
    /// Per secret: injected, opened, revealed.
    secrets: BTreeMap<String, [u64; 3]>,
    /// Per `[network]` entry: lookups, connections.
    net: BTreeMap<String, [u64; 2]>,
    files: Vec<FilesSeen>,
    /// Path operations through a descriptor that is not a grant's (cannot be placed).
    unplaced: u64,
    /// Clocks and random the guest called: `("clock", "wall")`, `("random", "secure")`, …
    /// (see [`warden::audit::USED`]).
    used: BTreeSet<(String, String)>,
}

fn observe(input: &Input<'_>) -> Observed {
    let broad = input.broad;
    let id = &broad.identity.id;
    let rules = HttpRules::new(&broad.http);
    let mut o = Observed {
        http: vec![HttpSeen::default(); rules.rules().len()],
        rules,
        requests: 0,
        secrets: BTreeMap::new(),
        net: BTreeMap::new(),
        files: vec![FilesSeen::default(); broad.files.len()],
        unplaced: 0,
        used: BTreeSet::new(),
    };
    for e in input.log.entries.iter().filter(|e| &e.identity == id) {
        let Event::Decision(d) = &e.event else {
            continue;
        };
        // Only what was allowed, and named by its operation (a log of an earlier warden,
        // without `op`, teaches nothing).
        let (Decision::Allow, Some(op)) = (d.decision, d.op.as_deref()) else {
            continue;
        };
        let (capability, target, grant) = (d.capability.as_str(), &d.target, d.grant.as_deref());
        match (capability, op) {
            ("clock" | "random" | "stdio", "use") => {
                o.used.insert((capability.to_owned(), target.clone()));
            }
            ("http", "request") => o.http_request(target, grant),
            ("secret", "inject" | "open" | "reveal") => {
                let slot = match op {
                    "inject" => 0,
                    "open" => 1,
                    _ => 2,
                };
                o.secrets.entry(target.clone()).or_default()[slot] += 1;
            }
            ("net", "lookup" | "connect") => {
                let Some(entry) = grant else {
                    continue;
                };
                let slot = usize::from(op != "lookup");
                o.net.entry(entry.to_owned()).or_default()[slot] += 1;
            }
            ("fs", op) if is_fs_op(op) => o.fs_op(
                broad,
                target,
                op,
                d.access == Some(warden::audit::Access::Write),
                d.folder,
            ),
            _ => {}
        }
    }
    if let Some((prev, _)) = input.earlier {
        o.earlier(broad, prev);
    }
    o
}

impl Observed {
    fn http_request(&mut self, target: &str, grant: Option<&str>) {
        let Some((method, url)) = target.split_once(' ') else {
            return;
        };
        self.requests += 1;
        let parsed = url
            .parse::<http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|uri| Target::of(&uri));
        let (index, path) = match parsed {
            Ok(t) => {
                // By position, not URL: two rules may share a URL with different methods.
                let i = self.rules.check(method, &t).ok().and_then(|rule| {
                    self.rules
                        .rules()
                        .iter()
                        .position(|r| std::ptr::eq(r, rule))
                });
                (i, Some(t.path))
            }
            // A URL the log redacted: the rule the record names, with its own prefix.
            Err(_) => {
                let i = self.rules.rules().iter().position(|r| {
                    Some(r.url.as_str()) == grant && r.methods.iter().any(|m| m == method)
                });
                (i, None)
            }
        };
        let Some(i) = index else {
            return;
        };
        let path = path.unwrap_or_else(|| self.rules.rules()[i].prefix.path.clone());
        let seen = &mut self.http[i];
        *seen.methods.entry(method.to_owned()).or_default() += 1;
        *seen
            .paths
            .entry(path)
            .or_default()
            .entry(method.to_owned())
            .or_default() += 1;
    }

    fn fs_op(&mut self, broad: &Policy, target: &str, op: &str, write: bool, folder: bool) {
        if target.starts_with('<') {
            self.unplaced += 1;
            return;
        }
        let path = normalise(target);
        let Some(i) = broad
            .files
            .iter()
            .position(|g| below(&path, &g.guest).is_some())
        else {
            return;
        };
        let grant = &broad.files[i];
        let seen = &mut self.files[i];
        seen.ops += 1;
        seen.write |= write;
        let at_root = path == grant.guest;
        if grant.kind == FileKind::Dir && (at_root || folder || FOLDER_OPS.contains(&op)) {
            seen.folder_ops.insert(op.to_owned());
        }
        if !(grant.kind == FileKind::Dir && at_root) {
            *seen.paths.entry(path).or_default() |= write;
        }
    }

    /// `--append`: the earlier LEARNED's grants count as observed.
    fn earlier(&mut self, broad: &Policy, prev: &Policy) {
        for r in &prev.http {
            let Ok(p) = UrlPrefix::parse(&r.url) else {
                continue;
            };
            let t = Target {
                https: p.https,
                host: p.host,
                port: p.port,
                path: p.path,
            };
            for m in &r.methods {
                let Some(i) = self
                    .rules
                    .check(m, &t)
                    .ok()
                    .and_then(|rule| self.rules.rules().iter().position(|x| x.url == rule.url))
                else {
                    continue;
                };
                let seen = &mut self.http[i];
                seen.methods.entry(m.clone()).or_default();
                seen.paths
                    .entry(t.path.clone())
                    .or_default()
                    .entry(m.clone())
                    .or_default();
                seen.earlier = true;
            }
        }
        for s in &prev.secrets {
            let counts = self.secrets.entry(s.name.clone()).or_default();
            if s.reveal {
                counts[2] = counts[2].max(1);
            }
        }
        for n in &prev.network {
            self.net.entry(n.to_string()).or_default();
        }
        for f in &prev.files {
            let Some(i) = broad
                .files
                .iter()
                .position(|g| below(&f.guest, &g.guest).is_some())
            else {
                continue;
            };
            let grant = &broad.files[i];
            let seen = &mut self.files[i];
            seen.earlier = true;
            let write = f.access == Access::ReadWrite;
            seen.write |= write;
            if grant.kind == FileKind::Dir && f.kind == FileKind::Dir {
                seen.whole = true;
            } else {
                *seen.paths.entry(f.guest.clone()).or_default() |= write;
            }
        }
    }
}

/// The module's SHA-256, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, byte| {
            let _ = write!(s, "{byte:02x}");
            s
        })
}

/// Writes LEARNED for `input`, as TOML text.
///
/// Kept whole: LEARNED's sections written in order into one text; each section's decision
/// is a few lines that share what the run observed, what the module can use and what was
/// dropped (listed at the end).
pub fn learn(input: &Input<'_>) -> String {
    let broad = input.broad;
    let o = observe(input);
    let lint = input
        .module
        .and_then(|bytes| crate::check::module_lint(broad, bytes).ok());
    let earlier = input.earlier.map(|(p, _)| p);
    let mut out = String::new();
    let mut dropped: Vec<String> = Vec::new();

    header(&mut out, input);
    identity_and_workload(&mut out, broad);
    files(
        &mut out,
        &mut dropped,
        input,
        &o,
        lint.as_ref().map(|l| l.is_component),
    );

    // [env]: all of it or none (which names a guest reads is not knowable), none when the
    // run's exit record says the guest never read its environment (and no earlier LEARNED
    // of --append has it).
    let env_read = input.log.exit.usage.as_ref().map(|u| u.env);
    let earlier_env = input.earlier.is_some_and(|(p, _)| !p.env.is_empty());
    if !broad.env.is_empty() && env_read == Some(false) && !earlier_env {
        dropped.push(format!(
            "[env] ({}): the guest never read its environment",
            list(broad.env.iter().map(|v| &v.name))
        ));
    } else if !broad.env.is_empty() {
        let why = match env_read {
            Some(true) => {
                "the guest read its environment; which variables it looked at is \
                           not knowable, so all of them"
            }
            _ => "whether the guest reads a variable is not observable",
        };
        let _ = writeln!(out, "\n# kept from BROAD: {why}.");
        let _ = writeln!(out, "[env]");
        for v in &broad.env {
            match &v.source {
                EnvSource::Literal => {
                    let _ = writeln!(out, "{} = {}", key(&v.name), q(&v.value));
                }
                EnvSource::FromHost(h) => {
                    let _ = writeln!(out, "{} = {{ from-host = {} }}", key(&v.name), q(h));
                }
            }
        }
    }

    // stdin, clocks, random: dropped when the module cannot use them.
    let cannot = |cap: &str, target: &str| -> Option<String> {
        lint.as_ref().and_then(|l| {
            l.cannot_use
                .iter()
                .find(|f| f.capability == cap && f.target == target)
                .map(|f| f.reason.clone())
        })
    };
    // stdin, a clock or random is kept when the guest used it (or an earlier LEARNED had it);
    // dropped when the module cannot use it, or could but did not.
    let mut decide = |cap: &str, target: &str, before: bool| -> Option<String> {
        if let Some(why) = cannot(cap, target)
            && !before
        {
            dropped.push(format!("{}: {}", section_key(cap, target), c(&why)));
            return None;
        }
        if o.used.contains(&(cap.to_owned(), target.to_owned())) {
            return Some(format!(
                "# {target}: observed: the guest used it{}",
                if before {
                    "; earlier runs included"
                } else {
                    ""
                }
            ));
        }
        if before {
            return Some(format!("# {target}: kept: an earlier LEARNED had it"));
        }
        if lint.is_none() {
            return Some(format!(
                "# {target} kept: the module was not read, so its imports are not known"
            ));
        }
        dropped.push(format!(
            "{}: imported by the module but never used in the run",
            section_key(cap, target)
        ));
        None
    };
    let mut stdio = String::new();
    if broad.stdio.stdin == StdinMode::Inherit {
        let before = earlier.is_some_and(|p| p.stdio.stdin == StdinMode::Inherit);
        if let Some(note) = decide("stdio", "stdin", before) {
            let _ = writeln!(stdio, "{note}");
            let _ = writeln!(stdio, "stdin = \"inherit\"");
        }
    }
    if broad.stdio.stdout == OutputMode::Null {
        let _ = writeln!(stdio, "stdout = \"null\"");
    }
    if broad.stdio.stderr == OutputMode::Null {
        let _ = writeln!(stdio, "stderr = \"null\"");
    }
    if !stdio.is_empty() {
        let _ = write!(out, "\n[stdio]\n{stdio}");
    }
    let mut clocks = String::new();
    for (name, granted, before) in [
        (
            "wall",
            broad.clocks.wall,
            earlier.is_some_and(|p| p.clocks.wall),
        ),
        (
            "monotonic",
            broad.clocks.monotonic,
            earlier.is_some_and(|p| p.clocks.monotonic),
        ),
    ] {
        if !granted {
            continue;
        }
        if let Some(note) = decide("clock", name, before) {
            let _ = writeln!(clocks, "{note}");
            let _ = writeln!(clocks, "{name} = true");
        }
    }
    if !clocks.is_empty() {
        let _ = write!(out, "\n[clocks]\n{clocks}");
    }
    if broad.random.secure
        && let Some(note) = decide("random", "secure", earlier.is_some_and(|p| p.random.secure))
    {
        let _ = writeln!(out, "\n[random]\n{note}\nsecure = true");
    }

    network(&mut out, &mut dropped, broad, &o, earlier);
    http(&mut out, &mut dropped, &o);
    secrets(&mut out, &mut dropped, broad, &o, earlier);
    limits(&mut out, input, &o);

    if !dropped.is_empty() {
        let _ = writeln!(out, "\n# Granted by BROAD, not learned:");
        for d in dropped {
            let _ = writeln!(out, "#   {d}");
        }
    }
    out
}

fn header(out: &mut String, input: &Input<'_>) {
    let run = input.log.run.as_deref().unwrap_or("(no records)");
    let _ = writeln!(
        out,
        "# Learned by `warden learn`: what the workload used in its runs under BROAD, no more."
    );
    let _ = writeln!(
        out,
        "# A proposal for a person to review before it is used (docs/learn.md); the comments"
    );
    let _ = writeln!(out, "# say what was observed for each grant.");
    let _ = writeln!(
        out,
        "# BROAD: {}",
        c(&absolute(input.broad_path).display().to_string())
    );
    if let Some((_, text)) = input.earlier {
        for line in text
            .lines()
            .filter(|l| l.starts_with("# learned from run "))
        {
            let _ = writeln!(out, "{line}");
        }
    }
    let ended = match input.log.exit.outcome.as_deref() {
        Some("exited") => String::new(),
        Some(o) => format!(
            " (the run ended as {}: what it would have done next is not observed)",
            c(o)
        ),
        None => " (no exit record: the run did not finish)".to_owned(),
    };
    let _ = writeln!(
        out,
        "# learned from run {} on {}, module sha256 {}{ended}",
        c(run),
        c(input.date),
        input
            .module
            .map_or_else(|| "(module not read)".to_owned(), sha256_hex),
    );
    if input.earlier.is_some() {
        let _ = writeln!(
            out,
            "# --append: the union of the runs above (each grant of the earlier LEARNED kept)."
        );
    }
}

fn identity_and_workload(out: &mut String, broad: &Policy) {
    let _ = writeln!(out, "\n[identity]");
    let _ = writeln!(out, "name = {}", q(&broad.identity.name));
    let _ = writeln!(out, "id = {}", q(&broad.identity.id));
    if let Some(owner) = &broad.identity.owner {
        let _ = writeln!(out, "owner = {}", q(owner));
    }
    let mut workload = String::new();
    if let Some(m) = &broad.module {
        let _ = writeln!(
            workload,
            "module = {}",
            q(&absolute(m).display().to_string())
        );
    }
    if let Some(pin) = &broad.sha256 {
        let _ = writeln!(workload, "sha256 = {}", q(pin));
    }
    if !broad.args.is_empty() {
        let args: Vec<String> = broad.args.iter().map(|a| q(a)).collect();
        let _ = writeln!(workload, "args = [{}]", args.join(", "));
    }
    if let Some(cwd) = &broad.cwd {
        let _ = writeln!(workload, "cwd = {}", q(cwd));
    }
    if let Some(inv) = &broad.invoke {
        let _ = writeln!(workload, "invoke = {}", q(inv));
    }
    if !workload.is_empty() {
        let _ = write!(out, "\n[workload]\n{workload}");
    }
}

/// Kept whole: one pass over BROAD's file grants with what the run did under each, deciding
/// each grant's narrowest form in one place.
fn files(
    out: &mut String,
    dropped: &mut Vec<String>,
    input: &Input<'_>,
    o: &Observed,
    is_component: Option<bool>,
) {
    let broad = input.broad;
    for (grant, seen) in broad.files.iter().zip(&o.files) {
        let access = |write: bool| {
            if write && grant.access == Access::ReadWrite {
                "read-write"
            } else {
                "read"
            }
        };
        let host = grant.host.display().to_string();
        let broad_access = access(true);
        if is_component.is_none() {
            let why = "the module could not be read: its imports are unknown";
            let _ = writeln!(out, "\n# kept from BROAD: {why}");
            emit_file(out, &host, &grant.guest, broad_access);
            continue;
        }
        // Past the recording bound the run's file operations are not all known: every file
        // grant stays as BROAD has it, and says why (none is called unused).
        if input.log.recording_stopped {
            let _ = writeln!(
                out,
                "\n# kept from BROAD: recording stopped at {} distinct file operations (the \
                 bound of one run); what the run did after that is unknown",
                warden::audit::MAX_RECORDED_OPS
            );
            emit_file(out, &host, &grant.guest, broad_access);
            continue;
        }
        if !seen.touched() {
            if o.unplaced > 0 && grant.kind == FileKind::Dir {
                let _ = writeln!(
                    out,
                    "\n# kept from BROAD: {} operation{} through a descriptor warden cannot \
                     place on a grant",
                    o.unplaced,
                    plural(o.unplaced)
                );
                emit_file(out, &host, &grant.guest, broad_access);
            } else {
                dropped.push(format!(
                    "[[files]] {} ({broad_access}): no operation on it",
                    c(&grant.guest)
                ));
            }
            continue;
        }
        let also = if seen.earlier {
            "; earlier runs included"
        } else {
            ""
        };
        let rw = |w: bool| if w { "written" } else { "read" };
        if grant.kind == FileKind::File {
            let _ = writeln!(
                out,
                "\n# observed: {} ({} operation{}{also})",
                rw(seen.write),
                seen.ops,
                plural(seen.ops),
            );
            emit_file(out, &host, &grant.guest, access(seen.write));
            continue;
        }
        match single_files(input.single_files && o.unplaced == 0, grant, seen) {
            Some(singles) => {
                for (h, p, w) in singles {
                    let _ = writeln!(
                        out,
                        "\n# observed: {} under the BROAD folder {} ({} file{} touched there, at \
                         most {MAX_SINGLE_FILES} become single files{also})",
                        rw(w),
                        c(&grant.guest),
                        seen.paths.len(),
                        plural(seen.paths.len() as u64),
                    );
                    emit_file(out, &h.display().to_string(), p, access(w));
                }
            }
            None => {
                let why = if seen.whole {
                    "the earlier LEARNED had the folder".to_owned()
                } else if !seen.folder_ops.is_empty() {
                    format!(
                        "operations on the folder or its entries ({})",
                        seen.folder_ops
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else if seen.paths.len() > MAX_SINGLE_FILES {
                    format!("more than {MAX_SINGLE_FILES} files touched")
                } else {
                    "a touched path is not a plain file on the host, or read and written files \
                     share a folder"
                        .to_owned()
                };
                let listed = list(seen.paths.keys());
                let _ = writeln!(
                    out,
                    "\n# observed: {} {} path{} under this folder{}{also}",
                    if seen.write {
                        "read and written,"
                    } else {
                        "read,"
                    },
                    seen.paths.len(),
                    plural(seen.paths.len() as u64),
                    if listed.is_empty() {
                        String::new()
                    } else {
                        format!(" ({listed})")
                    },
                );
                let _ = writeln!(out, "# the folder is kept: {why}");
                emit_file(out, &host, &grant.guest, access(seen.write));
            }
        }
    }
}

/// The single-file grants for a folder's touched paths, when the rule allows them: at most
/// [`MAX_SINGLE_FILES`], each a regular file on the host (not a symlink), no operation on
/// the folder or its entries, and no guest folder holding both read and written files.
fn single_files<'s>(
    allowed: bool,
    grant: &warden::manifest::FileGrant,
    seen: &'s FilesSeen,
) -> Option<Vec<(PathBuf, &'s String, bool)>> {
    if !allowed
        || seen.whole
        || !seen.folder_ops.is_empty()
        || seen.paths.is_empty()
        || seen.paths.len() > MAX_SINGLE_FILES
    {
        return None;
    }
    let mut singles = Vec::new();
    let mut by_folder: BTreeMap<&str, BTreeSet<bool>> = BTreeMap::new();
    for (p, w) in &seen.paths {
        let rel = below(p, &grant.guest)?;
        if rel.is_empty() {
            return None;
        }
        let h = grant.host.join(rel);
        // A plain file, and inside the grant on the host now (a folder on the way that is a
        // symlink must not lead out of it).
        if !std::fs::symlink_metadata(&h).is_ok_and(|m| m.is_file())
            || !std::fs::canonicalize(&h).is_ok_and(|real| real.starts_with(&grant.host))
        {
            return None;
        }
        let parent = p.rsplit_once('/').map_or("/", |(d, _)| d);
        by_folder.entry(parent).or_default().insert(*w);
        singles.push((h, p, *w));
    }
    by_folder
        .values()
        .all(|set| set.len() == 1)
        .then_some(singles)
}

fn network(
    out: &mut String,
    dropped: &mut Vec<String>,
    broad: &Policy,
    o: &Observed,
    earlier: Option<&Policy>,
) {
    // Not learned (yet): listening sockets and UDP peers. LEARNED leaves them out, narrower
    // than BROAD, and says so.
    for l in &broad.listen {
        dropped.push(format!(
            "[network] listen {}: listen entries are not learned; add it back if the workload \
             listens",
            c(&l.entry)
        ));
    }
    for u in &broad.udp {
        dropped.push(format!(
            "[network] udp {}: udp entries are not learned; add it back if the workload uses it",
            c(&u.entry)
        ));
    }
    let mut kept = String::new();
    for n in &broad.network {
        let Some([lookups, connects]) = o.net.get(n.as_str()).copied() else {
            dropped.push(format!(
                "[network] {}: no lookup or connection used it",
                c(n)
            ));
            continue;
        };
        let _ = writeln!(
            kept,
            "  # observed: {lookups} lookup{}, {connects} connection{}{}",
            plural(lookups),
            plural(connects),
            if earlier.is_some_and(|p| p.network.contains(n)) {
                "; and in earlier runs"
            } else {
                ""
            }
        );
        let _ = writeln!(kept, "  {},", q(n));
    }
    if !kept.is_empty() {
        let _ = write!(out, "\n[network]\nconnect = [\n{kept}]\n");
    }
}

/// The first path segment below the rule's own path: requests are grouped by it, one learned
/// rule each, so that `/v1/charges` and `/hooks/receipts` under a BROAD rule for `/` become
/// two narrow rules rather than `/` again.
fn group_of<'p>(path: &'p str, rule_path: &str) -> &'p str {
    let rest = if rule_path.ends_with('/') {
        path.strip_prefix(rule_path).unwrap_or(path)
    } else {
        path.strip_prefix(rule_path).unwrap_or("")
    };
    rest.trim_start_matches('/').split('/').next().unwrap_or("")
}

fn http(out: &mut String, dropped: &mut Vec<String>, o: &Observed) {
    for (rule, seen) in o.rules.rules().iter().zip(&o.http) {
        if seen.methods.is_empty() {
            dropped.push(format!(
                "[[http]] {} ({}): no request used it",
                c(&rule.url),
                rule.methods.join(", ")
            ));
            continue;
        }
        let unused: Vec<&str> = rule
            .methods
            .iter()
            .filter(|m| !seen.methods.contains_key(m.as_str()))
            .map(String::as_str)
            .collect();
        let mut groups: BTreeMap<&str, BTreeMap<&String, &BTreeMap<String, u64>>> = BTreeMap::new();
        for (path, methods) in &seen.paths {
            groups
                .entry(group_of(path, &rule.prefix.path))
                .or_default()
                .insert(path, methods);
        }
        for paths in groups.values() {
            let mut used: BTreeMap<&str, u64> = BTreeMap::new();
            for methods in paths.values() {
                for (m, n) in *methods {
                    *used.entry(m.as_str()).or_default() += n;
                }
            }
            let methods: Vec<String> = rule
                .methods
                .iter()
                .filter(|m| used.contains_key(m.as_str()))
                .map(|m| q(m))
                .collect();
            let path_set: BTreeSet<String> = paths.keys().map(|p| (*p).clone()).collect();
            let prefix = narrow_prefix(&path_set, &rule.prefix.path);
            let total: u64 = used.values().sum();
            let counts: Vec<String> = used.iter().map(|(m, n)| format!("{n} {m}")).collect();
            let _ = writeln!(
                out,
                "\n# observed: {total} request{} ({}){}: {}",
                plural(total),
                counts.join(", "),
                if seen.earlier {
                    "; earlier runs' rules included"
                } else {
                    ""
                },
                list(path_set.iter())
            );
            let _ = writeln!(
                out,
                "# BROAD rule: {} {}{}",
                c(&rule.url),
                rule.methods.join(","),
                if unused.is_empty() {
                    String::new()
                } else {
                    format!(" (never used: {})", unused.join(", "))
                }
            );
            let _ = writeln!(out, "[[http]]");
            let _ = writeln!(
                out,
                "url = {}",
                q(&format!("{}{prefix}", origin(&rule.url)))
            );
            let _ = writeln!(out, "methods = [{}]", methods.join(", "));
        }
    }
}

fn secrets(
    out: &mut String,
    dropped: &mut Vec<String>,
    broad: &Policy,
    o: &Observed,
    earlier: Option<&Policy>,
) {
    for s in &broad.secrets {
        let Some([injected, opened, revealed]) = o.secrets.get(&s.name).copied() else {
            dropped.push(format!(
                "[secrets.{}]: never injected, opened or revealed",
                c(&s.name)
            ));
            continue;
        };
        let _ = writeln!(
            out,
            "\n# observed: injected {injected} time{}, opened {opened}, revealed {revealed}{}; \
             source and binding as in BROAD",
            plural(injected),
            if earlier.is_some_and(|p| p.secrets.iter().any(|x| x.name == s.name)) {
                "; and in earlier runs"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "[secrets.{}]", key(&s.name));
        let from = match &s.from {
            SecretSource::Env(v) => format!("env:{v}"),
            SecretSource::File(p) => format!("file:{}", absolute(p).display()),
        };
        let _ = writeln!(out, "from = {}", q(&from));
        if let Some(i) = &s.inject {
            let _ = writeln!(
                out,
                "inject = {{ header = {}, format = {}, url = {} }}",
                q(&i.header),
                q(&i.format),
                q(&i.url)
            );
        }
        if s.reveal {
            if revealed > 0 {
                let _ = writeln!(out, "reveal = true");
            } else {
                dropped.push(format!("[secrets.{}] reveal: never revealed", c(&s.name)));
            }
        }
    }
}

fn limits(out: &mut String, input: &Input<'_>, o: &Observed) {
    let l = &input.broad.limits;
    let x = &input.log.exit;
    let broad_wall = u64::try_from(l.wall.as_millis()).unwrap_or(u64::MAX);
    let mut memory = x
        .peak_memory
        .map_or(l.memory, |p| memory_limit(p, l.memory));
    let mut wall = x
        .wall_ms
        .map_or(broad_wall, |w| wall_limit_ms(w, broad_wall));
    let mut output = x
        .output_bytes
        .map_or(l.output, |b| output_limit(b, l.output));
    let mut http_requests = http_requests_limit(o.requests, l.http_requests);
    let mut egress = x
        .egress_bytes
        .map_or(l.egress, |b| egress_limit(b, l.egress));
    let mut fuel = l.fuel.map(|f| {
        x.fuel_used
            .map_or(f, |u| u.saturating_mul(HEADROOM).max(MIN_FUEL).min(f))
    });
    if let Some((p, _)) = input.earlier {
        let p = p.limits;
        memory = memory.max(p.memory).min(l.memory);
        wall = wall
            .max(u64::try_from(p.wall.as_millis()).unwrap_or(u64::MAX))
            .min(broad_wall);
        output = output.max(p.output).min(l.output);
        http_requests = http_requests.max(p.http_requests).min(l.http_requests);
        egress = egress.max(p.egress).min(l.egress);
        fuel = fuel.map(|f| f.max(p.fuel.unwrap_or(0)).min(l.fuel.unwrap_or(u64::MAX)));
    }
    let unknown = || "unknown".to_owned();
    let _ = writeln!(
        out,
        "\n# Limits: the observed figure with headroom, never above BROAD's: memory twice the \
         peak (at least 16MiB),"
    );
    let _ = writeln!(
        out,
        "# wall three times (at least 5s), output twice (at least 64KiB), http-requests twice \
         (at least 10),"
    );
    let _ = writeln!(
        out,
        "# egress twice (at least 1MiB), fuel twice; staged-file kept from BROAD (the exit \
         record has no figure for it)."
    );
    let _ = writeln!(
        out,
        "# observed: peak memory {} bytes, wall {} ms, output {} bytes, {} HTTP request{}, \
         egress {} bytes{}",
        x.peak_memory.map_or_else(unknown, |v| v.to_string()),
        x.wall_ms.map_or_else(unknown, |v| v.to_string()),
        x.output_bytes.map_or_else(unknown, |v| v.to_string()),
        o.requests,
        plural(o.requests),
        x.egress_bytes.map_or_else(unknown, |v| v.to_string()),
        x.fuel_used
            .map_or_else(String::new, |f| format!(", fuel {f}"))
    );
    let _ = writeln!(out, "[limits]");
    let _ = writeln!(out, "memory = {}", size(memory));
    if let Some(f) = fuel {
        let _ = writeln!(out, "fuel = {f}");
    }
    let _ = writeln!(out, "wall = {}", duration_ms(wall));
    let _ = writeln!(out, "output = {}", size(output));
    let _ = writeln!(out, "http-requests = {http_requests}");
    let _ = writeln!(out, "egress = {}", size(egress));
    let _ = writeln!(out, "staged-file = {}", size(l.staged_file));
    // Kept from BROAD too (no figure in the exit record); left out at the default, which is
    // also the maximum, so that LEARNED is never above BROAD's.
    if l.handles != warden::manifest::Limits::DEFAULT_HANDLES {
        let _ = writeln!(out, "handles = {}", l.handles);
    }
}

fn emit_file(out: &mut String, host: &str, guest: &str, access: &str) {
    let _ = writeln!(out, "[[files]]");
    let _ = writeln!(out, "host = {}", q(host));
    let _ = writeln!(out, "guest = {}", q(guest));
    let _ = writeln!(out, "access = {}", q(access));
}

/// Up to [`MAX_LISTED`] items, comma-separated, with how many more.
fn list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&String> = items.collect();
    let mut s = all
        .iter()
        .take(MAX_LISTED)
        .map(|p| c(p))
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > MAX_LISTED {
        let _ = write!(s, ", and {} more", all.len() - MAX_LISTED);
    }
    s
}

/// `p` as an absolute path (canonical when it exists), so that LEARNED may live anywhere.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn the_prefix_is_the_common_one_cut_at_a_slash_and_never_wider_than_the_rule() {
        assert_eq!(narrow_prefix(&set(&["/v1/charges"]), "/v1/"), "/v1/charges");
        assert_eq!(
            narrow_prefix(&set(&["/v1/charges", "/v1/charges/7"]), "/"),
            "/v1/charges"
        );
        assert_eq!(
            narrow_prefix(&set(&["/v1/charges", "/v1/refunds"]), "/"),
            "/v1/"
        );
        assert_eq!(
            narrow_prefix(&set(&["/v1/chargesA", "/v1/chargesB"]), "/"),
            "/v1/"
        );
        assert_eq!(narrow_prefix(&set(&["/a/x", "/b/y"]), "/"), "/");
        // Nothing narrower within the rule: the rule's own path.
        assert_eq!(narrow_prefix(&set(&["/a/x", "/a/y"]), "/a/x"), "/a/x");
        assert_eq!(narrow_prefix(&set(&[]), "/v1/"), "/v1/");
        // Grouped by the first segment below the rule's path.
        assert_eq!(group_of("/v1/charges", "/"), "v1");
        assert_eq!(group_of("/hooks/receipts", "/"), "hooks");
        assert_eq!(group_of("/api/v1/a", "/api/"), "v1");
        assert_eq!(group_of("/api/x/y", "/api/x"), "y");
        assert_eq!(group_of("/api/x", "/api/x"), "");
    }

    const ID: &str = "spiffe://test.example/nhi";

    fn policy(body: &str) -> Policy {
        let text = format!("[identity]\nname = \"t\"\nid = \"{ID}\"\n\n{body}");
        let m = warden::Manifest::from_str_at(&text, Path::new("t.toml"), Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        Policy::from_manifest(m)
    }

    /// An allowed decision as warden writes it: the operation and the grant that decided it
    /// (`""` for none) from `how`.
    fn allow(cap: &str, target: &str, (op, grant): (&str, &str), reason: &str) -> Entry {
        let mut line = serde_json::json!({
            "ts": "2026-12-02T12:00:00.000Z", "event": "decision", "identity": ID, "run": "r1",
            "capability": cap, "target": target, "decision": "allow", "op": op,
            "reason": reason,
        });
        if !grant.is_empty() {
            line["grant"] = grant.into();
        }
        crate::usage::parse_line(&line.to_string()).unwrap()
    }

    fn learned(
        broad: &Policy,
        entries: Vec<Entry>,
        earlier: Option<(&Policy, &str)>,
    ) -> (Policy, String) {
        let log = RunLog {
            entries,
            exit: ExitFacts {
                outcome: Some("exited".into()),
                wall_ms: Some(10),
                peak_memory: Some(1 << 20),
                output_bytes: Some(10),
                fuel_used: None,
                egress_bytes: None,
                usage: None,
            },
            run: Some("r1".into()),
            recording_stopped: false,
        };
        let text = learn(&Input {
            broad,
            broad_path: Path::new("broad.toml"),
            log: &log,
            date: "2026-12-02T12:00:00Z",
            module: None,
            earlier,
            single_files: true,
        });
        let m = warden::Manifest::from_str_at(&text, Path::new("l.toml"), Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        (Policy::from_manifest(m), text)
    }

    const BROAD: &str = "[network]\nconnect = [\"db.example:5432\", \"10.0.0.0/8:443\"]\n\n\
        [[http]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\", \"POST\", \"DELETE\"]\n\n\
        [[http]]\nurl = \"https://hooks.example.com/x\"\nmethods = [\"POST\"]\n\n\
        [secrets.a]\nfrom = \"env:A_KEY\"\ninject = { header = \"Authorization\", format = \"Bearer {secret}\", url = \"https://api.example.com/v1/\" }\n\n\
        [secrets.b]\nfrom = \"env:B_KEY\"\nreveal = true\n";

    #[test]
    fn http_network_and_secrets_are_learned_from_records_and_appended_as_a_union() {
        let broad = policy(BROAD);
        let (l, text) = learned(
            &broad,
            vec![
                allow(
                    "http",
                    "GET https://api.example.com/v1/charges/7?x=1",
                    ("request", "https://api.example.com/"),
                    "[[http]] https://api.example.com/ GET",
                ),
                allow(
                    "http",
                    "GET https://api.example.com/v1/charges/8",
                    ("request", "https://api.example.com/"),
                    "[[http]] https://api.example.com/ GET",
                ),
                allow(
                    "secret",
                    "a",
                    ("inject", "a"),
                    "injected into GET https://api.example.com/v1/charges/7 (the URL is within its binding)",
                ),
                allow(
                    "net",
                    "db.example",
                    ("lookup", "db.example:5432"),
                    "lookup: connect entry \"db.example:5432\" -> [192.0.2.7]",
                ),
            ],
            None,
        );
        let rules: Vec<(&str, Vec<&str>)> = l
            .http
            .iter()
            .map(|r| {
                (
                    r.url.as_str(),
                    r.methods.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            rules,
            [("https://api.example.com/v1/charges/", vec!["GET"])],
            "{text}"
        );
        assert_eq!(l.network, ["db.example:5432"], "{text}");
        let names: Vec<&str> = l.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a"], "{text}");
        assert!(l.secrets[0].inject.is_some() && !l.secrets[0].reveal);
        assert!(text.contains("[[http]] https://hooks.example.com/x (POST): no request used it"));
        assert!(text.contains("[network] 10.0.0.0/8:443: no lookup or connection used it"));
        assert_eq!(l.limits.memory, MIN_MEMORY);
        assert_eq!(l.limits.http_requests, MIN_HTTP_REQUESTS);

        // --append: a POST elsewhere under /v1/ and the hooks rule; the union of both runs.
        let (u, text) = learned(
            &broad,
            vec![
                allow(
                    "http",
                    "POST https://api.example.com/v1/refunds",
                    ("request", "https://api.example.com/"),
                    "[[http]] https://api.example.com/ POST",
                ),
                allow(
                    "http",
                    "POST https://hooks.example.com/x/1",
                    ("request", "https://hooks.example.com/x"),
                    "[[http]] https://hooks.example.com/x POST",
                ),
            ],
            Some((&l, &text)),
        );
        let rules: Vec<(&str, Vec<&str>)> = u
            .http
            .iter()
            .map(|r| {
                (
                    r.url.as_str(),
                    r.methods.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            rules,
            [
                ("https://api.example.com/v1/", vec!["GET", "POST"]),
                ("https://hooks.example.com/x/1", vec!["POST"]),
            ],
            "{text}"
        );
        assert_eq!(u.network, ["db.example:5432"], "{text}");
        assert_eq!(u.secrets.len(), 1, "{text}");
        assert_eq!(text.matches("# learned from run r1").count(), 2, "{text}");
    }

    #[test]
    fn handles_stay_at_broads_and_listen_and_udp_are_not_learned() {
        let broad = policy(
            "[network]\nlisten = [\"127.0.0.1:8080\"]\nudp = [\"127.0.0.1:53\"]\n\n\
             [limits]\nhandles = 1000\n",
        );
        let (l, text) = learned(&broad, Vec::new(), None);
        assert_eq!(l.limits.handles, 1000, "{text}");
        assert!(l.listen.is_empty() && l.udp.is_empty(), "{text}");
        assert!(text.contains("listen entries are not learned"), "{text}");
        // Control: at the default, LEARNED keeps the default (which is also the maximum).
        let (l, text) = learned(&policy(""), Vec::new(), None);
        assert_eq!(
            l.limits.handles,
            warden::manifest::Limits::DEFAULT_HANDLES,
            "{text}"
        );
        assert!(!text.contains("handles ="), "{text}");
    }

    #[test]
    fn limits_have_headroom_floors_and_broad_as_ceiling() {
        assert_eq!(memory_limit(1, 128 * MIB), 16 * MIB);
        assert_eq!(memory_limit(20 * MIB + 1, 128 * MIB), 41 * MIB);
        assert_eq!(memory_limit(100 * MIB, 64 * MIB), 64 * MIB);
        assert_eq!(wall_limit_ms(10, 30_000), 5_000);
        assert_eq!(wall_limit_ms(4_100, 30_000), 13_000);
        assert_eq!(wall_limit_ms(20_000, 30_000), 30_000);
        assert_eq!(output_limit(100, 8 * MIB), 64 * KIB);
        assert_eq!(http_requests_limit(2, 100), 10);
        assert_eq!(egress_limit(10, 1 << 30), MIN_EGRESS);
        assert_eq!(egress_limit(3 * MIB, 1 << 30), 6 * MIB);
        assert_eq!(egress_limit(3 * MIB, 4 * MIB), 4 * MIB);
        assert_eq!(http_requests_limit(30, 20), 20);
    }

    #[test]
    fn comments_cannot_smuggle_toml_and_paths_are_placed_on_grants() {
        assert_eq!(c("/data/a\n[[files]]"), "/data/a?[[files]]");
        assert_eq!(q("a\"b\nc\\"), "\"a\\\"b\\u000Ac\\\\\"");
        let back: toml::Table = format!("k = {}", q("a\"b\nc\\\u{7f}")).parse().unwrap();
        assert_eq!(back["k"].as_str(), Some("a\"b\nc\\\u{7f}"));
        assert_eq!(normalise("/data/./x//y/../z"), "/data/x/z");
        assert_eq!(below("/data/x", "/data"), Some("x"));
        assert_eq!(below("/database", "/data"), None);
        assert_eq!(origin("http://127.0.0.1:80/v1/x"), "http://127.0.0.1:80");
    }
}
