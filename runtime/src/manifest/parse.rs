//! Turns manifest text into a validated [`Manifest`].
//!
//! The text is parsed into a [`DeTable`], which keeps the byte span of every key and value, and
//! the table is then walked by hand. Walking by hand (rather than deriving `Deserialize`) lets
//! every error point at the exact key or value that is wrong and say what was expected there.
//!
//! Tables are iterated in the order their keys appear in the text (sorted by span), so the
//! result does not depend on whether `toml`'s `preserve_order` feature happens to be enabled,
//! and the first offending key in a table is the one reported.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    Access, Clocks, EnvSource, EnvVar, FileGrant, FileKind, HttpRule, Identity, Inject, Limits,
    Manifest, ManifestError, OutputMode, Random, Secret, SecretSource, StdinMode, Stdio, Workload,
};

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<Cow<'i, str>>;
type Result<T> = std::result::Result<T, ManifestError>;

const TOP_LEVEL_KEYS: &[&str] = &[
    "identity", "workload", "files", "env", "stdio", "clocks", "random", "network", "http",
    "secrets", "limits",
];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const MIN_MEMORY: u64 = 64 << 10;
const MAX_MEMORY: u64 = 16 << 30;
const MAX_WALL: Duration = Duration::from_secs(24 * 60 * 60);
const SIZE_HINT: &str = "a size such as \"64MiB\" (units B, KiB, MiB, GiB, KB, MB, GB) or a \
                         whole number of bytes";
const DURATION_HINT: &str = "a duration such as \"30s\" (units ms, s, m, h)";

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
) -> std::result::Result<Manifest, ManifestError> {
    let p = Parser {
        text,
        source,
        base_dir,
        env,
    };
    let root = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let message = e.message().lines().next().unwrap_or("").trim();
        let message = if message.is_empty() {
            "invalid TOML"
        } else {
            message
        };
        p.err_at(at, message.to_owned())
    })?;
    let root = Tbl {
        table: root.get_ref(),
        span: 0..0,
        name: String::new(),
        label: String::new(),
    };
    root.check_keys(&p, TOP_LEVEL_KEYS)?;

    let identity = match root.get("identity") {
        Some(v) => p.identity(&p.table(v, "identity", "[identity]")?)?,
        None => {
            return Err(p.err_at(
                0,
                "missing [identity] table; expected e.g. `[identity]` with `name = \"my-connector\"`"
                    .to_owned(),
            ));
        }
    };
    let workload = match root.get("workload") {
        Some(v) => p.workload(&p.table(v, "workload", "[workload]")?)?,
        None => Workload::default(),
    };
    let files = match root.get("files") {
        Some(v) => p.files(v)?,
        None => Vec::new(),
    };
    let env = match root.get("env") {
        Some(v) => p.env(&p.table(v, "env", "[env]")?)?,
        None => Vec::new(),
    };
    let stdio = match root.get("stdio") {
        Some(v) => p.stdio(&p.table(v, "stdio", "[stdio]")?)?,
        None => Stdio::default(),
    };
    let clocks = match root.get("clocks") {
        Some(v) => p.clocks(&p.table(v, "clocks", "[clocks]")?)?,
        None => Clocks::default(),
    };
    let random = match root.get("random") {
        Some(v) => p.random(&p.table(v, "random", "[random]")?)?,
        None => Random::default(),
    };
    let network = match root.get("network") {
        Some(v) => p.network(&p.table(v, "network", "[network]")?)?,
        None => Vec::new(),
    };
    let http = match root.get("http") {
        Some(v) => p.http(v)?,
        None => Vec::new(),
    };
    let secrets = match root.get("secrets") {
        Some(v) => p.secrets(&p.table(v, "secrets", "[secrets]")?)?,
        None => Vec::new(),
    };
    let limits = match root.get("limits") {
        Some(v) => p.limits(&p.table(v, "limits", "[limits]")?)?,
        None => Limits::default(),
    };

    Ok(Manifest {
        source: source.to_owned(),
        base_dir: base_dir.to_owned(),
        identity,
        workload,
        files,
        env,
        stdio,
        clocks,
        random,
        network,
        http,
        secrets,
        limits,
    })
}

/// A table being validated, with what errors need to describe it.
struct Tbl<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where the table is declared: its header, inline table or first dotted key.
    span: Range<usize>,
    /// Dotted path for value errors, e.g. `limits` or `secrets.stripe.inject`.
    name: String,
    /// How unknown-key and missing-key errors name it, e.g. `[limits]` or `[[files]]`.
    label: String,
}

