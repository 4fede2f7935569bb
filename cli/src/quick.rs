//! Quick flags: grants on `warden run`'s command line, for trying a module before writing a
//! manifest. Each flag is exactly one manifest grant, written as the TOML a manifest would
//! hold; the flags' TOML is merged into the manifest file's (flags add; a flag that contradicts
//! the file is an error) and the whole is parsed by the one manifest parser, so flags get the
//! same validation, audit records and host allow list as a manifest.
//!
//! A flag's value is checked when the command line is parsed (through the manifest parser, as
//! a manifest holding that one grant): a bad value is a usage error, exit 2.

use std::path::{Path, PathBuf};
use toml::{Table, Value};
use warden::{Manifest, ManifestError, Policy};

/// The identity of a run whose grants all come from flags (no manifest): the same as a run
/// without any grant, `warden://local/anonymous`.
const ANONYMOUS: &str = "anonymous";

/// Top-level manifest tables, in the order `--print-manifest` writes them (the order of
/// docs/manifest.md); any other table follows.
const TABLE_ORDER: &[&str] = &[
    "identity", "workload", "files", "env", "stdio", "clocks", "random", "network", "http",
    "secrets", "limits",
];

/// The grant flags of `warden run`.
#[derive(clap::Args, Default)]
pub struct QuickFlags {
    /// Grant a host folder or file at GUEST, read-write (`:ro`: read only). One `[[files]]`
    /// entry; a relative HOST is relative to the current folder. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]", value_parser = parse_dir,
          help_heading = "Grants (each flag one manifest grant; they add to --manifest)")]
    dirs: Vec<Grant>,
    /// Pass NAME from warden's environment (must be set), or set NAME to VALUE. One `[env]`
    /// key. Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env,
          help_heading = "Grants (each flag one manifest grant; they add to --manifest)")]
    env: Vec<Grant>,
    /// Let the guest read warden's stdin (`[stdio] stdin = "inherit"`).
    #[arg(
        long,
        help_heading = "Grants (each flag one manifest grant; they add to --manifest)"
    )]
    stdin: bool,
    /// The host's wall and monotonic clocks (`[clocks] wall = true, monotonic = true`).
    #[arg(
        long,
        help_heading = "Grants (each flag one manifest grant; they add to --manifest)"
    )]
    clocks: bool,
    /// The host's CSPRNG (`[random] secure = true`).
    #[arg(
        long,
        help_heading = "Grants (each flag one manifest grant; they add to --manifest)"
    )]
    random: bool,
    /// Allow outbound HTTP to URL (scheme, host, port, path prefix) with METHODS, e.g.
    /// `https://api.example.com/v1/:GET,POST` (default GET). One `[[http]]` entry; components
    /// only. Repeatable.
    #[arg(long = "allow-http", value_name = "URL[:METHODS]", value_parser = parse_http,
          help_heading = "Grants (each flag one manifest grant; they add to --manifest)")]
    http: Vec<Grant>,
    /// Allow TCP connections to HOST:PORT (a name, `*.domain`, an IP or a CIDR, as in
    /// `[network] connect`). Components only. Repeatable.
    #[arg(long = "allow-connect", value_name = "HOST:PORT", value_parser = parse_connect,
          help_heading = "Grants (each flag one manifest grant; they add to --manifest)")]
    connect: Vec<Grant>,
    /// Set a `[limits]` key, e.g. `memory=64MiB`, `wall=5s`, `fuel=1000000`. Repeatable.
    #[arg(long = "limit", value_name = "KEY=VALUE", value_parser = parse_limit,
          help_heading = "Grants (each flag one manifest grant; they add to --manifest)")]
    limits: Vec<Grant>,
    /// Print the manifest that --manifest and the grant flags amount to (with the module and
    /// arguments given) and exit 0 without running; save it to start a manifest file.
    #[arg(long)]
    pub print_manifest: bool,
}

/// One grant given by a flag, already in the manifest's words.
#[derive(Clone, Debug)]
pub(crate) enum Grant {
    /// `--dir`: one `[[files]]` entry.
    Files(Table),
    /// `--env`: one `[env]` key.
    Env(String, Value),
    /// `--allow-http`: one `[[http]]` entry.
    Http(Table),
    /// `--allow-connect`: one `[network] connect` entry.
    Connect(String),
    /// `--limit`: one `[limits]` key.
    Limit(String, Value),
}

/// What went wrong combining a manifest with the flags.
pub enum QuickError {
    /// The manifest file itself: as without flags, warden could not start (exit 125).
    Manifest(ManifestError),
    /// The flags (or the flags with the manifest): a usage error (exit 2).
    Usage(String),
}

