//! From text to a [`Manifest`] in two steps: `serde` reads the text into the [`raw`] types
//! (every value checked as it is read), then [`resolve`] does what needs the world or more than
//! one value: host paths are resolved and checked, `from-host` variables read, guest paths
//! compared with one another, defaults filled in. Errors of both steps name file:line:column
//! (from `toml`'s spans) and say what was expected.

use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;
use toml::Spanned;

use super::raw::{EnvValue, RawManifest, SecretFrom};
use super::{
    Clocks, EnvSource, EnvVar, FileGrant, FileKind, HttpRule, Identity, Inject, Limits, Manifest,
    ManifestError, Random, Secret, SecretSource, Stdio, Workload,
};

type Result<T> = std::result::Result<T, ManifestError>;

/// What a missing key should have been, by key.
const MISSING: &[(&str, &str)] = &[
    (
        "name",
        "a name of lower-case letters, digits and '-', such as \"payments-connector\"",
    ),
    (
        "host",
        "a host path (relative to the manifest's folder, or absolute)",
    ),
    ("guest", "an absolute guest path such as \"/data\""),
    (
        "access",
        "\"read\" or \"read-write\" (there is no default: say which is meant)",
    ),
    ("url", super::url::URL),
    ("from", "\"env:NAME\" or \"file:PATH\""),
    ("header", "an HTTP header name such as \"Authorization\""),
    (
        "format",
        "a header value containing \"{secret}\", such as \"Bearer {secret}\"",
    ),
    (
        "from-host",
        "the name of a variable in warden's environment",
    ),
];

/// warden's own environment, where `from-host` values come from by default.
pub(super) fn host_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The manifest at `path` as text.
///
/// # Errors
/// [`ManifestError::Read`]: it cannot be read, is not a regular file, or is not UTF-8.
pub(super) fn read_text(path: &Path) -> std::result::Result<String, ManifestError> {
    // Not `std::fs::read_to_string`: a FIFO or a device named as the manifest would block
    // it forever.
    let read_err = |source| ManifestError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = crate::read_regular_file(path).map_err(read_err)?;
    String::from_utf8(bytes).map_err(|_| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

/// Parses and validates manifest `text`.
///
/// `source` names the manifest in errors; relative `module`, `host` and `file:` paths are
/// resolved against `base_dir`; `env` looks up warden's own environment for `from-host` values.
///
/// Checks that every `[[files]]` host path exists (and canonicalises it); nothing else touches
/// the filesystem.
pub(super) fn parse(
    text: &str,
    source: &Path,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest> {
    let at = Errors { text, source };
    let raw = read(&at)?;
    resolve(raw, &at, base_dir, env)
}

fn read(at: &Errors<'_>) -> Result<RawManifest> {
    let de = toml::Deserializer::parse(at.text).map_err(|e| {
        let message = e.message().lines().next().unwrap_or("").trim();
        let message = if message.is_empty() {
            "invalid TOML"
        } else {
            message
        };
        at.err(e.span().map_or(0, |s| s.start), message.to_owned())
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = dotted(e.path());
        let inner = e.into_inner();
        at.err(
            inner.span().map_or(0, |s| s.start),
            explain(inner.message(), &path),
        )
    })
}

/// `files[0].guest`, leaving out the hidden keys of `toml::Spanned`.
fn dotted(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// How errors name the table at `path`: `[limits]`, `[[files]]`, the top level.
fn table_label(path: &str) -> String {
    if path.is_empty() {
        return "at the top level".to_owned();
    }
    match path.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
        Some((array, _)) => format!("in [[{array}]]"),
        None => format!("in [{path}]"),
    }
}

/// serde's message, in the manifest's words: "path: expected …, found …", with "did you mean"
/// for a misspelt key or value.
fn explain(message: &str, path: &str) -> String {
    let message = message.lines().next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, expected) = split_expected(rest);
        // The path ends with the unknown key itself.
        let key = name.trim_matches('`');
        let path = match path.rsplit_once('.') {
            Some((table, last)) if last == key => table,
            _ if path == key => "",
            _ => path,
        };
        return format!(
            "unknown key {name} {}; expected {}{}",
            table_label(path),
            one_of(&expected),
            did_you_mean(&name, &expected)
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let key = rest.trim_matches('`');
        if key == "identity" {
            return "missing [identity] table; expected e.g. `[identity]` with \
                    `name = \"my-connector\"`"
                .to_owned();
        }
        let hint = MISSING
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("a value", |(_, h)| h);
        return format!("missing `{key}` {}; expected {hint}", table_label(path));
    }
    let body = if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (name, expected) = split_expected(rest);
        let quoted: Vec<String> = expected.iter().map(|e| format!("\"{e}\"")).collect();
        let choices = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => "nothing here".to_owned(),
        };
        format!(
            "expected {choices}, found \"{}\"{}",
            name.trim_matches('`'),
            did_you_mean(&name, &expected)
        )
    } else if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        match rest.split_once(", expected ") {
            Some((found, expected)) => {
                // serde's words for TOML's: `string "x"` is `"x"`, a boolean is true or false.
                let expected = match expected {
                    "a boolean" => "true or false".to_owned(),
                    "a sequence" if path == "files" || path == "http" => {
                        format!("an array of tables ([[{path}]])")
                    }
                    "a sequence" => "an array".to_owned(),
                    "a map" => format!("a table ([{path}])"),
                    "a table" if path.ends_with(".inject") => {
                        "{ header = \"…\", format = \"… {secret} …\", url = \"https://…\" }"
                            .to_owned()
                    }
                    "a table" if !path.is_empty() => match path.strip_suffix(']') {
                        Some(p) => {
                            format!("a table ([[{}]])", p.rsplit_once('[').map_or(p, |x| x.0))
                        }
                        None => format!("a table ([{path}])"),
                    },
                    other => other.to_owned(),
                };
                format!("expected {expected}, found {}", toml_words(found))
            }
            None => rest.to_owned(),
        }
    } else {
        message.to_owned()
    };
    if path.is_empty() {
        body
    } else {
        format!("{path}: {body}")
    }
}