impl<'t, 'i> Tbl<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.table.get(key)
    }

    /// The entries in the order they appear in the text.
    fn entries(&self) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
        let mut entries: Vec<_> = self.table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }

    fn path(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn check_keys(&self, p: &Parser<'_>, allowed: &[&str]) -> Result<()> {
        for (key, _) in self.entries() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                return Err(p.err(
                    key.span(),
                    format!(
                        "unknown key `{}` {}; expected one of: {}",
                        key.get_ref().escape_debug(),
                        if self.name.is_empty() {
                            "at the top level".to_owned()
                        } else {
                            format!("in {}", self.label)
                        },
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn require(&self, p: &Parser<'_>, key: &str, expected: &str) -> Result<&'t Value<'i>> {
        self.get(key).ok_or_else(|| {
            p.err(
                self.span.clone(),
                format!("missing `{key}` in {}; expected {expected}", self.label),
            )
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    source: &'a Path,
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    // ---- errors and primitive values -------------------------------------------------------

    fn err(&self, span: Range<usize>, message: String) -> ManifestError {
        self.err_at(span.start, message)
    }

    fn err_at(&self, offset: usize, message: String) -> ManifestError {
        let (line, column) = line_column(self.text, offset);
        ManifestError::Invalid {
            path: self.source.to_owned(),
            line,
            column,
            message,
        }
    }

    /// Describes a value for "found …" in messages.
    fn describe(&self, v: &Value<'_>) -> String {
        match v.get_ref() {
            DeValue::String(s) => format!("{:?}", s.as_ref()),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                let written = self.text.get(v.span()).unwrap_or("");
                format!("{} {written}", v.get_ref().type_str())
            }
            DeValue::Array(_) => "an array".to_owned(),
            DeValue::Table(_) => "a table".to_owned(),
            DeValue::Datetime(_) => "a datetime".to_owned(),
        }
    }

    fn expected(&self, v: &Value<'_>, path: &str, expected: &str) -> ManifestError {
        self.err(
            v.span(),
            format!("{path}: expected {expected}, found {}", self.describe(v)),
        )
    }

    fn string<'t>(&self, v: &'t Value<'_>, path: &str, expected: &str) -> Result<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.expected(v, path, expected)),
        }
    }

    fn non_empty_string<'t>(
        &self,
        v: &'t Value<'_>,
        path: &str,
        expected: &str,
    ) -> Result<&'t str> {
        let s = self.string(v, path, expected)?;
        if s.trim().is_empty() {
            return Err(self.expected(v, path, expected));
        }
        Ok(s)
    }

    fn bool(&self, v: &Value<'_>, path: &str) -> Result<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.expected(v, path, "true or false")),
        }
    }

    /// A TOML integer, widened so that no value TOML can write overflows.
    fn integer(&self, v: &Value<'_>, path: &str, expected: &str) -> Result<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.expected(v, path, expected)),
            _ => Err(self.expected(v, path, expected)),
        }
    }

    fn string_array(&self, v: &Value<'_>, path: &str, item: &str) -> Result<Vec<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.expected(v, path, &format!("an array of {item}s")));
        };
        items
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let expected = format!("a {item}");
                Ok(self
                    .string(i, &format!("{path}[{n}]"), &expected)?
                    .to_owned())
            })
            .collect()
    }

    fn table<'t, 'i>(&self, v: &'t Value<'i>, name: &str, label: &str) -> Result<Tbl<'t, 'i>> {
        match v.get_ref() {
            DeValue::Table(table) => Ok(Tbl {
                table,
                span: v.span(),
                name: name.to_owned(),
                label: label.to_owned(),
            }),
            _ => Err(self.expected(v, name, &format!("a table ({label})"))),
        }
    }

    /// The tables of an array of tables such as `[[files]]`.
    fn table_array<'t, 'i>(&self, v: &'t Value<'i>, name: &str) -> Result<Vec<Tbl<'t, 'i>>> {
        let label = format!("[[{name}]]");
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.expected(v, name, &format!("an array of tables ({label})")));
        };
        items
            .iter()
            .map(|item| self.table(item, name, &label))
            .collect()
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    // ---- sections --------------------------------------------------------------------------

    fn identity(&self, t: &Tbl<'_, '_>) -> Result<Identity> {
        t.check_keys(self, &["name", "id", "owner"])?;
        const NAME: &str = "a name of lower-case letters, digits and '-' that starts with a \
                            letter or digit, such as \"payments-connector\"";
        let v = t.require(self, "name", NAME)?;
        let name = self.string(v, "identity.name", NAME)?;
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(self.expected(v, "identity.name", NAME));
        }

        const ID: &str = "a URI such as \"spiffe://example.com/connectors/payments\"";
        let id = match t.get("id") {
            Some(v) => {
                let id = self.string(v, "identity.id", ID)?;
                if !is_uri(id) {
                    return Err(self.expected(v, "identity.id", ID));
                }
                id.to_owned()
            }
            None => format!("warden://local/{name}"),
        };
        let owner = match t.get("owner") {
            Some(v) => Some(
                self.non_empty_string(v, "identity.owner", "a non-empty string")?
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Identity {
            name: name.to_owned(),
            id,
            owner,
        })
    }

    fn workload(&self, t: &Tbl<'_, '_>) -> Result<Workload> {
        t.check_keys(self, &["module", "sha256", "args", "invoke"])?;
        let module = match t.get("module") {
            Some(v) => {
                let m = self.non_empty_string(
                    v,
                    "workload.module",
                    "a path to a WebAssembly module such as \"connector.wasm\"",
                )?;
                Some(self.resolve(m))
            }
            None => None,
        };
        const SHA: &str = "64 hexadecimal digits (a SHA-256 digest)";
        let sha256 = match t.get("sha256") {
            Some(v) => {
                let s = self.string(v, "workload.sha256", SHA)?;
                if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.expected(v, "workload.sha256", SHA));
                }
                Some(s.to_ascii_lowercase())
            }
            None => None,
        };
        let args = match t.get("args") {
            Some(v) => {
                let args = self.string_array(v, "workload.args", "string")?;
                // The guest gets its arguments as C strings, which a NUL byte would cut short.
                if let (Some(n), DeValue::Array(items)) =
                    (args.iter().position(|a| a.contains('\0')), v.get_ref())
                {
                    let span = items.get(n).map_or_else(|| v.span(), |i| i.span());
                    return Err(self.err(
                        span,
                        format!(
                            "workload.args[{n}]: argument {} contains a NUL byte, which a \
                             program's arguments cannot hold",
                            n + 1
                        ),
                    ));
                }
                args
            }
            None => Vec::new(),
        };
        let invoke = match t.get("invoke") {
            Some(v) => Some(
                self.non_empty_string(v, "workload.invoke", "the name of an exported function")?
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Workload {
            module,
            sha256,
            args,
            invoke,
        })
    }

    fn files(&self, v: &Value<'_>) -> Result<Vec<FileGrant>> {
        let mut grants: Vec<FileGrant> = Vec::new();
        for t in self.table_array(v, "files")? {
            t.check_keys(self, &["host", "guest", "access"])?;

            const HOST: &str = "a host path (relative to the manifest's folder, or absolute)";
            let hv = t.require(self, "host", HOST)?;
            let host = self.non_empty_string(hv, "files.host", HOST)?;
            let resolved = self.resolve(host);
            let canonical = std::fs::canonicalize(&resolved).map_err(|e| {
                let shown = if resolved.as_path() == Path::new(host) {
                    String::new()
                } else {
                    format!(" (resolved to `{}`)", resolved.display())
                };
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_owned()
                } else {
                    format!("cannot be resolved: {e}")
                };
                self.err(
                    hv.span(),
                    format!("files.host: host path `{host}`{shown} {why}"),
                )
            })?;
            // A FIFO, socket or device is neither a folder nor a file to copy: opening a FIFO
            // would block the start, so its type is checked here, without opening it.
            let file_type = std::fs::metadata(&canonical).map(|m| m.file_type());
            let kind = match &file_type {
                Ok(t) if t.is_dir() => FileKind::Dir,
                Ok(t) if t.is_file() => FileKind::File,
                Ok(t) => {
                    return Err(self.err(
                        hv.span(),
                        format!(
                            "files.host: host path `{host}` is {}; expected a regular file or a \
                             directory",
                            crate::regular_file::describe(*t)
                        ),
                    ));
                }
                Err(e) => {
                    return Err(self.err(
                        hv.span(),
                        format!("files.host: host path `{host}` cannot be read: {e}"),
                    ));
                }
            };

            const GUEST: &str = "an absolute guest path such as \"/data\"";
            let gv = t.require(self, "guest", GUEST)?;
            let guest = self.string(gv, "files.guest", GUEST)?;
            let guest = normalise_guest(guest)
                .map_err(|why| self.err(gv.span(), format!("files.guest: {why}")))?;
            if kind == FileKind::File && guest == "/" {
                return Err(self.err(
                    gv.span(),
                    format!(
                        "files.guest: host path `{host}` is a single file and cannot be granted \
                         at `/`; expected a file path such as \"/config.toml\""
                    ),
                ));
            }
            for earlier in &grants {
                if earlier.guest == guest {
                    return Err(self.err(
                        gv.span(),
                        format!(
                            "files.guest: `{guest}` is already granted by an earlier [[files]] \
                             entry; expected each guest path at most once"
                        ),
                    ));
                }
                if guest_within(&guest, &earlier.guest) || guest_within(&earlier.guest, &guest) {
                    return Err(self.err(
                        gv.span(),
                        format!(
                            "files.guest: `{guest}` overlaps the earlier grant of `{}`; expected \
                             guest paths that do not lie inside one another",
                            earlier.guest
                        ),
                    ));
                }
            }

            const ACCESS: &str =
                "\"read\" or \"read-write\" (there is no default: say which is meant)";
            let av = t.require(self, "access", ACCESS)?;
            let access = match self.string(av, "files.access", ACCESS)? {
                "read" => Access::Read,
                "read-write" => Access::ReadWrite,
                _ => return Err(self.expected(av, "files.access", ACCESS)),
            };

            // A staged folder is preopened either read-only or writable for the guest, so a
            // read single file beside a read-write one could be overwritten or replaced.
            if kind == FileKind::File {
                let folder = guest_parent(&guest);
                if let Some(other) = grants.iter().find(|g| {
                    g.kind == FileKind::File
                        && g.access != access
                        && guest_parent(&g.guest) == folder
                }) {
                    return Err(self.err(
                        gv.span(),
                        format!(
                            "files.guest: the single file `{guest}` and the earlier `{}` share \
                             the guest folder `{folder}` with different access; expected read \
                             and read-write single files in different guest folders",
                            other.guest
                        ),
                    ));
                }
            }

            grants.push(FileGrant {
                host: canonical,
                guest,
                access,
                kind,
            });
        }
        Ok(grants)
    }

    fn env(&self, t: &Tbl<'_, '_>) -> Result<Vec<EnvVar>> {
        let mut vars = Vec::new();
        for (key, v) in t.entries() {
            let name = key.get_ref().as_ref();
            if !is_env_name(name) {
                return Err(self.err(
                    key.span(),
                    format!(
                        "env: `{}` is not a valid variable name; expected a non-empty name \
                         without '=' or NUL",
                        name.escape_debug()
                    ),
                ));
            }
            let path = t.path(name);
            const VALUE: &str = "a string or { from-host = \"NAME\" }";
            let (value, source) = match v.get_ref() {
                DeValue::String(s) => (s.as_ref().to_owned(), EnvSource::Literal),
                DeValue::Table(_) => {
                    let inner = self.table(v, &path, &path)?;
                    inner.check_keys(self, &["from-host"])?;
                    const FROM: &str = "the name of a variable in warden's environment";
                    let fv = inner.require(self, "from-host", FROM)?;
                    let from = self.string(fv, &format!("{path}.from-host"), FROM)?;
                    if !is_env_name(from) {
                        return Err(self.expected(fv, &format!("{path}.from-host"), FROM));
                    }
                    let Some(value) = (self.env)(from) else {
                        return Err(self.err(
                            fv.span(),
                            format!(
                                "{path}: from-host variable `{from}` is not set in warden's \
                                 environment"
                            ),
                        ));
                    };
                    (value, EnvSource::FromHost(from.to_owned()))
                }
                _ => return Err(self.expected(v, &path, VALUE)),
            };
            // The guest gets its environment as C strings, which a NUL byte would cut short.
            if value.contains('\0') {
                let what = match &source {
                    EnvSource::Literal => "the value".to_owned(),
                    EnvSource::FromHost(from) => format!("the value of warden's variable `{from}`"),
                };
                return Err(self.err(
                    v.span(),
                    format!(
                        "{path}: {what} contains a NUL byte, which an environment variable \
                         cannot hold"
                    ),
                ));
            }
            vars.push(EnvVar {
                name: name.to_owned(),
                value,
                source,
            });
        }
        Ok(vars)
    }

    fn stdio(&self, t: &Tbl<'_, '_>) -> Result<Stdio> {
        t.check_keys(self, &["stdin", "stdout", "stderr"])?;
        const MODE: &str = "\"inherit\" or \"null\"";
        let mut stdio = Stdio::default();
        if let Some(v) = t.get("stdin") {
            stdio.stdin = match self.string(v, "stdio.stdin", MODE)? {
                "inherit" => StdinMode::Inherit,
                "null" => StdinMode::Null,
                _ => return Err(self.expected(v, "stdio.stdin", MODE)),
            };
        }
        for (key, slot) in [("stdout", &mut stdio.stdout), ("stderr", &mut stdio.stderr)] {
            if let Some(v) = t.get(key) {
                let path = t.path(key);
                *slot = match self.string(v, &path, MODE)? {
                    "inherit" => OutputMode::Inherit,
                    "null" => OutputMode::Null,
                    _ => return Err(self.expected(v, &path, MODE)),
                };
            }
        }
        Ok(stdio)
    }

    fn clocks(&self, t: &Tbl<'_, '_>) -> Result<Clocks> {
        t.check_keys(self, &["wall", "monotonic"])?;
        let mut clocks = Clocks::default();
        if let Some(v) = t.get("wall") {
            clocks.wall = self.bool(v, "clocks.wall")?;
        }
        if let Some(v) = t.get("monotonic") {
            clocks.monotonic = self.bool(v, "clocks.monotonic")?;
        }
        Ok(clocks)
    }

    fn random(&self, t: &Tbl<'_, '_>) -> Result<Random> {
        t.check_keys(self, &["secure"])?;
        let mut random = Random::default();
        if let Some(v) = t.get("secure") {
            random.secure = self.bool(v, "random.secure")?;
        }
        Ok(random)
    }

    fn network(&self, t: &Tbl<'_, '_>) -> Result<Vec<String>> {
        t.check_keys(self, &["connect"])?;
        let Some(v) = t.get("connect") else {
            return Ok(Vec::new());
        };
        const ENTRY: &str = "\"host:port\" where host is a DNS name, *.domain, an IPv4 address, \
                             an [IPv6] address or a CIDR such as \"10.1.0.0/16\", and port is \
                             1-65535";
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.expected(v, "network.connect", &format!("an array of {ENTRY}")));
        };
        let mut out = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let path = format!("network.connect[{n}]");
            let entry = self.string(item, &path, ENTRY)?;
            if let Err(why) = check_connect(entry) {
                return Err(self.err(
                    item.span(),
                    format!("{path}: {why} in {entry:?}; expected {ENTRY}"),
                ));
            }
            out.push(entry.to_owned());
        }
        Ok(out)
    }

    fn http(&self, v: &Value<'_>) -> Result<Vec<HttpRule>> {
        let mut rules = Vec::new();
        for t in self.table_array(v, "http")? {
            t.check_keys(self, &["url", "methods"])?;
            const URL: &str = "an http:// or https:// URL with a host, such as \
                               \"https://api.example.com/v1/\"";
            let uv = t.require(self, "url", URL)?;
            let url = self.string(uv, "http.url", URL)?;
            if let Err(why) = check_url(url) {
                return Err(self.err(
                    uv.span(),
                    format!("http.url: {why} in {url:?}; expected {URL}"),
                ));
            }
            let methods = match t.get("methods") {
                Some(mv) => {
                    let methods = self.string_array(mv, "http.methods", "method name")?;
                    if methods.is_empty() {
                        return Err(self.err(
                            mv.span(),
                            format!(
                                "http.methods: expected at least one of {}, found an empty array",
                                HTTP_METHODS.join(", ")
                            ),
                        ));
                    }
                    let mut out: Vec<String> = Vec::new();
                    for (n, m) in methods.iter().enumerate() {
                        let upper = m.to_ascii_uppercase();
                        if !HTTP_METHODS.contains(&upper.as_str()) {
                            let span = match mv.get_ref() {
                                DeValue::Array(items) => {
                                    items.get(n).map_or_else(|| mv.span(), Spanned::span)
                                }
                                _ => mv.span(),
                            };
                            return Err(self.err(
                                span,
                                format!(
                                    "http.methods[{n}]: expected one of {}, found {m:?}",
                                    HTTP_METHODS.join(", ")
                                ),
                            ));
                        }
                        if !out.contains(&upper) {
                            out.push(upper);
                        }
                    }
                    out
                }
                None => vec!["GET".to_owned()],
            };
            rules.push(HttpRule {
                url: url.to_owned(),
                methods,
            });
        }
        Ok(rules)
    }

    fn secrets(&self, t: &Tbl<'_, '_>) -> Result<Vec<Secret>> {
        let mut secrets = Vec::new();
        for (key, v) in t.entries() {
            let name = key.get_ref().as_ref();
            let mut chars = name.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && chars
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !valid {
                return Err(self.err(
                    key.span(),
                    format!(
                        "secrets: `{}` is not a valid secret name; expected lower-case letters, \
                         digits, '_' and '-', starting with a letter or digit",
                        name.escape_debug()
                    ),
                ));
            }
            let path = t.path(name);
            let s = self.table(v, &path, &format!("[{path}]"))?;
            s.check_keys(self, &["from", "inject", "reveal"])?;

            const FROM: &str = "\"env:NAME\" or \"file:PATH\"";
            let fv = s.require(self, "from", FROM)?;
            let from_path = s.path("from");
            let from = self.string(fv, &from_path, FROM)?;
            let from = if let Some(var) = from.strip_prefix("env:") {
                if !is_env_name(var) {
                    return Err(self.expected(fv, &from_path, FROM));
                }
                SecretSource::Env(var.to_owned())
            } else if let Some(file) = from.strip_prefix("file:") {
                if file.is_empty() {
                    return Err(self.expected(fv, &from_path, FROM));
                }
                SecretSource::File(self.resolve(file))
            } else {
                return Err(self.expected(fv, &from_path, FROM));
            };

            let inject = match s.get("inject") {
                Some(iv) => Some(self.inject(iv, &s.path("inject"))?),
                None => None,
            };
            let reveal = match s.get("reveal") {
                Some(rv) => self.bool(rv, &s.path("reveal"))?,
                None => false,
            };
            secrets.push(Secret {
                name: name.to_owned(),
                from,
                inject,
                reveal,
            });
        }
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(secrets)
    }

    fn inject(&self, v: &Value<'_>, path: &str) -> Result<Inject> {
        const TABLE: &str = "{ header = \"…\", format = \"… {secret} …\", url = \"https://…\" }";
        if !matches!(v.get_ref(), DeValue::Table(_)) {
            return Err(self.expected(v, path, TABLE));
        }
        let t = self.table(v, path, path)?;
        t.check_keys(self, &["header", "format", "url"])?;

        const HEADER: &str = "an HTTP header name such as \"Authorization\"";
        let hv = t.require(self, "header", HEADER)?;
        let header = self.string(hv, &t.path("header"), HEADER)?;
        if header.is_empty() || !header.bytes().all(is_http_token_byte) {
            return Err(self.expected(hv, &t.path("header"), HEADER));
        }

        const FORMAT: &str = "a header value containing \"{secret}\", such as \"Bearer {secret}\"";
        let fv = t.require(self, "format", FORMAT)?;
        let format = self.string(fv, &t.path("format"), FORMAT)?;
        if !format.contains("{secret}") || format.chars().any(|c| c.is_control() && c != '\t') {
            return Err(self.expected(fv, &t.path("format"), FORMAT));
        }

        const URL: &str = "an http:// or https:// URL prefix such as \"https://api.example.com/\"";
        let uv = t.require(self, "url", URL)?;
        let url = self.string(uv, &t.path("url"), URL)?;
        if check_url(url).is_err() {
            return Err(self.expected(uv, &t.path("url"), URL));
        }
        Ok(Inject {
            header: header.to_owned(),
            format: format.to_owned(),
            url: url.to_owned(),
        })
    }

    fn limits(&self, t: &Tbl<'_, '_>) -> Result<Limits> {
        t.check_keys(
            self,
            &[
                "memory",
                "fuel",
                "wall",
                "output",
                "http-requests",
                "egress",
                "staged-file",
            ],
        )?;
        let mut limits = Limits::default();
        if let Some(v) = t.get("memory") {
            let memory = self.size(v, "limits.memory")?;
            if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) {
                return Err(self.expected(v, "limits.memory", "a size from 64KiB to 16GiB"));
            }
            limits.memory = memory;
        }
        if let Some(v) = t.get("fuel") {
            const FUEL: &str = "a positive whole number of fuel units, such as 10_000_000_000";
            let fuel = self.integer(v, "limits.fuel", FUEL)?;
            match u64::try_from(fuel) {
                Ok(fuel) if fuel > 0 => limits.fuel = Some(fuel),
                _ => return Err(self.expected(v, "limits.fuel", FUEL)),
            }
        }
        if let Some(v) = t.get("wall") {
            limits.wall = self.duration(v, "limits.wall")?;
        }
        if let Some(v) = t.get("output") {
            limits.output = self.size(v, "limits.output")?;
        }
        if let Some(v) = t.get("http-requests") {
            const COUNT: &str = "a whole number of requests (0 or more)";
            let n = self.integer(v, "limits.http-requests", COUNT)?;
            limits.http_requests =
                u64::try_from(n).map_err(|_| self.expected(v, "limits.http-requests", COUNT))?;
        }
        if let Some(v) = t.get("egress") {
            limits.egress = self.size(v, "limits.egress")?;
        }
        if let Some(v) = t.get("staged-file") {
            limits.staged_file = self.size(v, "limits.staged-file")?;
        }
        Ok(limits)
    }

    fn size(&self, v: &Value<'_>, path: &str) -> Result<u64> {
        let size = match v.get_ref() {
            DeValue::Integer(_) => u64::try_from(self.integer(v, path, SIZE_HINT)?).ok(),
            DeValue::String(s) => parse_size(s),
            _ => None,
        };
        size.ok_or_else(|| self.expected(v, path, SIZE_HINT))
    }

    fn duration(&self, v: &Value<'_>, path: &str) -> Result<Duration> {
        let DeValue::String(s) = v.get_ref() else {
            let hint = if matches!(v.get_ref(), DeValue::Integer(_)) {
                format!("{DURATION_HINT}; a bare number has no unit, write e.g. \"30s\"")
            } else {
                DURATION_HINT.to_owned()
            };
            return Err(self.expected(v, path, &hint));
        };
        match parse_duration(s) {
            Some(d) if !d.is_zero() && d <= MAX_WALL => Ok(d),
            Some(_) => Err(self.expected(v, path, "a duration above 0 and at most 24h")),
            None => Err(self.expected(v, path, DURATION_HINT)),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
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

/// `scheme:rest`, scheme `[a-z][a-z0-9+.-]*`, `rest` non-empty, no whitespace or controls.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '.' || c == '-'
        })
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A name `std::env` accepts: non-empty, no `=`, no NUL.
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['=', '\0'])
}