impl QuickFlags {
    /// Whether any grant flag was given.
    pub fn any(&self) -> bool {
        !(self.dirs.is_empty()
            && self.env.is_empty()
            && self.http.is_empty()
            && self.connect.is_empty()
            && self.limits.is_empty())
            || self.stdin
            || self.clocks
            || self.random
    }

    fn grants(&self) -> impl Iterator<Item = (&'static str, &Grant)> {
        let tag = |flag: &'static str| move |g| (flag, g);
        self.dirs
            .iter()
            .map(tag("--dir"))
            .chain(self.env.iter().map(tag("--env")))
            .chain(self.http.iter().map(tag("--allow-http")))
            .chain(self.connect.iter().map(tag("--allow-connect")))
            .chain(self.limits.iter().map(tag("--limit")))
    }
}

/// A manifest's table with the flags' grants merged in, and where its relative paths start.
pub struct Merged {
    table: Table,
    manifest: Option<PathBuf>,
    base_dir: PathBuf,
}

/// The manifest file's table (or an anonymous one) with every flag's grant added.
///
/// The file is first parsed on its own, so that its mistakes are reported with their file,
/// line and column (and exit 125, as without flags). Relative paths in it are made absolute,
/// so the merged manifest means the same wherever it is saved.
pub fn merge(manifest: Option<&Path>, flags: &QuickFlags) -> Result<Merged, QuickError> {
    let cwd = std::env::current_dir()
        .map_err(|e| QuickError::Usage(format!("cannot read the current folder: {e}")))?;
    let (mut table, base_dir) = match manifest {
        Some(path) => {
            Manifest::from_file(path).map_err(QuickError::Manifest)?;
            let text = warden::read_regular_file(path)
                .map_err(|source| {
                    QuickError::Manifest(ManifestError::Read {
                        path: path.to_owned(),
                        source,
                    })
                })
                .map(|b| String::from_utf8_lossy(&b).into_owned())?;
            let table: Table = text.parse().map_err(|e: toml::de::Error| {
                QuickError::Usage(format!("{}: {}", path.display(), e.message()))
            })?;
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
                _ => cwd.clone(),
            };
            (table, dir)
        }
        None => {
            let mut identity = Table::new();
            identity.insert("name".into(), Value::String(ANONYMOUS.into()));
            let mut table = Table::new();
            table.insert("identity".into(), Value::Table(identity));
            (table, cwd)
        }
    };
    absolutize(&mut table, &base_dir);
    if flags.stdin {
        set(
            &mut table,
            "stdio",
            "stdin",
            Value::String("inherit".into()),
        )?;
    }
    if flags.clocks {
        set(&mut table, "clocks", "wall", Value::Boolean(true))?;
        set(&mut table, "clocks", "monotonic", Value::Boolean(true))?;
    }
    if flags.random {
        set(&mut table, "random", "secure", Value::Boolean(true))?;
    }
    for (flag, grant) in flags.grants() {
        add(&mut table, flag, grant)?;
    }
    Ok(Merged {
        table,
        manifest: manifest.map(Path::to_owned),
        base_dir,
    })
}

impl Merged {
    /// The policy the manifest and the flags amount to, from the one manifest parser.
    ///
    /// # Errors
    /// [`QuickError::Usage`] when the flags do not fit the manifest (two grants of one guest
    /// path, say): the manifest alone was valid, so the flags are at fault.
    pub fn policy(&self) -> Result<Policy, QuickError> {
        let text = self.table.to_string();
        let source = self
            .manifest
            .clone()
            .unwrap_or_else(|| PathBuf::from("<flags>"));
        let manifest = Manifest::from_str_at(&text, &source, &self.base_dir).map_err(|e| {
            QuickError::Usage(format!(
                "the grant flags do not fit {}: {}",
                self.manifest
                    .as_ref()
                    .map_or_else(|| "together".to_string(), |m| m.display().to_string()),
                message(&e)
            ))
        })?;
        let mut policy = Policy::from_manifest(manifest);
        if self.manifest.is_none() {
            // As a run without any grant: no manifest file to name in the audit log.
            policy.manifest = None;
        }
        Ok(policy)
    }