/// serde's name of a value in TOML's words: `string "x"` is `"x"`, `integer `2`` is
/// `integer 2`, a sequence is an array and a map a table.
fn toml_words(found: &str) -> String {
    match found {
        "sequence" => "an array".to_owned(),
        "map" => "a table".to_owned(),
        _ => match found.strip_prefix("string ") {
            Some(s) => s.to_owned(),
            None => found.replace('`', ""),
        },
    }
}

/// "`x`, expected one of `a`, `b`" → ("`x`", ["a", "b"]).
fn split_expected(rest: &str) -> (String, Vec<String>) {
    let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
    let expected = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (name.to_owned(), expected)
}

fn one_of(expected: &[String]) -> String {
    match expected {
        [] => "no keys here".to_owned(),
        [one] => format!("`{one}`"),
        many => format!(
            "one of: {}",
            many.iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// "; did you mean `name`?" when a candidate is within two edits of `written` (in backticks).
fn did_you_mean(written: &str, candidates: &[String]) -> String {
    let written = written.trim_matches('`');
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(written, c), c))
        .filter(|(d, c)| *d <= 2 && *d < c.len().max(written.len()))
        .min_by_key(|(d, _)| *d)
        .map_or_else(String::new, |(_, c)| format!("; did you mean `{c}`?"))
}

struct Errors<'a> {
    text: &'a str,
    source: &'a Path,
}

