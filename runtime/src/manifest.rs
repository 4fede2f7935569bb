//! The manifest: a TOML file that declares a non-human identity and what it may do.
//!
//! This module only parses and validates. Its output, [`Manifest`], is plain typed data that
//! [`crate::policy`] turns into a sandbox. Deny by default: an absent key grants nothing.
//!
//! Two steps: `serde` reads the text into the types of `raw` (derived, `deny_unknown_fields`;
//! each value is a newtype that checks itself), then `resolve` looks up what needs the world
//! (host paths, `from-host` variables) and checks values against one another. Connect entries
//! and URLs are parsed once, here, into the types the policy decides with ([`ConnectRule`],
//! [`UrlPrefix`]). The JSON Schema ([`schema`]) is derived from the same raw types.
//!
//! Every error names the file, the line and the column, and says what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where the manifest came from: its path, or a name such as `<string>`.
    pub source: PathBuf,
    /// The folder relative `host` and `module` paths were resolved against.
    pub base_dir: PathBuf,
    /// `[identity]`: the name and id the workload acts as.
    pub identity: Identity,
    /// `[workload]`: the module, its pin, its arguments and its entry point.
    pub workload: Workload,
    /// One entry per `[[files]]` table, in the manifest's order.
    pub files: Vec<FileGrant>,
    /// The guest's environment, in the manifest's order, values already resolved.
    pub env: Vec<EnvVar>,
    /// `[stdio]`: what the guest's stdin, stdout and stderr are connected to.
    pub stdio: Stdio,
    /// `[clocks]`: whether the guest gets the host's clocks or frozen ones.
    pub clocks: Clocks,
    /// `[random]`: whether the guest gets the host's CSPRNG or a seeded generator.
    pub random: Random,
    /// `[network] connect` entries, typed, in the manifest's order (components only). Each
    /// reads as the entry as written (`Deref<Target = str>`).
    pub network: Vec<ConnectRule>,
    /// `[network] listen` entries, typed, in the manifest's order (components only).
    pub listen: Vec<ListenRule>,
    /// `[network] udp` entries, typed, in the manifest's order (components only).
    pub udp: Vec<UdpRule>,
    /// `[[http]]` entries (components only).
    pub http: Vec<HttpRule>,
    /// `[secrets.NAME]` tables, sorted by name.
    pub secrets: Vec<Secret>,
    /// `[limits]`, with the default of every key that is absent.
    pub limits: Limits,
}

/// `[identity]`: who the workload acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `[a-z0-9][a-z0-9-]*`
    pub name: String,
    /// A URI; `warden://local/<name>` when absent.
    pub id: String,
    /// `[identity] owner`: free text shown by `warden check`; `None` when absent.
    pub owner: Option<String>,
}

/// `[workload]`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Workload {
    /// Resolved against [`Manifest::base_dir`]. Not checked for existence here: a module given
    /// on the command line overrides it.
    pub module: Option<PathBuf>,
    /// Lower-case hex SHA-256 pin of the module's bytes.
    pub sha256: Option<String>,
    /// `[workload] args`: the guest's arguments after the program name; a run's
    /// [`RunOptions::args`](crate::RunOptions::args) are appended to them.
    pub args: Vec<String>,
    /// An export to call instead of the command entry point.
    pub invoke: Option<String>,
    /// The initial working directory components are told (`wasi:cli/environment`
    /// `initial-cwd`): a normalised guest path within a folder grant, checked at load.
    pub cwd: Option<String>,
}

/// Whether a file grant may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "\"read\" or \"read-write\"")]
pub enum Access {
    /// `"read"`: the guest may read the grant, not change it.
    Read,
    /// `"read-write"`: the guest may also change it; a single file's changes are copied back
    /// over the host file when the run ends (`docs/manifest.md`, `[[files]]`).
    ReadWrite,
}

/// Whether a file grant names a directory (its subtree) or a single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The host path is a directory: the grant covers its whole subtree.
    Dir,
    /// The host path is a regular file: the guest sees a copy of it in a private folder that
    /// holds only granted files.
    File,
}

/// One `[[files]]` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileGrant {
    /// Canonical absolute host path (it exists: checked while loading).
    pub host: PathBuf,
    /// Absolute, normalised guest path: starts with `/`, no `.`/`..`/empty components, no
    /// trailing `/` (except the root itself).
    pub guest: String,
    /// `access`: whether the guest may change the grant.
    pub access: Access,
    /// Whether `host` is a directory or a single regular file (checked when the manifest was
    /// loaded).
    pub kind: FileKind,
}