    /// The manifest as TOML, with the module and the arguments of the command line in
    /// `[workload]` (the module replacing the manifest's, the arguments appended), so that
    /// `warden run --manifest SAVED` runs the same workload the same way.
    pub fn to_toml(&self, module: Option<&Path>, args: &[String]) -> String {
        let mut table = self.table.clone();
        if module.is_some() || !args.is_empty() {
            let workload = table
                .entry("workload")
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(w) = workload {
                if let Some(m) = module {
                    let m = absolute(m, &std::env::current_dir().unwrap_or_default());
                    w.insert("module".into(), Value::String(m.display().to_string()));
                }
                if !args.is_empty() {
                    let list = w.entry("args").or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = list {
                        list.extend(args.iter().cloned().map(Value::String));
                    }
                }
            }
        }
        let mut out = String::new();
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort_by_key(|k| {
            TABLE_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(usize::MAX)
        });
        for key in keys {
            let mut one = Table::new();
            if let Some(v) = table.get(key) {
                one.insert(key.clone(), v.clone());
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&one.to_string());
        }
        out
    }
}

/// Sets `[section] key = value`: a flag turns a grant on, whatever the file said.
fn set(table: &mut Table, section: &str, key: &str, value: Value) -> Result<(), QuickError> {
    section_mut(table, section)?.insert(key.into(), value);
    Ok(())
}

fn section_mut<'t>(table: &'t mut Table, section: &str) -> Result<&'t mut Table, QuickError> {
    match table
        .entry(section)
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => Ok(t),
        _ => Err(QuickError::Usage(format!(
            "the manifest's `{section}` is not a table"
        ))),
    }
}

fn array_mut<'t>(table: &'t mut Table, key: &str) -> Result<&'t mut Vec<Value>, QuickError> {
    match table.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(a) => Ok(a),
        _ => Err(QuickError::Usage(format!(
            "the manifest's `{key}` is not an array"
        ))),
    }
}

/// Adds one flag's grant. A key the manifest (or an earlier flag) already sets to another
/// value is an error: a flag adds a grant, it does not silently change one.
fn add(table: &mut Table, flag: &str, grant: &Grant) -> Result<(), QuickError> {
    let keyed = |table: &mut Table, section: &str, key: &str, value: &Value| {
        let section_table = section_mut(table, section)?;
        match section_table.get(key) {
            Some(old) if old != value => Err(QuickError::Usage(format!(
                "{flag} {key}: [{section}] already sets {key} = {old}; a flag adds a grant and \
                 cannot change one"
            ))),
            _ => {
                section_table.insert(key.into(), value.clone());
                Ok(())
            }
        }
    };
    match grant {
        Grant::Files(entry) => array_mut(table, "files")?.push(Value::Table(entry.clone())),
        Grant::Http(entry) => array_mut(table, "http")?.push(Value::Table(entry.clone())),
        Grant::Connect(entry) => {
            let list = array_mut(section_mut(table, "network")?, "connect")?;
            let entry = Value::String(entry.clone());
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
        Grant::Env(name, value) => keyed(table, "env", name, value)?,
        Grant::Limit(key, value) => keyed(table, "limits", key, value)?,
    }
    Ok(())
}

/// Makes the manifest's relative host paths (files, the module, file secrets) absolute.
fn absolutize(table: &mut Table, base: &Path) {
    let fix = |v: &mut Value, prefix: &str| {
        if let Value::String(s) = v
            && let Some(rest) = s.strip_prefix(prefix)
            && Path::new(rest).is_relative()
        {
            *s = format!("{prefix}{}", absolute(Path::new(rest), base).display());
        }
    };
    if let Some(Value::Array(files)) = table.get_mut("files") {
        for f in files {
            if let Some(host) = f.get_mut("host") {
                fix(host, "");
            }
        }
    }
    if let Some(module) = table.get_mut("workload").and_then(|w| w.get_mut("module")) {
        fix(module, "");
    }
    if let Some(Value::Table(secrets)) = table.get_mut("secrets") {
        for (_, secret) in secrets.iter_mut() {
            if let Some(from) = secret.get_mut("from") {
                fix(from, "file:");
            }
        }
    }
}

/// `path` made absolute against `base`, its `.` components and doubled slashes removed
/// (`..` is kept: it means something different where a symlink is involved).
fn absolute(path: &Path, base: &Path) -> PathBuf {
    let joined = base.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// The message of a manifest error without its position (which, for a flag, points into
/// TOML the user never wrote).
fn message(e: &ManifestError) -> String {
    match e {
        ManifestError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Checks one grant alone, as a manifest holding only it would be checked.
fn check_alone(grant: Grant) -> Result<Grant, String> {
    let mut table = Table::new();
    let mut identity = Table::new();
    identity.insert("name".into(), Value::String(ANONYMOUS.into()));
    table.insert("identity".into(), Value::Table(identity));
    add(&mut table, "", &grant).map_err(|e| match e {
        QuickError::Usage(m) => m,
        QuickError::Manifest(m) => m.to_string(),
    })?;
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    Manifest::from_str_at(&table.to_string(), Path::new("<flag>"), &cwd)
        .map_err(|e| message(&e))?;
    Ok(grant)
}

fn utf8(path: &Path, what: &str) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} {} is not UTF-8", path.display()))
}

/// `HOST::GUEST[:ro]` (`:rw`, the default, may be written out).
fn parse_dir(s: &str) -> Result<Grant, String> {
    let (spec, access) = if let Some(spec) = s.strip_suffix(":ro") {
        (spec, "read")
    } else if let Some(spec) = s.strip_suffix(":rw") {
        (spec, "read-write")
    } else {
        (s, "read-write")
    };
    let (host, guest) = spec
        .split_once("::")
        .filter(|(h, g)| !h.is_empty() && !g.is_empty())
        .ok_or_else(|| {
            "expected HOST::GUEST or HOST::GUEST:ro, e.g. `./data::/data:ro`".to_string()
        })?;
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    let host = utf8(&absolute(Path::new(host), &cwd), "host path")?;
    let mut entry = Table::new();
    entry.insert("host".into(), Value::String(host));
    entry.insert("guest".into(), Value::String(guest.into()));
    entry.insert("access".into(), Value::String(access.into()));
    check_alone(Grant::Files(entry))
}

/// `NAME` (from warden's environment) or `NAME=VALUE`.
fn parse_env(s: &str) -> Result<Grant, String> {
    let (name, value) = match s.split_once('=') {
        Some((name, value)) => (name, Value::String(value.into())),
        None => {
            let mut from = Table::new();
            from.insert("from-host".into(), Value::String(s.into()));
            (s, Value::Table(from))
        }
    };
    if name.is_empty() {
        return Err("expected NAME or NAME=VALUE".into());
    }
    check_alone(Grant::Env(name.into(), value))
}

/// `URL` or `URL:METHODS`, METHODS upper-case and comma-separated (`:GET,POST`). A `:` that
/// ends a port (`http://127.0.0.1:8080`) or a path is part of the URL.
fn parse_http(s: &str) -> Result<Grant, String> {
    let is_methods = |m: &str| {
        !m.is_empty()
            && m.split(',')
                .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_uppercase()))
    };
    let (url, methods) = match s.rsplit_once(':') {
        Some((url, m)) if is_methods(m) => (url, Some(m)),
        _ => (s, None),
    };
    let mut entry = Table::new();
    entry.insert("url".into(), Value::String(url.into()));
    if let Some(m) = methods {
        let list = m.split(',').map(|t| Value::String(t.into())).collect();
        entry.insert("methods".into(), Value::Array(list));
    }
    check_alone(Grant::Http(entry))
}