impl Errors<'_> {
    fn err(&self, offset: usize, message: String) -> ManifestError {
        let (line, column) = line_column(self.text, offset);
        ManifestError::Invalid {
            path: self.source.to_owned(),
            line,
            column,
            message,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: String) -> ManifestError {
        self.err(value.span().start, message)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    // Count characters by skipping UTF-8 continuation bytes; safe at any byte offset.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// The raw manifest's sections turned into their resolved forms: paths made absolute against
/// `base_dir`, `from-host` values read through `env`, the checks across fields; errors placed
/// by `at`.
///
/// Kept whole: one pass over the sections, each a few lines, all needing the same base
/// folder, environment and error positions.
fn resolve(
    raw: RawManifest,
    at: &Errors<'_>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest> {
    let in_base = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base_dir.join(p)
        }
    };
    let name = raw.identity.name.0;
    let identity = Identity {
        id: raw
            .identity
            .id
            .map_or_else(|| format!("warden://local/{name}"), |u| u.0),
        owner: raw.identity.owner.map(|o| o.0),
        name,
    };
    let w = raw.workload;
    let mut files: Vec<FileGrant> = Vec::new();
    for super::raw::Table(f) in raw.files {
        let grant = file_grant(at, &f.host, &f.guest, f.access, &files, &in_base)?;
        files.push(grant);
    }
    // The working directory must be a folder the guest was granted, or lie inside one: a
    // guest told to start where it can open nothing would fail in confusing ways.
    let cwd = match w.cwd {
        None => None,
        Some(c) => {
            let path = c.get_ref().0.clone();
            let inside = files.iter().any(|g| {
                g.kind == FileKind::Dir
                    && (g.guest == "/"
                        || path == g.guest
                        || path.starts_with(&format!("{}/", g.guest)))
            });
            if !inside {
                return Err(at.at(
                    &c,
                    format!(
                        "workload.cwd: `{path}` is not inside a folder granted by [[files]] \
                         (a guest path such as \"/data\" of a folder grant, or below it)"
                    ),
                ));
            }
            Some(path)
        }
    };
    let workload = Workload {
        module: w.module.map(|m| in_base(&m.0)),
        sha256: w.sha256.map(|s| s.0),
        args: w.args.into_iter().map(|a| a.0).collect(),
        invoke: w.invoke.map(|i| i.0),
        cwd,
    };

    let mut vars = Vec::new();
    for (name, value) in raw.env.0 {
        let name = name.0;
        let (value, source) = match value.get_ref() {
            EnvValue::Literal(s) => (s.clone(), EnvSource::Literal),
            EnvValue::FromHost(from) => {
                let var = &from.get_ref().0;
                let Some(v) = env(var) else {
                    return Err(at.at(
                        from,
                        format!(
                            "env.{name}: from-host variable `{var}` is not set in warden's \
                             environment"
                        ),
                    ));
                };
                // The guest gets its environment as C strings, which a NUL byte would cut short.
                if v.contains('\0') {
                    return Err(at.at(
                        &value,
                        format!(
                            "env.{name}: the value of warden's variable `{var}` contains a NUL \
                             byte, which an environment variable cannot hold"
                        ),
                    ));
                }
                (v, EnvSource::FromHost(var.clone()))
            }
        };
        vars.push(EnvVar {
            name,
            value,
            source,
        });
    }

    let http = raw
        .http
        .into_iter()
        .map(|super::raw::Table(h)| HttpRule {
            url: h.url.text,
            prefix: h.url.prefix,
            methods: h.methods.map_or_else(
                || vec!["GET".to_owned()],
                |m| m.0.into_iter().map(|m| m.0).collect(),
            ),
        })
        .collect();

    let secrets = raw
        .secrets
        .into_iter()
        .map(|(name, super::raw::Table(s))| Secret {
            name: name.0,
            from: match s.from {
                SecretFrom::Env(var) => SecretSource::Env(var),
                SecretFrom::File(file) => SecretSource::File(in_base(&file)),
            },
            inject: s.inject.map(|i| Inject {
                header: i.header.0,
                format: i.format.0,
                url: i.url.text,
                prefix: i.url.prefix,
            }),
            reveal: s.reveal,
        })
        .collect();

    let l = raw.limits;
    let d = Limits::default();
    let limits = Limits {
        memory: l.memory.map_or(d.memory, |m| m.0.0),
        fuel: l.fuel.map(|f| f.0),
        wall: l.wall.map_or(d.wall, |w| w.0),
        output: l.output.map_or(d.output, |s| s.0),
        http_requests: l.http_requests.map_or(d.http_requests, |c| c.0),
        egress: l.egress.map_or(d.egress, |s| s.0),
        staged_file: l.staged_file.map_or(d.staged_file, |s| s.0),
        handles: l.handles.map_or(d.handles, |h| h.0),
    };

    Ok(Manifest {
        source: at.source.to_owned(),
        base_dir: base_dir.to_owned(),
        identity,
        workload,
        files,
        env: vars,
        stdio: Stdio {
            stdin: raw.stdio.stdin,
            stdout: raw.stdio.stdout,
            stderr: raw.stdio.stderr,
        },
        clocks: Clocks {
            wall: raw.clocks.wall,
            monotonic: raw.clocks.monotonic,
        },
        random: Random {
            secure: raw.random.secure,
        },
        network: raw.network.connect,
        listen: raw.network.listen,
        udp: raw.network.udp,
        http,
        secrets,
        limits,
    })
}

