//! The typed policy: a manifest with the command line's overrides applied, and the one place
//! that turns it into a WASI context and limits.

use crate::audit::{Audit, Decision};
use crate::broker::{Broker, EgressMeter, HttpRules};
use crate::error::LoadError;
use crate::manifest::{
    Access, Clocks, EnvSource, EnvVar, FileGrant, FileKind, HttpRule, Identity, Limits, Manifest,
    OutputMode, Random, Secret, StdinMode, Stdio,
};
use crate::net::{self, NetRules};
use crate::secrets::Secrets;
use crate::sockets::SocketGate;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The wall clock a guest sees when `[clocks] wall` is not granted: frozen at
/// 2000-01-01T00:00:00Z, far enough from now that nobody mistakes it for the real time.
pub const FROZEN_WALL_CLOCK: Duration = Duration::from_secs(946_684_800);

/// Seed of the generator a guest gets when `[random] secure` is not granted. Fixed so that
/// runs are reproducible; never use it for anything secret.
pub const DETERMINISTIC_RANDOM_SEED: u64 = 0x5741_5244_454e_0001;

/// Bytes of the deterministic stream before it repeats.
const DETERMINISTIC_RANDOM_PERIOD: usize = 64 * 1024;

/// Everything a run is allowed, in typed form.
#[derive(Debug, Clone)]
pub struct Policy {
    pub identity: Identity,
    /// The manifest it came from, if any.
    pub manifest: Option<PathBuf>,
    /// The module to run (the command line's module wins over the manifest's).
    pub module: Option<PathBuf>,
    pub sha256: Option<String>,
    /// argv after the program name.
    pub args: Vec<String>,
    pub invoke: Option<String>,
    pub files: Vec<FileGrant>,
    pub env: Vec<EnvVar>,
    pub stdio: Stdio,
    pub clocks: Clocks,
    pub random: Random,
    pub network: Vec<String>,
    pub http: Vec<HttpRule>,
    pub secrets: Vec<Secret>,
    pub limits: Limits,
}

impl Policy {
    /// The policy a manifest declares.
    pub fn from_manifest(m: Manifest) -> Policy {
        Policy {
            identity: m.identity,
            manifest: Some(m.source),
            module: m.workload.module,
            sha256: m.workload.sha256,
            args: m.workload.args,
            invoke: m.workload.invoke,
            files: m.files,
            env: m.env,
            stdio: m.stdio,
            clocks: m.clocks,
            random: m.random,
            network: m.network,
            http: m.http,
            secrets: m.secrets,
            limits: m.limits,
        }
    }