/// RFC 9110 `tchar`.
fn is_http_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a guest path and returns its normal form; the error says why it is not acceptable.
fn normalise_guest(guest: &str) -> std::result::Result<String, String> {
    const RULE: &str = "guest paths must be absolute and normalised (no `.`, `..` or empty \
                        components)";
    let Some(rest) = guest.strip_prefix('/') else {
        return Err(format!(
            "expected an absolute guest path starting with '/', such as \"/data\", found \
             {guest:?}"
        ));
    };
    if guest.contains('\0') {
        return Err(format!("{guest:?} contains a NUL character; {RULE}"));
    }
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for component in rest.split('/') {
        match component {
            "" => return Err(format!("{guest:?} has an empty component (`//`); {RULE}")),
            "." => return Err(format!("{guest:?} has a `.` component; {RULE}")),
            ".." => return Err(format!("{guest:?} has a `..` component; {RULE}")),
            _ => {}
        }
    }
    Ok(format!("/{rest}"))
}

/// Whether normalised guest path `inner` lies strictly inside `outer`.
/// The guest folder that holds a (normalised, non-root) guest path: `/etc/app.toml` → `/etc`,
/// `/app.toml` → `/`.
fn guest_parent(guest: &str) -> &str {
    match guest.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &guest[..i],
    }
}