/// One `[[files]]` grant: its host path resolved and typed, its guest path checked against the
/// grants before it.
fn file_grant(
    at: &Errors<'_>,
    host: &Spanned<super::raw::NonEmpty>,
    guest: &Spanned<super::raw::GuestPath>,
    access: super::Access,
    earlier: &[FileGrant],
    in_base: &dyn Fn(&str) -> PathBuf,
) -> Result<FileGrant> {
    let written = host.get_ref().0.as_str();
    let resolved = in_base(written);
    let canonical = std::fs::canonicalize(&resolved).map_err(|e| {
        let shown = if resolved.as_path() == Path::new(written) {
            String::new()
        } else {
            format!(" (resolved to `{}`)", resolved.display())
        };
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            format!("cannot be resolved: {e}")
        };
        at.at(
            host,
            format!("files.host: host path `{written}`{shown} {why}"),
        )
    })?;
    // A FIFO, socket or device is neither a folder nor a file to copy: opening a FIFO would
    // block the start, so its type is checked here, without opening it.
    let kind = match std::fs::metadata(&canonical).map(|m| m.file_type()) {
        Ok(t) if t.is_dir() => FileKind::Dir,
        Ok(t) if t.is_file() => FileKind::File,
        Ok(t) => {
            return Err(at.at(
                host,
                format!(
                    "files.host: host path `{written}` is {}; expected a regular file or a \
                     directory",
                    crate::regular_file::describe(t)
                ),
            ));
        }
        Err(e) => {
            return Err(at.at(
                host,
                format!("files.host: host path `{written}` cannot be read: {e}"),
            ));
        }
    };

    let g = guest.get_ref().0.clone();
    if kind == FileKind::File && g == "/" {
        return Err(at.at(
            guest,
            format!(
                "files.guest: host path `{written}` is a single file and cannot be granted at \
                 `/`; expected a file path such as \"/config.toml\""
            ),
        ));
    }
    for e in earlier {
        if e.guest == g {
            return Err(at.at(
                guest,
                format!(
                    "files.guest: `{g}` is already granted by an earlier [[files]] entry; \
                     expected each guest path at most once"
                ),
            ));
        }
        if guest_within(&g, &e.guest) || guest_within(&e.guest, &g) {
            return Err(at.at(
                guest,
                format!(
                    "files.guest: `{g}` overlaps the earlier grant of `{}`; expected guest \
                     paths that do not lie inside one another",
                    e.guest
                ),
            ));
        }
    }
    // A staged folder is preopened either read-only or writable for the guest, so a read single
    // file beside a read-write one could be overwritten or replaced.
    if kind == FileKind::File {
        let folder = guest_parent(&g);
        if let Some(other) = earlier.iter().find(|e| {
            e.kind == FileKind::File && e.access != access && guest_parent(&e.guest) == folder
        }) {
            return Err(at.at(
                guest,
                format!(
                    "files.guest: the single file `{g}` and the earlier `{}` share the guest \
                     folder `{folder}` with different access; expected read and read-write \
                     single files in different guest folders",
                    other.guest
                ),
            ));
        }
    }
    Ok(FileGrant {
        host: canonical,
        guest: g,
        access,
        kind,
    })
}

/// The guest folder that holds a (normalised, non-root) guest path: `/etc/app.toml` → `/etc`,
/// `/app.toml` → `/`.
fn guest_parent(guest: &str) -> &str {
    match guest.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &guest[..i],
    }
}

/// Whether normalised guest path `inner` lies strictly inside `outer`.
pub(super) fn guest_within(inner: &str, outer: &str) -> bool {
    inner != outer
        && (outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|tail| tail.starts_with('/')))
}