    /// The policy of a run without a manifest: identity `anonymous`, no filesystem, no
    /// environment, no network, no secrets, stdin closed; stdout and stderr inherited; the
    /// default limits.
    pub fn anonymous() -> Policy {
        Policy {
            identity: Identity {
                name: "anonymous".into(),
                id: "warden://local/anonymous".into(),
                owner: None,
            },
            manifest: None,
            module: None,
            sha256: None,
            args: Vec::new(),
            invoke: None,
            files: Vec::new(),
            env: Vec::new(),
            stdio: Stdio::default(),
            clocks: Clocks::default(),
            random: Random::default(),
            network: Vec::new(),
            http: Vec::new(),
            secrets: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// The host syscall groups this policy needs once the host is locked down: the base set,
    /// plus one group per kind of grant. `host_seccomp` turns them into the allow list.
    pub fn seccomp_groups(&self) -> Vec<host_seccomp::Group> {
        use host_seccomp::Group;
        let mut groups = vec![Group::Base];
        if !self.files.is_empty() {
            groups.push(Group::FileRead);
        }
        if self.files.iter().any(|f| f.access == Access::ReadWrite) {
            groups.push(Group::FileWrite);
        }
        if self.files.iter().any(|f| f.kind == FileKind::File) {
            groups.push(Group::FileStaging);
        }
        if self.stdio.stdin == StdinMode::Inherit {
            groups.push(Group::Stdin);
        }
        if self.clocks.wall || self.clocks.monotonic {
            groups.push(Group::Clocks);
        }
        if !self.network.is_empty() || !self.http.is_empty() {
            groups.push(Group::Network);
        }
        groups
    }

    /// The host's syscall allow list for this policy.
    pub fn seccomp_profile(&self) -> host_seccomp::Profile {
        host_seccomp::Profile::new(&self.seccomp_groups())
    }

    /// Refuses grants the workload cannot use, rather than ignoring them: `[network]`,
    /// `[[http]]` and `[secrets]` are served through WASI preview 2 interfaces, which core
    /// modules do not have.
    ///
    /// # Errors
    /// [`LoadError::Unsupported`] naming the grant.
    pub fn check_supported(&self, is_component: bool) -> Result<(), LoadError> {
        if is_component {
            return Ok(());
        }
        let unsupported = [
            ("[network]", !self.network.is_empty()),
            ("[[http]]", !self.http.is_empty()),
            ("[secrets]", !self.secrets.is_empty()),
        ];
        for (what, present) in unsupported {
            if present {
                return Err(LoadError::Unsupported(format!(
                    "{what} grants need a component (a wasm32-wasip2 build): a core module \
                     has no wasi:sockets or wasi:http to use them through"
                )));
            }
        }
        Ok(())
    }

    /// Builds a run's egress state: reads the secrets from their sources, types the network
    /// and HTTP rules, and builds the resolver. Runs before the host is locked down.
    ///
    /// # Ambient Authority
    /// Reads the secrets' sources (warden's environment, host files) and the host's resolver
    /// configuration (`/etc/resolv.conf`, `/etc/hosts`).
    ///
    /// # Errors
    /// [`LoadError::Secret`] for a missing, empty or unreadable secret source;
    /// [`LoadError::Grant`] for a rule that cannot be typed.
    pub fn egress(&self, audit: &Audit) -> Result<Egress, LoadError> {
        let secrets = Arc::new(Secrets::load(&self.secrets)?);
        let meter = EgressMeter::new(self.limits.http_requests, self.limits.egress, audit);
        let grant_err = |message: String| LoadError::Grant {
            path: self.manifest.clone().unwrap_or_default(),
            message,
        };
        let rules = NetRules::parse(&self.network).map_err(grant_err)?;
        let http = HttpRules::new(&self.http).map_err(grant_err)?;
        let needs_names = rules
            .rules()
            .iter()
            .any(|r| matches!(r.host, net::Host::Name(_) | net::Host::Wildcard(_)))
            || http
                .rules()
                .iter()
                .any(|r| r.prefix.host.parse::<IpAddr>().is_err());
        let resolver = needs_names.then(host_resolver).flatten();
        let gate = SocketGate::new(
            rules,
            secrets.clone(),
            resolver.clone(),
            meter.clone(),
            audit,
        );
        let broker = Broker::new(http, secrets.clone(), resolver, meter.clone(), audit)
            .map_err(grant_err)?;
        Ok(Egress {
            secrets,
            meter,
            gate,
            broker,
        })
    }

    /// The effective grants, as recorded in the audit `start` event and shown by `check`.
    pub fn grants_json(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                json!({
                    "host": f.host.display().to_string(),
                    "guest": f.guest,
                    "access": access_str(f.access),
                    "kind": match f.kind { FileKind::Dir => "dir", FileKind::File => "file" },
                })
            })
            .collect();
        // Values stay out of the log: they may be credentials.
        let env: Vec<&str> = self.env.iter().map(|e| e.name.as_str()).collect();
        json!({
            "files": files,
            "env": env,
            "stdio": {
                "stdin": match self.stdio.stdin { StdinMode::Null => "null", StdinMode::Inherit => "inherit" },
                "stdout": output_str(self.stdio.stdout),
                "stderr": output_str(self.stdio.stderr),
            },
            "clocks": { "wall": self.clocks.wall, "monotonic": self.clocks.monotonic },
            "random": { "secure": self.random.secure },
            "network": self.network,
            "http": self.http.iter().map(|h| json!({"url": h.url, "methods": h.methods})).collect::<Vec<_>>(),
            "secrets": self.secrets.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            "limits": {
                "memory": self.limits.memory,
                "fuel": self.limits.fuel,
                "wall_ms": u64::try_from(self.limits.wall.as_millis()).unwrap_or(u64::MAX),
                "output": self.limits.output,
                "http-requests": self.limits.http_requests,
                "egress": self.limits.egress,
            },
        })
    }