/// `HOST:PORT`, as a `[network] connect` entry.
fn parse_connect(s: &str) -> Result<Grant, String> {
    check_alone(Grant::Connect(s.into()))
}

/// `KEY=VALUE`: VALUE is an integer when it is one (`fuel=1_000_000`), a string otherwise
/// (`memory=64MiB`, `wall=5s`).
fn parse_limit(s: &str) -> Result<Grant, String> {
    let (key, value) = s
        .split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| "expected KEY=VALUE, e.g. `memory=64MiB` or `wall=5s`".to_string())?;
    let digits = value.replace('_', "");
    let value = match digits.parse::<i64>() {
        Ok(n) if !digits.starts_with(['+', '-']) => Value::Integer(n),
        _ => Value::String(value.into()),
    };
    check_alone(Grant::Limit(key.into(), value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn http_methods_are_split_off_only_when_they_are_methods() {
        let url = |g: Grant| match g {
            Grant::Http(t) => (
                t["url"].as_str().unwrap_or_default().to_string(),
                t.get("methods").map(ToString::to_string),
            ),
            _ => panic!("not http"),
        };
        let g = parse_http("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(url(g), ("http://127.0.0.1:8080/v1/".into(), None));
        let g = parse_http("http://127.0.0.1:8080/v1/:GET,POST").unwrap();
        assert_eq!(
            url(g),
            (
                "http://127.0.0.1:8080/v1/".into(),
                Some("[\"GET\", \"POST\"]".into())
            )
        );
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        assert!(parse_dir("/tmp").unwrap_err().contains("HOST::GUEST"));
        assert!(parse_limit("memory").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_limit("memory=lots").unwrap_err().contains("memory"));
        assert!(parse_limit("colour=red").is_err());
        assert!(parse_env("=x").is_err());
    }
}