/// Where an environment variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// Written in the manifest (`NAME = "value"`).
    Literal,
    /// Copied from this variable of warden's own environment.
    FromHost(String),
}

/// One `[env]` entry, with its value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name: the `[env]` key.
    pub name: String,
    /// The value the guest sees (a `from-host` value read when the manifest was loaded).
    pub value: String,
    /// Whether the value was written literally or copied from warden's environment.
    pub source: EnvSource,
}

/// What a guest's stdin is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "\"inherit\" or \"null\"")]
pub enum StdinMode {
    /// `"null"`, the default: the guest reads end of file.
    #[default]
    Null,
    /// `"inherit"`: the guest reads warden's own stdin.
    Inherit,
}

/// What a guest's stdout or stderr is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", expecting = "\"inherit\" or \"null\"")]
pub enum OutputMode {
    /// `"inherit"`, the default: written to warden's own stdout or stderr.
    #[default]
    Inherit,
    /// `"null"`: discarded, still counted against `[limits] output`.
    Null,
}

/// `[stdio]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stdio {
    /// `[stdio] stdin`; [`StdinMode::Null`] when absent.
    pub stdin: StdinMode,
    /// `[stdio] stdout`; [`OutputMode::Inherit`] when absent.
    pub stdout: OutputMode,
    /// `[stdio] stderr`; [`OutputMode::Inherit`] when absent.
    pub stderr: OutputMode,
}

/// `[clocks]`: `false` means a frozen, deterministic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clocks {
    /// `[clocks] wall`: the host's wall clock; when `false`, a clock frozen at
    /// 2000-01-01T00:00:00Z.
    pub wall: bool,
    /// `[clocks] monotonic`: the host's monotonic clock; when `false`, a clock frozen at 0.
    pub monotonic: bool,
}

/// `[random]`: `false` means a deterministic, seeded generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Random {
    /// `[random] secure`: the host's CSPRNG; when `false`, a fixed-seed generator that gives
    /// the same bytes every run.
    pub secure: bool,
}

/// One `[[http]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    /// As written.
    pub url: String,
    /// `url`, typed.
    pub prefix: UrlPrefix,
    /// Upper-case method names; `["GET"]` when absent.
    pub methods: Vec<String>,
}

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `from = "env:NAME"`: the variable `NAME` of warden's own environment.
    Env(String),
    /// `from = "file:PATH"`: a host file, its path resolved against [`Manifest::base_dir`]
    /// when relative.
    File(PathBuf),
}

/// `inject = { header, format, url }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    /// The name of the header the value is sent in, such as `Authorization`, as written.
    pub header: String,
    /// Contains `{secret}`.
    pub format: String,
    /// As written.
    pub url: String,
    /// `url`, typed.
    pub prefix: UrlPrefix,
}

/// One `[secrets.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The `NAME` of `[secrets.NAME]` (`[a-z0-9][a-z0-9_-]*`): what the guest and the audit
    /// log call the secret.
    pub name: String,
    /// `from`: where the value is read when a run starts.
    pub from: SecretSource,
    /// `inject`: the header added to requests within its URL; `None` when absent (the secret
    /// is injected into no request).
    pub inject: Option<Inject>,
    /// `reveal`: whether the guest may read the plaintext through `warden:host/secrets`
    /// (every read audited); `false` when absent.
    pub reveal: bool,
}

/// `[limits]`, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory plus tables.
    pub memory: u64,
    /// Deterministic instruction budget; off unless set.
    pub fuel: Option<u64>,
    /// Wall-clock time for the whole run.
    pub wall: Duration,
    /// Bytes of stdout plus stderr.
    pub output: u64,
    /// Outbound `wasi:http` requests per run (`[limits] http-requests`).
    pub http_requests: u64,
    /// Bytes sent over network and HTTP.
    pub egress: u64,
    /// Bytes of one single-file grant: the largest file staged at start or copied back.
    pub staged_file: u64,
    /// Live resource handles of a component (streams, descriptors, sockets, HTTP fields, …).
    pub handles: u64,
}