fn guest_within(inner: &str, outer: &str) -> bool {
    inner != outer
        && (outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|tail| tail.starts_with('/')))
}

/// Validates the shape of a `[network] connect` entry; the error says what is wrong.
fn check_connect(entry: &str) -> std::result::Result<(), String> {
    let (host, port) = if entry.starts_with('[') {
        let Some(close) = entry.find(']') else {
            return Err("an IPv6 address is missing its closing `]`".to_owned());
        };
        let after = &entry[close + 1..];
        let Some(colon) = after.rfind(':') else {
            return Err("there is no `:port`".to_owned());
        };
        (&entry[..close + 1 + colon], &after[colon + 1..])
    } else {
        match entry.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(
                    "an IPv6 address must be written in brackets, like [fd00::1]".to_owned(),
                );
            }
            Some(parts) => parts,
            None => return Err("there is no `:port`".to_owned()),
        }
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {port:?} is not a number"));
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => {}
        _ => return Err(format!("the port {port} is outside 1-65535")),
    }
    check_connect_host(host)
}

fn check_connect_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let (addr, prefix) = match inner.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, tail)) => match tail.strip_prefix('/') {
                Some(prefix) => (addr, Some(prefix)),
                None => return Err(format!("unexpected {tail:?} after `]`")),
            },
            None => return Err("an IPv6 address is missing its closing `]`".to_owned()),
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{addr:?} is not an IPv6 address"));
        }
        return check_prefix(prefix, 128);
    }
    if let Some((addr, prefix)) = host.split_once('/') {
        if addr.parse::<Ipv4Addr>().is_err() {
            return Err(format!(
                "{addr:?} is not an IPv4 address (a CIDR needs an IP address before the `/`)"
            ));
        }
        return check_prefix(Some(prefix), 32);
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Err("a wildcard may only be a leading `*.`".to_owned());
    }
    if !is_dns_name(name) {
        return Err(format!("{host:?} is not a DNS name or IP address"));
    }
    Ok(())
}

fn check_prefix(prefix: Option<&str>, max: u32) -> std::result::Result<(), String> {
    let Some(prefix) = prefix else {
        return Ok(());
    };
    let ok = !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|n| n <= max);
    if ok {
        Ok(())
    } else {
        Err(format!("the CIDR prefix length {prefix:?} is not 0-{max}"))
    }
}

/// Letters, digits and `-` in dot-separated labels of 1-63 characters, no label starting or
/// ending with `-`, at most 253 characters, and not ending in an all-digit label (which would
/// be a malformed IPv4 address).
pub(crate) fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

/// Validates an `http://` or `https://` URL with a host; the error says what is wrong.
fn check_url(url: &str) -> std::result::Result<(), String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err("the scheme is not http:// or https://".to_owned());
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("credentials do not belong in the URL (use [secrets] with inject)".to_owned());
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(close) => {
                let tail = &authority[close + 1..];
                match tail.strip_prefix(':') {
                    Some(port) => (&authority[..=close], Some(port)),
                    None if tail.is_empty() => (authority, None),
                    None => return Err("the host is malformed".to_owned()),
                }
            }
            None => return Err("an IPv6 host is missing its closing `]`".to_owned()),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("there is no host".to_owned());
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65535));
        if !ok {
            return Err(format!("the port {port:?} is not 1-65535"));
        }
    }
    Ok(())
}