    /// Configures `builder` with exactly what this policy grants, and records each grant as an
    /// `allow` decision. This is the one translation point from policy to WASI.
    ///
    /// Single-file grants are staged: see [`FileStaging`].
    ///
    /// # Errors
    /// A granted path cannot be opened or staged.
    pub(crate) fn configure_wasi(
        &self,
        builder: &mut WasiCtxBuilder,
        egress: &Egress,
        audit: &Audit,
    ) -> Result<FileStaging, LoadError> {
        // Environment: only what is declared.
        for var in &self.env {
            builder.env(&var.name, &var.value);
            let reason = match &var.source {
                EnvSource::Literal => "declared in [env]".to_string(),
                EnvSource::FromHost(h) => format!("declared in [env], copied from host ${h}"),
            };
            audit.decision("env", &var.name, Decision::Allow, &reason);
        }

        // Clocks: the host's, or frozen.
        if self.clocks.wall {
            audit.decision("clock", "wall", Decision::Allow, "granted by [clocks] wall");
        } else {
            builder.wall_clock(FrozenWallClock);
        }
        if self.clocks.monotonic {
            audit.decision(
                "clock",
                "monotonic",
                Decision::Allow,
                "granted by [clocks] monotonic",
            );
        } else {
            builder.monotonic_clock(FrozenMonotonicClock);
        }

        // Random: the host's CSPRNG, or a seeded deterministic stream.
        if self.random.secure {
            audit.decision(
                "random",
                "secure",
                Decision::Allow,
                "granted by [random] secure",
            );
        } else {
            let bytes = deterministic_stream();
            builder.secure_random(wasmtime_wasi::Deterministic::new(bytes.to_vec()));
            builder.insecure_random(wasmtime_wasi::Deterministic::new(bytes.to_vec()));
            builder.insecure_random_seed(u128::from(DETERMINISTIC_RANDOM_SEED));
        }

        // Sockets: warden's gate decides every socket, lookup and address, and audits each.
        // Without a [network] grant it refuses them before a socket exists.
        builder.allow_tcp(true);
        builder.allow_udp(false);
        builder.allow_ip_name_lookup(true);
        let gate = egress.gate.clone();
        builder.socket_addr_check(move |addr, use_| {
            let allowed = gate.check(addr, use_);
            Box::pin(async move { allowed })
        });

        // Files: directories directly, single files through a private staging folder.
        let mut staging = FileStaging::default();
        for grant in &self.files {
            let perms = match grant.access {
                Access::Read => FsPerms::ReadOnly,
                Access::ReadWrite => FsPerms::ReadWrite,
            };
            match grant.kind {
                FileKind::Dir => {
                    builder
                        .preopened_dir(&grant.host, &grant.guest, perms)
                        .map_err(|e| LoadError::Grant {
                            path: grant.host.clone(),
                            message: e.to_string(),
                        })?;
                    staging.preopens.push(grant.guest.clone());
                }
                FileKind::File => staging.stage(grant)?,
            }
            audit.decision(
                "fs",
                &grant.guest,
                Decision::Allow,
                &format!(
                    "{} grant of {} {}",
                    access_str(grant.access),
                    match grant.kind {
                        FileKind::Dir => "directory",
                        FileKind::File => "file",
                    },
                    grant.host.display()
                ),
            );
        }
        for dir in &staging.dirs {
            let perms = if dir.files.iter().any(|f| f.access == Access::ReadWrite) {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(dir.tmp.path(), &dir.guest, perms)
                .map_err(|e| LoadError::Grant {
                    path: dir.tmp.path().to_owned(),
                    message: e.to_string(),
                })?;
            staging.preopens.push(dir.guest.clone());
        }
        Ok(staging)
    }
}

fn access_str(a: Access) -> &'static str {
    match a {
        Access::Read => "read",
        Access::ReadWrite => "read-write",
    }
}

fn output_str(o: OutputMode) -> &'static str {
    match o {
        OutputMode::Inherit => "inherit",
        OutputMode::Null => "null",
    }
}

/// The deterministic stream, computed once per process.
fn deterministic_stream() -> &'static [u8] {
    static STREAM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    STREAM.get_or_init(deterministic_bytes)
}

/// A splitmix64 stream from [`DETERMINISTIC_RANDOM_SEED`].
fn deterministic_bytes() -> Vec<u8> {
    let mut state = DETERMINISTIC_RANDOM_SEED;
    let mut out = Vec::with_capacity(DETERMINISTIC_RANDOM_PERIOD);
    while out.len() < DETERMINISTIC_RANDOM_PERIOD {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

struct FrozenWallClock;

impl wasmtime_wasi::HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        FROZEN_WALL_CLOCK
    }
}

struct FrozenMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Single-file grants, staged so the guest sees that file and nothing beside it.
///
/// WASI can only grant directories, so each guest folder that holds single-file grants
/// becomes a private temporary folder (mode 0700) holding copies of exactly those files.
/// A `read` file is a snapshot taken at start. A `read-write` file is copied back over the
/// original when the run ends (however it ends), if the guest changed it; anything else the
/// guest does in that folder is discarded with it.
#[derive(Default)]
pub(crate) struct FileStaging {
    dirs: Vec<StagedDir>,
    /// Guest paths of every preopened folder, in preopen order.
    preopens: Vec<String>,
}