impl Limits {
    /// 128 MiB: room for ordinary connectors (a Rust guest's heap and stack start far below
    /// this) while a runaway allocation stops long before it troubles the host.
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    /// 30 s: a connector call that takes longer is treated as hung.
    pub const DEFAULT_WALL: Duration = Duration::from_secs(30);
    /// 8 MiB of stdout + stderr: generous for logs and results, small enough that a flood
    /// cannot fill a disk or a log pipeline.
    pub const DEFAULT_OUTPUT: u64 = 8 << 20;
    /// 100 outbound HTTP requests per run.
    pub const DEFAULT_HTTP_REQUESTS: u64 = 100;
    /// 16 MiB sent over network and HTTP per run.
    pub const DEFAULT_EGRESS: u64 = 16 << 20;
    /// 16 MiB per single-file grant: config, cursor and state files are far smaller, and warden
    /// holds a staged file's original in memory and reads the guest's copy back at the end,
    /// so the bound caps what a guest can make warden read, hold and write (a sparse file
    /// included).
    pub const DEFAULT_STAGED_FILE: u64 = 16 << 20;
    /// The most live resource handles, and the default: see
    /// [`crate::host_memory::MAX_HANDLES`] for why this value.
    pub const DEFAULT_HANDLES: u64 = crate::host_memory::MAX_HANDLES as u64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            fuel: None,
            wall: Self::DEFAULT_WALL,
            output: Self::DEFAULT_OUTPUT,
            http_requests: Self::DEFAULT_HTTP_REQUESTS,
            egress: Self::DEFAULT_EGRESS,
            staged_file: Self::DEFAULT_STAGED_FILE,
            handles: Self::DEFAULT_HANDLES,
        }
    }
}

/// A manifest that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: cannot read manifest: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or not a valid manifest. `line` and `column` are 1-based.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The manifest's path, or the name given to [`Manifest::from_str_at`].
        path: PathBuf,
        /// The line of the mistake, from 1.
        line: usize,
        /// The column of the mistake, from 1.
        column: usize,
        /// What is wrong and what was expected, without the position.
        message: String,
    },
}

impl Manifest {
    /// Reads and validates the manifest at `path`; relative paths in it are resolved against
    /// the folder that holds it.
    ///
    /// # Ambient Authority
    /// Reads `path`, checks that every `[[files]]` host path exists, and reads warden's own
    /// environment for `from-host` values.
    ///
    /// # Errors
    /// [`ManifestError::Read`] if the file cannot be read, is not a regular file or is not
    /// UTF-8, [`ManifestError::Invalid`] for
    /// anything the manifest gets wrong.
    pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
        Self::from_file_with_env(path, &resolve::host_env)
    }

    /// [`Manifest::from_file`] with `env` answering the `from-host` lookups instead of
    /// warden's own environment (`warden check` uses it to warn about an unset variable
    /// rather than fail).
    ///
    /// # Errors
    /// As [`Manifest::from_file`].
    pub fn from_file_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let text = resolve::read_text(path)?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        resolve::parse(&text, path, &base_dir, env)
    }

    /// Validates manifest `text`; `source` names it in errors, relative paths are resolved
    /// against `base_dir`.
    ///
    /// # Ambient Authority
    /// Checks that every `[[files]]` host path exists and reads warden's own environment for
    /// `from-host` values.
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] for anything the manifest gets wrong.
    pub fn from_str_at(
        text: &str,
        source: &Path,
        base_dir: &Path,
    ) -> Result<Manifest, ManifestError> {
        resolve::parse(text, source, base_dir, &resolve::host_env)
    }
}

/// The manifest's JSON Schema (draft 2020-12), derived from the types the parser reads, for
/// editors (Taplo, Even Better TOML) and other tools.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<raw::RawManifest>()
        .to_value();
    drop_null(&mut schema);
    schema
}

/// TOML has no null: an optional key is one that may be left out, so schemars' `anyOf [T,
/// null]` for an `Option<T>` becomes `T`.
fn drop_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(any)) = map.get("anyOf")
                && any.len() == 2
                && any[1] == serde_json::json!({"type": "null"})
                && let Some(Value::Object(inner)) = any.first().cloned()
            {
                map.remove("anyOf");
                for (k, x) in inner {
                    map.entry(k).or_insert(x);
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// [`schema`] as the text `warden schema` prints and `docs/warden.schema.json` holds: pretty
/// JSON and a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

pub(crate) mod connect;
mod de;
mod raw;
/// A size as the manifest writes it (`"64MiB"`), for flags that take one.
pub use raw::{format_size, parse_size};
mod resolve;
pub(crate) mod sockets;
#[cfg(test)]
mod tests;
mod url;

pub use connect::{ConnectRule, Host};
pub use sockets::{ListenRule, UdpRule};
pub use url::UrlPrefix;