/// Splits `"64MiB"`/`"30 s"` into its number and unit; `None` if there are no leading digits.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let (digits, unit) = s.split_at(end);
    let number = digits.parse::<u64>().ok()?;
    Some((number, unit.strip_prefix(' ').unwrap_or(unit)))
}

/// `"64MiB"`, `"64 MiB"`, `"1000B"`, `"1GB"`: a whole number and a unit (binary units are
/// powers of 1024, decimal ones powers of 1000). `None` if malformed or too large.
fn parse_size(s: &str) -> Option<u64> {
    let (number, unit) = split_number(s)?;
    let multiplier: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"`. `None` if malformed or too large to represent.
fn parse_duration(s: &str) -> Option<Duration> {
    let (number, unit) = split_number(s)?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHA: &str = "9F2C000000000000000000000000000000000000000000000000000000000ABC";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Manifest> {
        parse(text, Path::new("test.warden.toml"), dir, &no_env)
    }

    fn parse_text(text: &str) -> Result<Manifest> {
        parse_in(Path::new("/nonexistent-base"), text)
    }

    /// Asserts that `text` fails at `line:column` with a message containing `fragment`.
    #[track_caller]
    fn assert_invalid(result: Result<Manifest>, line: usize, column: usize, fragment: &str) {
        match result {
            Ok(m) => panic!("expected an error, got {m:?}"),
            Err(ManifestError::Invalid {
                path,
                line: l,
                column: c,
                message,
            }) => {
                assert_eq!(path, Path::new("test.warden.toml"));
                assert!(
                    message.contains(fragment),
                    "message {message:?} does not contain {fragment:?}"
                );
                assert_eq!((l, c), (line, column), "position of {message:?}");
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    #[track_caller]
    fn assert_text_invalid(text: &str, line: usize, column: usize, fragment: &str) {
        assert_invalid(parse_text(text), line, column, fragment);
    }

    const ID: &str = "[identity]\nname = \"conn\"\n";

    #[test]
    fn full_manifest_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("config.toml"), "x = 1").unwrap();
        let text = format!(
            r#"
[identity]
name = "payments-connector"
id = "spiffe://acme.example/connectors/payments"
owner = "team-payments"

[workload]
module = "payments.wasm"
sha256 = "{SHA}"
args = ["--region", "eu"]
invoke = "transform"

[[files]]
host = "config.toml"
guest = "/config/payments.toml"
access = "read"

[[files]]
host = "data"
guest = "/data/"
access = "read-write"

[env]
ZED = "last-alphabetically-first-in-file"
REGION = "eu"
API_BASE = {{ from-host = "PAYMENTS_API_BASE" }}

[stdio]
stdin = "inherit"
stdout = "null"

[clocks]
wall = true
monotonic = true

[random]
secure = true

[network]
connect = ["api.stripe.com:443", "10.1.0.0/16:5432", "*.svc.example:8080", "[fd00::1]:80", "[fd00::]/8:22", "192.168.1.1:1"]

[[http]]
url = "https://api.stripe.com/v1/charges"
methods = ["post", "GET"]

[[http]]
url = "http://localhost:8080"

[secrets.zeta]
from = "file:secrets/zeta"

[secrets.stripe]
from = "env:STRIPE_API_KEY"
inject = {{ header = "Authorization", format = "Bearer {{secret}}", url = "https://api.stripe.com/" }}
reveal = true

[limits]
memory = "64MiB"
fuel = 10_000_000_000
wall = "2m"
output = 0
http-requests = 5
egress = "1 KB"
staged-file = "2MiB"
"#
        );
        let env = |name: &str| (name == "PAYMENTS_API_BASE").then(|| "https://x".to_owned());
        let m = parse(&text, Path::new("m.toml"), dir.path(), &env).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let expected = Manifest {
            source: PathBuf::from("m.toml"),
            base_dir: dir.path().to_owned(),
            identity: Identity {
                name: "payments-connector".into(),
                id: "spiffe://acme.example/connectors/payments".into(),
                owner: Some("team-payments".into()),
            },
            workload: Workload {
                module: Some(dir.path().join("payments.wasm")),
                sha256: Some(SHA.to_ascii_lowercase()),
                args: vec!["--region".into(), "eu".into()],
                invoke: Some("transform".into()),
            },
            files: vec![
                FileGrant {
                    host: root.join("config.toml"),
                    guest: "/config/payments.toml".into(),
                    access: Access::Read,
                    kind: FileKind::File,
                },
                FileGrant {
                    host: root.join("data"),
                    guest: "/data".into(),
                    access: Access::ReadWrite,
                    kind: FileKind::Dir,
                },
            ],
            env: vec![
                EnvVar {
                    name: "ZED".into(),
                    value: "last-alphabetically-first-in-file".into(),
                    source: EnvSource::Literal,
                },
                EnvVar {
                    name: "REGION".into(),
                    value: "eu".into(),
                    source: EnvSource::Literal,
                },
                EnvVar {
                    name: "API_BASE".into(),
                    value: "https://x".into(),
                    source: EnvSource::FromHost("PAYMENTS_API_BASE".into()),
                },
            ],
            stdio: Stdio {
                stdin: StdinMode::Inherit,
                stdout: OutputMode::Null,
                stderr: OutputMode::Inherit,
            },
            clocks: Clocks {
                wall: true,
                monotonic: true,
            },
            random: Random { secure: true },
            network: vec![
                "api.stripe.com:443".into(),
                "10.1.0.0/16:5432".into(),
                "*.svc.example:8080".into(),
                "[fd00::1]:80".into(),
                "[fd00::]/8:22".into(),
                "192.168.1.1:1".into(),
            ],
            http: vec![
                HttpRule {
                    url: "https://api.stripe.com/v1/charges".into(),
                    methods: vec!["POST".into(), "GET".into()],
                },
                HttpRule {
                    url: "http://localhost:8080".into(),
                    methods: vec!["GET".into()],
                },
            ],
            secrets: vec![
                Secret {
                    name: "stripe".into(),
                    from: SecretSource::Env("STRIPE_API_KEY".into()),
                    inject: Some(Inject {
                        header: "Authorization".into(),
                        format: "Bearer {secret}".into(),
                        url: "https://api.stripe.com/".into(),
                    }),
                    reveal: true,
                },
                Secret {
                    name: "zeta".into(),
                    from: SecretSource::File(dir.path().join("secrets/zeta")),
                    inject: None,
                    reveal: false,
                },
            ],
            limits: Limits {
                memory: 64 << 20,
                fuel: Some(10_000_000_000),
                wall: Duration::from_secs(120),
                output: 0,
                http_requests: 5,
                egress: 1000,
                staged_file: 2 << 20,
            },
        };
        assert_eq!(m, expected);
    }

    #[test]
    fn minimal_manifest_takes_defaults() {
        let m = parse_text(ID).unwrap();
        assert_eq!(m.identity.id, "warden://local/conn");
        assert_eq!(m.identity.owner, None);
        assert_eq!(m.workload, Workload::default());
        assert!(m.files.is_empty() && m.env.is_empty() && m.network.is_empty());
        assert!(m.http.is_empty() && m.secrets.is_empty());
        assert_eq!(m.stdio, Stdio::default());
        assert_eq!(m.stdio.stdin, StdinMode::Null);
        assert_eq!(m.clocks, Clocks::default());
        assert_eq!(m.random, Random::default());
        assert_eq!(m.limits, Limits::default());
        assert_eq!(m.base_dir, Path::new("/nonexistent-base"));
    }

    #[test]
    fn inline_and_dotted_forms_are_accepted() {
        let m = parse_text(
            "identity = { name = \"a1\" }\nclocks.wall = true\nfiles = []\n\
             http = [{ url = \"https://h/\", methods = [\"DELETE\", \"delete\"] }]\n",
        )
        .unwrap();
        assert_eq!(m.identity.name, "a1");
        assert!(m.clocks.wall);
        assert!(!m.clocks.monotonic);
        assert_eq!(m.http[0].methods, vec!["DELETE".to_owned()]);
    }

    #[test]
    fn absolute_module_path_is_kept() {
        let m = parse_text(&format!("{ID}[workload]\nmodule = \"/abs/x.wasm\"\n")).unwrap();
        assert_eq!(m.workload.module, Some(PathBuf::from("/abs/x.wasm")));
    }

    #[test]
    fn empty_text_is_missing_identity() {
        assert_text_invalid("", 1, 1, "missing [identity] table");
        assert_text_invalid("  \n# nothing\n", 1, 1, "missing [identity] table");
        assert_text_invalid(
            "[stdio]\nstdin = \"null\"\n",
            1,
            1,
            "missing [identity] table",
        );
    }

    #[test]
    fn malformed_toml() {
        assert_text_invalid(
            "[identity]\nname = \n",
            2,
            8,
            "string values must be quoted",
        );
        assert_text_invalid("[identity\nname = \"x\"\n", 1, 10, "unclosed table");
        assert_text_invalid(
            "[identity]\nname = \"a\"\nname = \"b\"\n",
            3,
            1,
            "duplicate key",
        );
    }

    #[test]
    fn unknown_key_at_top_level() {
        assert_text_invalid(
            &format!("{ID}\n[colours]\nred = 1\n"),
            4,
            2,
            "unknown key `colours` at the top level; expected one of: identity, workload, files",
        );
        assert_text_invalid(
            "name = \"x\"\n",
            1,
            1,
            "unknown key `name` at the top level",
        );
    }

    #[test]
    fn unknown_key_in_table() {
        assert_text_invalid(
            &format!("{ID}[stdio]\nstdin = \"null\"\n  colour = \"red\"\n"),
            5,
            3,
            "unknown key `colour` in [stdio]; expected one of: stdin, stdout, stderr",
        );
        assert_text_invalid(
            &format!("{ID}[[files]]\nhost = \"/\"\nmode = \"r\"\n"),
            5,
            1,
            "unknown key `mode` in [[files]]; expected one of: host, guest, access",
        );
        assert_text_invalid(
            &format!("{ID}[identity.extra]\n"),
            3,
            11,
            "unknown key `extra` in [identity]",
        );
        assert_text_invalid(
            &format!("{ID}[env]\nA = {{ from-host = \"X\", default = \"y\" }}\n"),
            4,
            24,
            "unknown key `default` in env.A; expected one of: from-host",
        );
    }

    #[test]
    fn wrong_types() {
        assert_text_invalid(
            &format!("{ID}[clocks]\nwall = \"yes\"\n"),
            4,
            8,
            "clocks.wall: expected true or false, found \"yes\"",
        );
        assert_text_invalid(
            "[identity]\nname = 42\n",
            2,
            8,
            "identity.name: expected a name",
        );
        assert_text_invalid(
            &format!("{ID}[workload]\nargs = [\"a\", 2]\n"),
            4,
            14,
            "workload.args[1]: expected a string, found integer 2",
        );
        assert_text_invalid(
            &format!("stdio = \"inherit\"\n{ID}"),
            1,
            9,
            "stdio: expected a table ([stdio]), found \"inherit\"",
        );
        assert_text_invalid(
            &format!("{ID}[files]\nhost = \"/\"\n"),
            3,
            1,
            "files: expected an array of tables ([[files]]), found a table",
        );
        assert_text_invalid(
            &format!("{ID}[env]\nPORT = 8080\n"),
            4,
            8,
            "env.PORT: expected a string or { from-host = \"NAME\" }, found integer 8080",
        );
        assert_text_invalid(
            &format!("{ID}[stdio]\nstdout = \"file\"\n"),
            4,
            10,
            "stdio.stdout: expected \"inherit\" or \"null\", found \"file\"",
        );
    }

    #[test]
    fn bad_size() {
        assert_text_invalid(
            &format!("{ID}[limits]\nmemory = \"lots\"\n"),
            4,
            10,
            "limits.memory: expected a size such as \"64MiB\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nmemory = \"lots\"\n"),
            4,
            10,
            "found \"lots\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\noutput = \"5mb\"\n"),
            4,
            10,
            "limits.output: expected a size",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\negress = -1\n"),
            4,
            10,
            "limits.egress: expected a size such as \"64MiB\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nmemory = \"32KiB\"\n"),
            4,
            10,
            "limits.memory: expected a size from 64KiB to 16GiB, found \"32KiB\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nmemory = \"17GiB\"\n"),
            4,
            10,
            "from 64KiB to 16GiB",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nmemory = \"99999999999999999999GiB\"\n"),
            4,
            10,
            "expected a size",
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("64 MiB"), Some(64 << 20));
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("2KB"), Some(2000));
        assert_eq!(parse_size("3GB"), Some(3_000_000_000));
        assert_eq!(parse_size("16GiB"), Some(16 << 30));
        assert_eq!(parse_size("1kib"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1  MiB"), None);
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("-1MiB"), None);
        assert_eq!(parse_size("18446744073709551615GiB"), None);
        let m = parse_text(&format!(
            "{ID}[limits]\nmemory = 65536\noutput = \"0B\"\negress = 0\n"
        ))
        .unwrap();
        assert_eq!(
            (m.limits.memory, m.limits.output, m.limits.egress),
            (65536, 0, 0)
        );
        let m = parse_text(&format!("{ID}[limits]\nmemory = \"16GiB\"\n")).unwrap();
        assert_eq!(m.limits.memory, 16 << 30);
    }

    #[test]
    fn bad_duration() {
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = 30\n"),
            4,
            8,
            "limits.wall: expected a duration such as \"30s\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = 30\n"),
            4,
            8,
            "write e.g. \"30s\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = \"soon\"\n"),
            4,
            8,
            "found \"soon\"",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = \"0s\"\n"),
            4,
            8,
            "above 0 and at most 24h",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = \"25h\"\n"),
            4,
            8,
            "above 0 and at most 24h",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nwall = \"99999999999999999999h\"\n"),
            4,
            8,
            "expected a duration",
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration("s"), None);
        let m = parse_text(&format!("{ID}[limits]\nwall = \"24h\"\n")).unwrap();
        assert_eq!(m.limits.wall, Duration::from_secs(86400));
    }

    #[test]
    fn bad_fuel_and_counts() {
        assert_text_invalid(
            &format!("{ID}[limits]\nfuel = 0\n"),
            4,
            8,
            "limits.fuel: expected a positive whole number",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nfuel = \"lots\"\n"),
            4,
            8,
            "limits.fuel: expected a positive whole number",
        );
        assert_text_invalid(
            &format!("{ID}[limits]\nhttp-requests = -3\n"),
            4,
            17,
            "limits.http-requests: expected a whole number",
        );
        let m = parse_text(&format!("{ID}[limits]\nhttp-requests = 0\n")).unwrap();
        assert_eq!(m.limits.http_requests, 0);
    }

    #[test]
    fn non_absolute_guest_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"data\"\naccess = \"read\"\n");
        assert_invalid(
            parse_in(dir.path(), &text),
            5,
            9,
            "expected an absolute guest path starting with '/'",
        );
    }

    #[test]
    fn dot_dot_in_guest_path() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            format!("{ID}[[files]]\nhost = \".\"\nguest = \"/data/../etc\"\naccess = \"read\"\n");
        assert_invalid(parse_in(dir.path(), &text), 5, 9, "has a `..` component");
        let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a/./b\"\naccess = \"read\"\n");
        assert_invalid(parse_in(dir.path(), &text), 5, 9, "has a `.` component");
        let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a//b\"\naccess = \"read\"\n");
        assert_invalid(parse_in(dir.path(), &text), 5, 9, "empty component");
        let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a//\"\naccess = \"read\"\n");
        assert_invalid(parse_in(dir.path(), &text), 5, 9, "empty component");
    }

    #[test]
    fn guest_paths_normalise() {
        assert_eq!(normalise_guest("/").unwrap(), "/");
        assert_eq!(normalise_guest("/data/").unwrap(), "/data");
        assert_eq!(normalise_guest("/a/b").unwrap(), "/a/b");
        assert_eq!(normalise_guest("/a/..b").unwrap(), "/a/..b");
        assert!(normalise_guest("//").is_err());
        assert!(normalise_guest("/a\0").is_err());
        assert!(normalise_guest("").is_err());
        assert!(guest_within("/data/x", "/data"));
        assert!(guest_within("/data", "/"));
        assert!(!guest_within("/database", "/data"));
        assert!(!guest_within("/data", "/data"));
    }

    #[test]
    fn missing_host_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{ID}[[files]]\nhost   =   \"nope/missing.txt\"\nguest = \"/x\"\naccess = \"read\"\n"
        );
        assert_invalid(
            parse_in(dir.path(), &text),
            4,
            12,
            "host path `nope/missing.txt` (resolved to",
        );
        assert_invalid(parse_in(dir.path(), &text), 4, 12, "does not exist");
    }

    #[test]
    fn missing_access() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{ID}\n[[files]]\nhost = \".\"\nguest = \"/x\"\n");
        assert_invalid(
            parse_in(dir.path(), &text),
            4,
            1,
            "missing `access` in [[files]]; expected \"read\" or \"read-write\"",
        );
        let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/x\"\naccess = \"write\"\n");
        assert_invalid(parse_in(dir.path(), &text), 6, 10, "found \"write\"");
    }

    #[test]
    fn overlapping_guest_paths() {
        let dir = tempfile::tempdir().unwrap();
        let grant = |guest: &str| {
            format!("[[files]]\nhost = \".\"\nguest = \"{guest}\"\naccess = \"read\"\n")
        };
        let text = format!("{ID}{}{}", grant("/data"), grant("/data/x"));
        assert_invalid(
            parse_in(dir.path(), &text),
            9,
            9,
            "`/data/x` overlaps the earlier grant of `/data`",
        );
        let text = format!("{ID}{}{}", grant("/data/x"), grant("/data"));
        assert_invalid(
            parse_in(dir.path(), &text),
            9,
            9,
            "`/data` overlaps the earlier grant of `/data/x`",
        );
        let text = format!("{ID}{}{}", grant("/data"), grant("/data/"));
        assert_invalid(
            parse_in(dir.path(), &text),
            9,
            9,
            "`/data` is already granted",
        );
        let text = format!("{ID}{}{}", grant("/"), grant("/etc"));
        assert_invalid(
            parse_in(dir.path(), &text),
            9,
            9,
            "overlaps the earlier grant of `/`",
        );
        let text = format!("{ID}{}{}", grant("/data"), grant("/database"));
        let m = parse_in(dir.path(), &text).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].kind, FileKind::Dir);
    }

    #[test]
    fn read_and_read_write_single_files_need_separate_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "").unwrap();
        std::fs::write(dir.path().join("b"), "").unwrap();
        let grant = |host: &str, guest: &str, access: &str| {
            format!("[[files]]\nhost = \"{host}\"\nguest = \"{guest}\"\naccess = \"{access}\"\n")
        };
        let text = format!(
            "{ID}{}{}",
            grant("a", "/etc/a", "read"),
            grant("b", "/etc/b", "read-write")
        );
        assert_invalid(
            parse_in(dir.path(), &text),
            9,
            9,
            "share the guest folder `/etc` with different access",
        );
        // Control: different folders, or the same access, are fine.
        for (g2, acc2) in [("/state/b", "read-write"), ("/etc/b", "read")] {
            let text = format!(
                "{ID}{}{}",
                grant("a", "/etc/a", "read"),
                grant("b", g2, acc2)
            );
            assert_eq!(parse_in(dir.path(), &text).unwrap().files.len(), 2);
        }
    }

    #[test]
    fn a_fifo_is_refused_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let text = format!("{ID}[[files]]\nhost = \"pipe\"\nguest = \"/p\"\naccess = \"read\"\n");
        assert_invalid(
            parse_in(dir.path(), &text),
            4,
            8,
            "host path `pipe` is a FIFO (named pipe); expected a regular file or a directory",
        );
    }

    #[test]
    fn staged_file_limit_is_a_size() {
        let m = parse_text(&format!("{ID}[limits]\nstaged-file = \"1KiB\"\n")).unwrap();
        assert_eq!(m.limits.staged_file, 1024);
        let m = parse_text(&format!("{ID}[limits]\nstaged-file = 0\n")).unwrap();
        assert_eq!(m.limits.staged_file, 0);
        assert_eq!(parse_text(ID).unwrap().limits.staged_file, 16 << 20);
        assert_text_invalid(
            &format!("{ID}[limits]\nstaged-file = \"big\"\n"),
            4,
            15,
            "limits.staged-file: expected a size such as \"64MiB\"",
        );
    }

    #[test]
    fn single_file_cannot_be_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "").unwrap();
        let text = format!("{ID}[[files]]\nhost = \"f\"\nguest = \"/\"\naccess = \"read\"\n");
        assert_invalid(
            parse_in(dir.path(), &text),
            5,
            9,
            "is a single file and cannot be granted at `/`",
        );
    }

    #[test]
    fn unset_from_host() {
        let text = format!("{ID}[env]\nAPI_BASE = {{ from-host = \"PAYMENTS_API_BASE\" }}\n");
        assert_text_invalid(
            &text,
            4,
            26,
            "env.API_BASE: from-host variable `PAYMENTS_API_BASE` is not set in warden's \
             environment",
        );
        assert_text_invalid(
            &format!("{ID}[env]\nA = {{ from-host = \"\" }}\n"),
            4,
            19,
            "env.A.from-host: expected the name of a variable",
        );
        assert_text_invalid(
            &format!("{ID}[env]\nA = {{}}\n"),
            4,
            5,
            "missing `from-host` in env.A",
        );
    }

    #[test]
    fn nul_bytes_in_args_and_env_values() {
        assert_text_invalid(
            &format!("{ID}[workload]\nargs = [\"a\", \"b\\u0000c\"]\n"),
            4,
            14,
            "workload.args[1]: argument 2 contains a NUL byte",
        );
        assert_text_invalid(
            &format!("{ID}[env]\nAPI_BASE = \"x\\u0000y\"\n"),
            4,
            12,
            "env.API_BASE: the value contains a NUL byte",
        );
        // `from-host` values: a real environment cannot hold NUL, an embedder's lookup can.
        let text = format!("{ID}[env]\nAPI_BASE = {{ from-host = \"HOST_BASE\" }}\n");
        let nul_env = |_: &str| Some("x\0y".to_owned());
        assert_invalid(
            parse(
                &text,
                Path::new("test.warden.toml"),
                Path::new("/"),
                &nul_env,
            ),
            4,
            12,
            "env.API_BASE: the value of warden's variable `HOST_BASE` contains a NUL byte",
        );
        // Controls: the same values without the NUL byte parse.
        let m = parse_text(&format!(
            "{ID}[workload]\nargs = [\"a\", \"bc\"]\n[env]\nAPI_BASE = \"xy\"\n"
        ))
        .unwrap();
        assert_eq!(m.workload.args, ["a", "bc"]);
        assert_eq!(m.env[0].value, "xy");
        let ok_env = |_: &str| Some("xy".to_owned());
        let m = parse(
            &text,
            Path::new("test.warden.toml"),
            Path::new("/"),
            &ok_env,
        )
        .unwrap();
        assert_eq!(m.env[0].value, "xy");
    }

    #[test]
    fn bad_env_name() {
        assert_text_invalid(
            &format!("{ID}[env]\n\"A=B\" = \"x\"\n"),
            4,
            1,
            "`A=B` is not a valid variable name",
        );
        assert_text_invalid(
            &format!("{ID}[env]\n\"\" = \"x\"\n"),
            4,
            1,
            "is not a valid variable name",
        );
    }

    #[test]
    fn bad_identity() {
        for bad in ["Payments", "-x", "a_b", "", "a b"] {
            assert_text_invalid(
                &format!("[identity]\nname = {bad:?}\n"),
                2,
                8,
                "identity.name: expected a name of lower-case letters",
            );
        }
        assert_text_invalid(
            "[identity]\nowner = \"me\"\n",
            1,
            1,
            "missing `name` in [identity]",
        );
        assert_text_invalid(
            &format!("{ID}id = \"not a uri\"\n"),
            3,
            6,
            "identity.id: expected a URI",
        );
        for bad in ["nocolon", "1x:y", "x:", ":y", "a:b c", "Http://x"] {
            assert!(!is_uri(bad), "{bad}");
        }
        assert!(is_uri("urn:x"));
        assert!(is_uri("spiffe+v1.x-y://a/b"));
        assert_text_invalid(
            &format!("{ID}owner = \"\"\n"),
            3,
            9,
            "identity.owner: expected a non-empty string",
        );
    }

    #[test]
    fn bad_sha256() {
        assert_text_invalid(
            &format!("{ID}[workload]\nsha256 = \"abc\"\n"),
            4,
            10,
            "workload.sha256: expected 64 hexadecimal digits",
        );
        let not_hex = "g".repeat(64);
        assert_text_invalid(
            &format!("{ID}[workload]\nsha256 = \"{not_hex}\"\n"),
            4,
            10,
            "workload.sha256: expected 64 hexadecimal digits",
        );
    }

    #[test]
    fn bad_workload() {
        assert_text_invalid(
            &format!("{ID}[workload]\ninvoke = \"\"\n"),
            4,
            10,
            "workload.invoke: expected the name of an exported function",
        );
        assert_text_invalid(
            &format!("{ID}[workload]\nmodule = 1\n"),
            4,
            10,
            "workload.module: expected a path",
        );
    }

    #[test]
    fn bad_network_entry() {
        assert_text_invalid(
            &format!("{ID}[network]\nconnect = [\"api.example.com:443\", \"api.example.com\"]\n"),
            4,
            35,
            "network.connect[1]: there is no `:port` in \"api.example.com\"",
        );
        assert_text_invalid(
            &format!("{ID}[network]\nconnect = \"x:1\"\n"),
            4,
            11,
            "network.connect: expected an array",
        );
        for bad in [
            "h:0",
            "h:65536",
            "h:",
            ":80",
            "h:+80",
            "fd00::1:80",
            "[fd00::1:80",
            "[fd00::1]",
            "[zz::1]:80",
            "[fd00::]/129:80",
            "10.0.0.0/33:80",
            "10.0.0.0/:80",
            "300.1.1.1:80",
            "host.example/16:80",
            "-bad.example:80",
            "a..b:80",
            "a.*.b:80",
            "*:80",
            "under_score.example:80",
            "h :80",
        ] {
            assert!(check_connect(bad).is_err(), "{bad} should be rejected");
        }
        for good in [
            "localhost:5432",
            "a-b.c:1",
            "*.example.com:65535",
            "10.0.0.1:80",
            "0.0.0.0/0:80",
            "[::1]:80",
            "[::]/0:443",
        ] {
            assert_eq!(check_connect(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn bad_http_rules() {
        assert_text_invalid(
            &format!(
                "{ID}[[http]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\", \"FETCH\"]\n"
            ),
            5,
            19,
            "http.methods[1]: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, \
             found \"FETCH\"",
        );
        assert_text_invalid(
            &format!("{ID}[[http]]\nurl = \"ftp://x/\"\n"),
            4,
            7,
            "http.url: the scheme is not http:// or https://",
        );
        assert_text_invalid(
            &format!("{ID}[[http]]\nurl = \"https:///path\"\n"),
            4,
            7,
            "there is no host",
        );
        assert_text_invalid(
            &format!("{ID}[[http]]\nmethods = [\"GET\"]\n"),
            3,
            1,
            "missing `url` in [[http]]",
        );
        assert_text_invalid(
            &format!("{ID}[[http]]\nurl = \"https://h/\"\nmethods = []\n"),
            5,
            11,
            "expected at least one of",
        );
        assert!(check_url("https://user:pw@h/").is_err());
        assert!(check_url("https://h:0/").is_err());
        assert!(check_url("https://h:/").is_err());
        assert!(check_url("https://[::1]:8080/x").is_ok());
        assert!(check_url("https://[::1]x/").is_err());
        assert!(check_url("https://h/a b").is_err());
        assert!(check_url("http://h?q").is_ok());
    }

    #[test]
    fn secret_format_missing_placeholder() {
        assert_text_invalid(
            &format!(
                "{ID}[secrets.stripe]\nfrom = \"env:K\"\n\
                 inject = {{ header = \"Authorization\", format = \"Bearer\", url = \"https://a/\" }}\n"
            ),
            5,
            47,
            "secrets.stripe.inject.format: expected a header value containing \"{secret}\"",
        );
    }

    #[test]
    fn bad_secrets() {
        assert_text_invalid(
            &format!("{ID}[secrets.Stripe]\nfrom = \"env:K\"\n"),
            3,
            10,
            "`Stripe` is not a valid secret name",
        );
        assert_text_invalid(
            &format!("{ID}[secrets.s]\nfrom = \"vault:K\"\n"),
            4,
            8,
            "secrets.s.from: expected \"env:NAME\" or \"file:PATH\", found \"vault:K\"",
        );
        assert_text_invalid(
            &format!("{ID}[secrets.s]\nreveal = true\n"),
            3,
            1,
            "missing `from` in [secrets.s]",
        );
        assert_text_invalid(
            &format!(
                "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\", format = \"{{secret}}\" }}\n"
            ),
            5,
            10,
            "missing `url` in secrets.s.inject",
        );
        assert_text_invalid(
            &format!(
                "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\", format = \"{{secret}}\", url = \"a/\" }}\n"
            ),
            5,
            53,
            "secrets.s.inject.url: expected an http:// or https:// URL",
        );
        assert_text_invalid(
            &format!(
                "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\\r\\nB\", format = \"{{secret}}\", url = \"https://a/\" }}\n"
            ),
            5,
            21,
            "secrets.s.inject.header: expected an HTTP header name",
        );
        assert_text_invalid(
            &format!("{ID}[secrets.s]\nfrom = \"env:K\"\ninject = 3\n"),
            5,
            10,
            "secrets.s.inject: expected { header",
        );
        assert_text_invalid(
            &format!("{ID}[secrets]\ns = \"env:K\"\n"),
            4,
            5,
            "secrets.s: expected a table ([secrets.s])",
        );
        let m = parse_text(&format!(
            "{ID}[secrets.s]\nfrom = \"file:/run/s\"\n[secrets.s.inject]\nheader = \"X-Key\"\n\
             format = \"{{secret}}\"\nurl = \"http://h\"\n"
        ))
        .unwrap();
        assert_eq!(
            m.secrets[0].from,
            SecretSource::File(PathBuf::from("/run/s"))
        );
        assert_eq!(m.secrets[0].inject.as_ref().unwrap().header, "X-Key");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_column("", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab\n", 3), (2, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
        assert_eq!(line_column("é=1", 2), (1, 2));
        assert_eq!(line_column("é=1", 1), (1, 2));
        assert_text_invalid(
            &format!("{ID}[stdio]\n\"é\" = 1\n"),
            4,
            1,
            "unknown key `é` in [stdio]",
        );
        assert_text_invalid(&format!("{ID}[env]\n\"é\" = \"é\"\nX = 1\n"), 5, 5, "env.X");
        assert_text_invalid(
            &format!("{ID}[clocks] # ∑∑∑\nwall = 1  # é\nmonotonic = 1\n"),
            4,
            8,
            "clocks.wall",
        );
        assert_text_invalid(
            &format!("{ID}[stdio]\nstdin = \"∑\"\nstdout = \"∑∑\"\n"),
            4,
            9,
            "found \"∑\"",
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\u{feff}[identity]\nname = \"a\"",
            "[identity]\r\nname = \"a\"\r\nid = \"x\"\r\n",
            "[[identity]]\nname = \"a\"",
            "identity = 1",
            "[identity]\nname = \"a\"\n[limits]\nmemory = 1.5\nfuel = 0xFFFFFFFF\n",
            "[identity]\nname = \"a\"\n[limits]\nfuel = 1979-05-27\n",
            "[identity]\nname = \"a\"\nhttp = 1",
            "[identity]\nname = \"a\"\nhttp = [1]",
            "[identity]\nname = \"a\"\n[[files]]\nhost = \"\\u0000\"\nguest = \"/\"\naccess = \"read\"",
            "\0",
            "[",
            "a.b.c.d.e = 1",
        ] {
            let _ = parse_text(text);
        }
        assert_invalid(parse_text("[[identity]]\nname = \"a\""), 1, 1, "[identity]");
        assert_invalid(
            parse_text(&format!("http = [1]\n{ID}")),
            1,
            9,
            "http: expected a table ([[http]]), found integer 1",
        );
        assert_invalid(
            parse_text("[identity]\r\nname = \"a\"\r\nid = \"x\"\r\n"),
            3,
            6,
            "identity.id",
        );
    }
}