struct StagedDir {
    guest: String,
    tmp: tempfile::TempDir,
    files: Vec<StagedFile>,
}

struct StagedFile {
    host: PathBuf,
    staged: PathBuf,
    access: Access,
    original: Vec<u8>,
}

impl FileStaging {
    /// Guest paths of the preopened folders, in the order they were preopened.
    pub(crate) fn preopens(&self) -> &[String] {
        &self.preopens
    }

    fn stage(&mut self, grant: &FileGrant) -> Result<(), LoadError> {
        let (parent, name) = split_guest(&grant.guest);
        let err = |e: std::io::Error| LoadError::Grant {
            path: grant.host.clone(),
            message: e.to_string(),
        };
        let idx = match self.dirs.iter().position(|d| d.guest == parent) {
            Some(i) => i,
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("warden-files-")
                    .tempdir()
                    .map_err(err)?;
                self.dirs.push(StagedDir {
                    guest: parent.to_string(),
                    tmp,
                    files: Vec::new(),
                });
                self.dirs.len() - 1
            }
        };
        let dir = &mut self.dirs[idx];
        let original = std::fs::read(&grant.host).map_err(err)?;
        let staged = dir.tmp.path().join(name);
        std::fs::write(&staged, &original).map_err(err)?;
        if grant.access == Access::Read {
            let mut perms = std::fs::metadata(&staged).map_err(err)?.permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(&staged, perms).map_err(err)?;
        }
        dir.files.push(StagedFile {
            host: grant.host.clone(),
            staged,
            access: grant.access,
            original,
        });
        Ok(())
    }

    /// Copies changed read-write files back to the host. Returns the host paths written, and
    /// the errors met (as messages), so the caller can audit both.
    pub(crate) fn write_back(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut written = Vec::new();
        let mut errors = Vec::new();
        for f in self.dirs.iter().flat_map(|d| &d.files) {
            if f.access != Access::ReadWrite {
                continue;
            }
            match std::fs::read(&f.staged) {
                Ok(now) if now != f.original => match std::fs::write(&f.host, &now) {
                    Ok(()) => written.push(f.host.clone()),
                    Err(e) => errors.push(format!("{}: {e}", f.host.display())),
                },
                Ok(_) => {}
                // The guest removed or renamed its copy: the original stays as it was.
                Err(e) => errors.push(format!(
                    "{}: staged copy unreadable ({e}); original left unchanged",
                    f.host.display()
                )),
            }
        }
        (written, errors)
    }
}

/// `/config/app.toml` → (`/config`, `app.toml`); `/app.toml` → (`/`, `app.toml`).
fn split_guest(guest: &str) -> (&str, &str) {
    match guest.rfind('/') {
        Some(0) => ("/", &guest[1..]),
        Some(i) => (&guest[..i], &guest[i + 1..]),
        None => ("/", guest),
    }
}

/// The program name a guest sees as `argv[0]`: the module's file name.
pub(crate) fn program_name(module: Option<&Path>) -> String {
    module
        .and_then(|m| m.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "main.wasm".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_split_into_folder_and_name() {
        assert_eq!(split_guest("/config/app.toml"), ("/config", "app.toml"));
        assert_eq!(split_guest("/app.toml"), ("/", "app.toml"));
        assert_eq!(split_guest("/a/b/c"), ("/a/b", "c"));
    }

    #[test]
    fn deterministic_random_is_reproducible_and_not_constant() {
        let a = deterministic_bytes();
        assert_eq!(a, deterministic_bytes());
        assert_eq!(a.len(), DETERMINISTIC_RANDOM_PERIOD);
        assert!(a.windows(8).take(16).any(|w| w != &a[..8]));
    }
}

/// A run's egress state, built by [`Policy::egress`].
#[derive(Debug)]
pub struct Egress {
    pub secrets: Arc<Secrets>,
    pub meter: Arc<EgressMeter>,
    /// Decides sockets, name lookups and addresses; refuses all without a `[network]` grant.
    pub gate: Arc<SocketGate>,
    pub broker: Broker,
}

/// The host's DNS resolver, configured from `/etc/resolv.conf` and `/etc/hosts`; `None`
/// when the host has no usable configuration (names then do not resolve; IP literals still
/// work).
fn host_resolver() -> Option<Arc<hickory_resolver::TokioResolver>> {
    let builder = hickory_resolver::TokioResolver::builder_tokio().ok()?;
    builder.build().ok().map(Arc::new)
}
