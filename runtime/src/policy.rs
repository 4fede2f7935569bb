//! The typed policy: a manifest with the command line's overrides applied, and the one place
//! that turns it into a WASI context and limits.

use crate::audit::{Audit, Decided, Decision};
use crate::broker::{Broker, HttpRules};
use crate::egress::EgressMeter;
use crate::error::LoadError;
use crate::manifest::{
    Access, Clocks, ConnectRule, EnvSource, EnvVar, FileGrant, FileKind, HttpRule, Identity,
    Limits, ListenRule, Manifest, OutputMode, Random, Secret, StdinMode, Stdio, UdpRule,
};
use crate::net::{self, NetRules};
use crate::secrets::Secrets;
use crate::sockets::SocketGate;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
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
///
/// Built only from a validated [`Manifest`] ([`Policy::from_manifest`]) or as the policy that
/// grants nothing ([`Policy::anonymous`]): it cannot be written as a struct literal outside
/// warden. Its fields stay public for overrides such as the command line's module
/// ([`Policy::with_module`] does that one); what a run depends on is checked again when it
/// loads or starts (grants this version can enforce, NUL bytes in arguments and environment,
/// secrets' values).
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// `[workload] cwd`: the initial working directory components are told.
    pub cwd: Option<String>,
    pub files: Vec<FileGrant>,
    pub env: Vec<EnvVar>,
    pub stdio: Stdio,
    pub clocks: Clocks,
    pub random: Random,
    /// `[network] connect`.
    pub network: Vec<ConnectRule>,
    /// `[network] listen`.
    pub listen: Vec<ListenRule>,
    /// `[network] udp`.
    pub udp: Vec<UdpRule>,
    pub http: Vec<HttpRule>,
    pub secrets: Vec<Secret>,
    pub limits: Limits,
}

impl Policy {
    /// The grant through which the workload could write or replace `path`, if any: a
    /// read-write folder grant that holds it (at any depth) or a read-write single-file grant
    /// of that very file. For files warden itself writes (audit logs, LEARNED), which must
    /// not be where the workload they describe can reach them.
    ///
    /// `path` need not exist: its folder is resolved (symbolic links included) and its name
    /// joined back. A folder that does not resolve is compared as given.
    ///
    /// # Ambient Authority
    /// Resolves `path`'s folder in the host filesystem.
    pub fn writable_by_guest(&self, path: &std::path::Path) -> Option<&FileGrant> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let resolved = match (absolute.parent(), absolute.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or(absolute.clone()),
            _ => absolute.clone(),
        };
        self.files.iter().find(|g| {
            g.access == Access::ReadWrite
                && match g.kind {
                    FileKind::Dir => resolved.starts_with(&g.host),
                    FileKind::File => resolved == g.host,
                }
        })
    }

    /// A read-write grant that reaches into folder `dir` (it holds `dir`, or lies inside
    /// it), if any: for folders warden keeps its own files in, such as the module cache,
    /// whose entries are compiled code warden would load and run.
    ///
    /// # Ambient Authority
    /// Resolves `dir` in the host filesystem.
    pub fn writes_within(&self, dir: &std::path::Path) -> Option<&FileGrant> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.files.iter().find(|g| {
            g.access == Access::ReadWrite && (dir.starts_with(&g.host) || g.host.starts_with(&dir))
        })
    }

    /// This policy with its module replaced (as `warden run MODULE` does).
    #[must_use]
    pub fn with_module(mut self, module: impl Into<PathBuf>) -> Policy {
        self.module = Some(module.into());
        self
    }

    /// The policy a manifest declares.
    pub fn from_manifest(m: Manifest) -> Policy {
        Policy {
            identity: m.identity,
            manifest: Some(m.source),
            module: m.workload.module,
            sha256: m.workload.sha256,
            args: m.workload.args,
            invoke: m.workload.invoke,
            cwd: m.workload.cwd,
            files: m.files,
            env: m.env,
            stdio: m.stdio,
            clocks: m.clocks,
            random: m.random,
            network: m.network,
            listen: m.listen,
            udp: m.udp,
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
            cwd: None,
            files: Vec::new(),
            env: Vec::new(),
            stdio: Stdio::default(),
            clocks: Clocks::default(),
            random: Random::default(),
            network: Vec::new(),
            listen: Vec::new(),
            udp: Vec::new(),
            http: Vec::new(),
            secrets: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Whether a single file (not a folder) is granted read-write: its staged copy is copied
    /// back when the run ends.
    pub fn has_read_write_file(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.access == Access::ReadWrite && f.kind == FileKind::File)
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
        if self.has_sockets() || !self.http.is_empty() {
            groups.push(Group::Network);
        }
        if !self.listen.is_empty() {
            groups.push(Group::NetworkListen);
        }
        groups
    }

    /// Whether any `[network]` entry (connect, listen or udp) grants sockets.
    pub fn has_sockets(&self) -> bool {
        !self.network.is_empty() || !self.listen.is_empty() || !self.udp.is_empty()
    }

    /// The host's syscall allow list for this policy.
    pub fn seccomp_profile(&self) -> host_seccomp::Profile {
        host_seccomp::Profile::new(&self.seccomp_groups())
    }

    /// Refuses grants the workload cannot use, rather than ignoring them: `[network]`,
    /// `[[http]]`, `[secrets]` and `[workload] cwd` are served through WASI preview 2
    /// interfaces, which core modules do not have.
    ///
    /// # Errors
    /// [`LoadError::Unsupported`] naming the grant.
    pub fn check_supported(&self, is_component: bool) -> Result<(), LoadError> {
        if is_component {
            return Ok(());
        }
        let unsupported = [
            ("[network]", self.has_sockets()),
            ("[[http]]", !self.http.is_empty()),
            ("[secrets]", !self.secrets.is_empty()),
            ("[workload] cwd", self.cwd.is_some()),
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

    /// Builds a run's egress state: reads the secrets from their sources, sets up the network
    /// and HTTP rules (typed by the manifest), and builds the resolver. Runs before the host is locked down.
    ///
    /// # Ambient Authority
    /// Reads the secrets' sources (warden's environment, host files) and the host's resolver
    /// configuration (`/etc/resolv.conf`, `/etc/hosts`).
    ///
    /// # Errors
    /// [`LoadError::Secret`] for a missing, empty or unreadable secret source.
    pub fn egress(&self, audit: &Audit) -> Result<Egress, LoadError> {
        self.egress_with(audit, &crate::secrets::HostSecrets)
    }

    /// [`Policy::egress`] with the secrets' values from `store`.
    ///
    /// # Errors
    /// As [`Policy::egress`].
    pub fn egress_with(
        &self,
        audit: &Audit,
        store: &dyn crate::secrets::SecretStore,
    ) -> Result<Egress, LoadError> {
        let secrets = Arc::new(Secrets::load_from(&self.secrets, store)?);
        if !secrets.is_empty() {
            // From here on no record of this run can carry a value, whoever wrote the text.
            audit.set_redactor(secrets.clone());
        }
        let meter = EgressMeter::new(self.limits.http_requests, self.limits.egress, audit);
        let rules = NetRules::new(self.network.clone())
            .with_listen(self.listen.clone())
            .with_udp(self.udp.clone());
        let http = HttpRules::new(&self.http);
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
        let broker = Broker::new(http, secrets.clone(), resolver, meter.clone(), audit);
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
            "listen": self.listen,
            "udp": self.udp,
            "http": self.http.iter().map(|h| json!({"url": h.url, "methods": h.methods})).collect::<Vec<_>>(),
            "secrets": self.secrets.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            "limits": {
                "memory": self.limits.memory,
                "fuel": self.limits.fuel,
                "wall_ms": u64::try_from(self.limits.wall.as_millis()).unwrap_or(u64::MAX),
                "output": self.limits.output,
                "http-requests": self.limits.http_requests,
                "egress": self.limits.egress,
                "staged-file": self.limits.staged_file,
                "handles": self.limits.handles,
            },
        })
    }

    /// Configures `builder` with exactly what this policy grants, and records each grant as an
    /// `allow` decision. This is the one translation point from policy to WASI: the granted
    /// clocks and random generator are wrapped here for counting (`counters`; recorded as
    /// decisions too when `record`). The run's own streams and arguments are the run's to set.
    ///
    /// Single-file grants are staged: see [`FileStaging`].
    ///
    /// # Errors
    /// A granted path cannot be opened or staged.
    ///
    /// With `staged`, the single-file grants were staged outside this run (by `warden serve`'s
    /// server, see [`Policy::stage_files`]): their folders are preopened as given, and this
    /// run neither stages nor copies back.
    pub(crate) fn configure_wasi(
        &self,
        builder: &mut WasiCtxBuilder,
        egress: &Egress,
        audit: &Audit,
        counters: &Arc<crate::grant_use::GrantCounters>,
        record: bool,
        staged: Option<&PreStaged>,
    ) -> Result<FileStaging, LoadError> {
        self.wire_env(builder, audit);
        self.wire_clocks_and_random(builder, audit, counters, record);
        self.wire_network(builder, egress);
        self.wire_files(builder, audit, staged)
    }

    /// `[env]`: only the declared variables, each audited.
    fn wire_env(&self, builder: &mut WasiCtxBuilder, audit: &Audit) {
        // Environment: only what is declared.
        for var in &self.env {
            builder.env(&var.name, &var.value);
            let reason = match &var.source {
                EnvSource::Literal => "declared in [env]".to_string(),
                EnvSource::FromHost(h) => format!("declared in [env], copied from host ${h}"),
            };
            audit.decision(
                Decided::new("env", &var.name, Decision::Allow, "grant", reason).by(&var.name),
            );
        }
    }

    /// `[clocks]` and `[random]`: the host's (wrapped so their first use is counted, and
    /// recorded when `record`), or frozen and a seeded deterministic stream.
    fn wire_clocks_and_random(
        &self,
        builder: &mut WasiCtxBuilder,
        audit: &Audit,
        counters: &Arc<crate::grant_use::GrantCounters>,
        record: bool,
    ) {
        // Clocks: the host's, or frozen.
        if self.clocks.wall {
            audit.decision(Decided::new(
                "clock",
                "wall",
                Decision::Allow,
                "grant",
                "granted by [clocks] wall",
            ));
        } else {
            builder.wall_clock(FrozenWallClock);
        }
        if self.clocks.monotonic {
            audit.decision(Decided::new(
                "clock",
                "monotonic",
                Decision::Allow,
                "grant",
                "granted by [clocks] monotonic",
            ));
        } else {
            builder.monotonic_clock(FrozenMonotonicClock);
        }

        // Random: the host's CSPRNG, or a seeded deterministic stream.
        if self.random.secure {
            audit.decision(Decided::new(
                "random",
                "secure",
                Decision::Allow,
                "grant",
                "granted by [random] secure",
            ));
        } else {
            builder.secure_random(StreamCursor::default());
            builder.insecure_random(StreamCursor::default());
            builder.insecure_random_seed(u128::from(DETERMINISTIC_RANDOM_SEED));
        }
        // The granted clocks and generator, wrapped so that their first use is counted (and
        // recorded when the run records).
        crate::observe::watch_calls(
            builder,
            record.then_some(audit),
            counters,
            self.clocks.wall,
            self.clocks.monotonic,
            self.random.secure,
        );
    }

    /// `[network]`: warden's socket gate (from `egress`) decides every socket, lookup and
    /// address.
    fn wire_network(&self, builder: &mut WasiCtxBuilder, egress: &Egress) {
        // Sockets: warden's gate decides every socket, lookup and address, and audits each.
        // Without a [network] grant it refuses them before a socket exists.
        builder.allow_tcp(true);
        builder.allow_udp(!self.udp.is_empty());
        builder.allow_ip_name_lookup(true);
        let gate = egress.gate.clone();
        builder.socket_addr_check(move |addr, use_| {
            let allowed = gate.check(addr, use_);
            Box::pin(async move { allowed })
        });
    }

    /// `[[files]]`: folders preopened directly, single files staged in private folders
    /// preopened in their place; each grant audited.
    ///
    /// # Errors
    /// A granted path cannot be opened or staged.
    fn wire_files(
        &self,
        builder: &mut WasiCtxBuilder,
        audit: &Audit,
        staged: Option<&PreStaged>,
    ) -> Result<FileStaging, LoadError> {
        // Files: directories directly, single files through a private staging folder.
        let mut staging = FileStaging::new(audit, self.limits.staged_file);
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
                            source: Some(crate::error::cause(e)),
                        })?;
                    staging.preopens.push(grant.guest.clone());
                }
                FileKind::File => match staged {
                    None => staging.stage(grant)?,
                    Some(PreStaged::Folders(_)) => {}
                    Some(PreStaged::Failed { path, message }) => {
                        return Err(LoadError::Grant {
                            path: path.clone(),
                            message: message.clone(),
                            source: None,
                        });
                    }
                },
            }
            audit.decision(
                Decided::new(
                    "fs",
                    &grant.guest,
                    Decision::Allow,
                    "grant",
                    format!(
                        "{} grant of {} {}",
                        access_str(grant.access),
                        match grant.kind {
                            FileKind::Dir => "directory",
                            FileKind::File => "file",
                        },
                        grant.host.display()
                    ),
                )
                .by(&grant.guest),
            );
        }
        let mut staged_here = Vec::new();
        for dir in &lock(&staging.state).dirs {
            // A folder holds only read or only read-write files (the manifest refuses a mix):
            // a read single file is never in a folder the guest may write.
            let perms = if dir.files.iter().all(|f| f.access == Access::ReadWrite) {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            if let Some(tmp) = &dir.tmp {
                staged_here.push((tmp.path().to_owned(), dir.guest.clone(), perms));
            }
        }
        let prestaged = match staged {
            Some(PreStaged::Folders(folders)) => self.prestaged(folders)?,
            _ => Vec::new(),
        };
        for (path, guest, perms) in prestaged.into_iter().chain(staged_here) {
            builder
                .preopened_dir(&path, &guest, perms)
                .map_err(|e| LoadError::Grant {
                    path,
                    message: e.to_string(),
                    source: Some(crate::error::cause(e)),
                })?;
            staging.preopens.push(guest);
        }
        Ok(staging)
    }
}

impl Policy {
    /// The guest folders single-file grants are served from, in the order a run stages them,
    /// each with its permissions: read-write when every file in it is (the manifest refuses
    /// a mix).
    fn staged_folders(&self) -> Vec<(&str, FsPerms)> {
        let mut out: Vec<(&str, FsPerms)> = Vec::new();
        for grant in self.files.iter().filter(|f| f.kind == FileKind::File) {
            let (parent, _) = split_guest(&grant.guest);
            let rw = grant.access == Access::ReadWrite;
            match out.iter_mut().find(|(g, _)| *g == parent) {
                Some((_, perms)) => {
                    if !rw {
                        *perms = FsPerms::ReadOnly;
                    }
                }
                None => out.push((
                    parent,
                    if rw {
                        FsPerms::ReadWrite
                    } else {
                        FsPerms::ReadOnly
                    },
                )),
            }
        }
        out
    }

    /// Matches folders staged elsewhere to this policy's: exactly one host folder for each
    /// guest folder of its single-file grants, none for anything else. The permissions come
    /// from the policy, never from whoever staged.
    fn prestaged(
        &self,
        folders: &[StagedFolder],
    ) -> Result<Vec<(PathBuf, String, FsPerms)>, LoadError> {
        let wanted = self.staged_folders();
        let refuse = |path: &Path, message: String| LoadError::Grant {
            path: path.to_owned(),
            message,
            source: None,
        };
        if let Some(extra) = folders
            .iter()
            .find(|f| !wanted.iter().any(|(g, _)| *g == f.guest))
        {
            return Err(refuse(
                &extra.host,
                format!(
                    "staged for {}, which no single-file grant names",
                    extra.guest
                ),
            ));
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (guest, perms) in wanted {
            let mut given = folders.iter().filter(|f| f.guest == guest);
            match (given.next(), given.next()) {
                (Some(f), None) => out.push((f.host.clone(), guest.to_string(), perms)),
                (None, _) => {
                    return Err(refuse(
                        Path::new(guest),
                        "the single-file grants of this folder were not staged".into(),
                    ));
                }
                (Some(f), Some(_)) => {
                    return Err(refuse(&f.host, format!("{guest} staged twice")));
                }
            }
        }
        Ok(out)
    }

    /// Stages this policy's single-file grants outside a run, as a run would (see
    /// `FileStaging`): for a process that hands the folders to another to run in
    /// ([`PreStaged`]), as `warden serve`'s server does for its locked-down workers.
    /// Copy-back and removal happen on [`StagedFiles::finish`] (removal only, on drop).
    ///
    /// # Errors
    /// [`LoadError::Grant`] when a granted file cannot be staged: missing, not a regular
    /// file, over `[limits] staged-file`, or no private folder could be made.
    pub fn stage_files(&self, audit: &Audit) -> Result<StagedFiles, LoadError> {
        let mut staging = FileStaging::new(audit, self.limits.staged_file);
        for grant in self.files.iter().filter(|f| f.kind == FileKind::File) {
            staging.stage(grant)?;
        }
        Ok(StagedFiles(staging))
    }
}

/// A folder of single-file grants staged outside the run that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFolder {
    /// The guest folder (`/etc/app` for a grant at `/etc/app/app.toml`).
    pub guest: String,
    /// The private host folder holding the copies.
    pub host: PathBuf,
}

/// Single-file grants staged by someone else for a run ([`crate::RunOptions::staged`]).
#[derive(Debug, Clone)]
pub enum PreStaged {
    /// The staged folders, one per guest folder of the policy's single-file grants.
    Folders(Vec<StagedFolder>),
    /// Staging failed: the run fails as it would have had it staged itself.
    Failed {
        /// The granted host file.
        path: PathBuf,
        /// Why it could not be staged.
        message: String,
    },
}

/// Single-file grants staged by [`Policy::stage_files`].
pub struct StagedFiles(FileStaging);

impl std::fmt::Debug for StagedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StagedFiles").field(&self.folders()).finish()
    }
}

impl StagedFiles {
    /// The staged folders, to preopen in the run.
    pub fn folders(&self) -> Vec<StagedFolder> {
        lock(&self.0.state)
            .dirs
            .iter()
            .filter_map(|d| {
                Some(StagedFolder {
                    guest: d.guest.clone(),
                    host: d.tmp.as_ref()?.path().to_owned(),
                })
            })
            .collect()
    }

    /// Copies changed read-write files back (when `copy_back`) under the checks a run's own
    /// staging makes, audited the same way, then removes the folders. Once; later calls do
    /// nothing.
    pub fn finish(&self, copy_back: bool) {
        self.0.finish(copy_back);
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

/// A run's place in the process's deterministic stream, read in a cycle: the bytes and order
/// of wasmtime-wasi's `Deterministic` over the same stream, without copying the stream (64 KiB)
/// into every run, twice.
#[derive(Default)]
struct StreamCursor {
    at: usize,
}

impl StreamCursor {
    fn next_byte(&mut self) -> u8 {
        let stream = deterministic_stream();
        let b = stream[self.at % stream.len()];
        self.at = (self.at + 1) % stream.len();
        b
    }
}

impl rand_core::TryRng for StreamCursor {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        // Big-endian from the stream, as `Deterministic` builds it.
        let b = [
            self.next_byte(),
            self.next_byte(),
            self.next_byte(),
            self.next_byte(),
        ];
        Ok(u32::from_be_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let hi = self.try_next_u32()?;
        let lo = self.try_next_u32()?;
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let stream = deterministic_stream();
        let mut filled = 0;
        while filled < dst.len() {
            let from = self.at % stream.len();
            let n = (stream.len() - from).min(dst.len() - filled);
            dst[filled..filled + n].copy_from_slice(&stream[from..from + n]);
            filled += n;
            self.at = (from + n) % stream.len();
        }
        Ok(())
    }
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
/// becomes a private temporary folder (mode 0700) holding copies of exactly those files
/// (mode 0600, 0400 for `read` ones), whatever the originals' modes. A `read` file is a
/// snapshot taken at start. A `read-write` file is copied back over the original when the run
/// ends, if the guest changed it: see [`FileStaging::finish`] for what is refused. Anything
/// else the guest does in that folder is discarded with it.
///
/// Every staging is registered process-wide until it is finished, so that a process ending
/// without unwinding (a signal, the wall watchdog) can still remove it:
/// [`finish_all_staging`].
pub(crate) struct FileStaging {
    state: Arc<Mutex<StagingState>>,
    /// Guest paths of every preopened folder, in preopen order.
    preopens: Vec<String>,
}

struct StagingState {
    dirs: Vec<StagedDir>,
    audit: Audit,
    /// `[limits] staged-file`.
    limit: u64,
    /// warden's process id, for the names of copy-back temporary files.
    pid: u32,
    /// Copied back (or not) and removed: nothing more to do.
    finished: bool,
}

struct StagedDir {
    guest: String,
    /// `None` once removed.
    tmp: Option<tempfile::TempDir>,
    files: Vec<StagedFile>,
}

struct StagedFile {
    host: PathBuf,
    guest: String,
    staged: PathBuf,
    access: Access,
    original: Vec<u8>,
    /// For read-write files: the host file's folder, opened at start, and its name there.
    target: Option<(cap_std::fs::Dir, std::ffi::OsString)>,
    /// The host file's permission bits, given to the file that replaces it.
    mode: u32,
}

/// Staging not yet finished, process-wide.
static LIVE_STAGING: Mutex<Vec<Weak<Mutex<StagingState>>>> = Mutex::new(Vec::new());

/// Finishes every single-file staging of this process that is still live: copies read-write
/// files back when `copy_back` is true (under the same checks as a normal end, audited the
/// same way), then removes the staging folders. For a process about to end without unwinding:
/// the CLI calls it when the wall watchdog stops a run stuck in a host call (with copy-back:
/// the guest is blocked, not writing) and on SIGTERM/SIGINT (without: the guest may be
/// halfway through a write).
pub fn finish_all_staging(copy_back: bool) {
    let live: Vec<Arc<Mutex<StagingState>>> = lock(&LIVE_STAGING)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for state in live {
        lock(&state).finish(copy_back);
    }
}

/// A poisoned lock only means another thread panicked holding it; the staging data itself is
/// still what it was, and removing it matters more than the panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for FileStaging {
    fn drop(&mut self) {
        lock(&self.state).finish(false);
        lock(&LIVE_STAGING)
            .retain(|w| w.strong_count() > 0 && !w.ptr_eq(&Arc::downgrade(&self.state)));
    }
}

/// A second handle on a [`FileStaging`], for the wall-time watchdog: it finishes the staging
/// of a run stuck in a host call from another thread.
#[derive(Clone)]
pub(crate) struct StagingHandle(Arc<Mutex<StagingState>>);

impl StagingHandle {
    /// As [`FileStaging::finish`]: runs once, whichever handle calls it first.
    pub(crate) fn finish(&self, copy_back: bool) {
        lock(&self.0).finish(copy_back);
    }
}

impl FileStaging {
    /// A handle that can finish this staging from another thread.
    pub(crate) fn handle(&self) -> StagingHandle {
        StagingHandle(self.state.clone())
    }

    fn new(audit: &Audit, limit: u64) -> FileStaging {
        let state = Arc::new(Mutex::new(StagingState {
            dirs: Vec::new(),
            audit: audit.clone(),
            limit,
            pid: std::process::id(),
            finished: false,
        }));
        lock(&LIVE_STAGING).push(Arc::downgrade(&state));
        FileStaging {
            state,
            preopens: Vec::new(),
        }
    }

    /// Guest paths of the preopened folders, in the order they were preopened.
    pub(crate) fn preopens(&self) -> &[String] {
        &self.preopens
    }

    /// Copies changed read-write files back to the host (when `copy_back`) and removes the
    /// staging folders. Runs once; later calls do nothing.
    ///
    /// A copy-back opens the staged file without following a symlink and checks the open
    /// descriptor: anything but a regular file with one link (a symlink, hard link, FIFO,
    /// socket, device or folder the guest left in its place), a file over
    /// `[limits] staged-file`, or a missing file is refused with a `deny` decision and the
    /// original is left as it was. Otherwise at most the limit is read, from that descriptor,
    /// and the original is replaced atomically: a new file in its folder, renamed over it.
    pub(crate) fn finish(&self, copy_back: bool) {
        lock(&self.state).finish(copy_back);
    }

    fn stage(&mut self, grant: &FileGrant) -> Result<(), LoadError> {
        use std::io::{Read, Write};
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        let (parent, name) = split_guest(&grant.guest);
        let err = |message: String| LoadError::Grant {
            path: grant.host.clone(),
            message,
            source: None,
        };
        // An I/O failure keeps the error itself as the source.
        let io_err_with = |what: &str, e: std::io::Error| LoadError::Grant {
            path: grant.host.clone(),
            message: if what.is_empty() {
                e.to_string()
            } else {
                format!("{what}: {e}")
            },
            source: Some(std::sync::Arc::new(e)),
        };
        let io_err = |e: std::io::Error| io_err_with("", e);
        let mut state = lock(&self.state);
        let limit = state.limit;

        // Opened without blocking (a FIFO put there since the manifest was read would block a
        // plain open), and checked on the descriptor before anything is read.
        let mut host = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&grant.host)
            .map_err(io_err)?;
        let meta = host.metadata().map_err(io_err)?;
        if !meta.file_type().is_file() {
            return Err(err(format!(
                "is {}; a single-file grant must be a regular file",
                crate::regular_file::describe(meta.file_type())
            )));
        }
        let too_big = |size: u64| {
            err(format!(
                "is {size} bytes, over [limits] staged-file ({}); raise the limit or grant its \
                 folder instead",
                crate::manifest::format_size(limit)
            ))
        };
        if meta.len() > limit {
            return Err(too_big(meta.len()));
        }
        let mut original = Vec::new();
        (&mut host)
            .take(limit.saturating_add(1))
            .read_to_end(&mut original)
            .map_err(io_err)?;
        if original.len() as u64 > limit {
            return Err(too_big(original.len() as u64));
        }

        let target = match grant.access {
            Access::Read => None,
            Access::ReadWrite => {
                let folder = grant.host.parent().unwrap_or(Path::new("/"));
                let file_name = grant
                    .host
                    .file_name()
                    .ok_or_else(|| err("has no file name".into()))?;
                let dir = cap_std::fs::Dir::open_ambient_dir(folder, cap_std::ambient_authority())
                    .map_err(|e| io_err_with("its folder cannot be opened", e))?;
                Some((dir, file_name.to_owned()))
            }
        };

        let idx = match state.dirs.iter().position(|d| d.guest == parent) {
            Some(i) => i,
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("warden-files-")
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| io_err_with("cannot create its staging folder", e))?;
                state.dirs.push(StagedDir {
                    guest: parent.to_string(),
                    tmp: Some(tmp),
                    files: Vec::new(),
                });
                state.dirs.len() - 1
            }
        };
        let dir = &mut state.dirs[idx];
        let Some(tmp) = &dir.tmp else {
            return Err(err("its staging folder is gone".into()));
        };
        let staged = tmp.path().join(name);
        let mode = match grant.access {
            Access::Read => 0o400,
            Access::ReadWrite => 0o600,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&staged)
            .and_then(|mut f| f.write_all(&original))
            .map_err(|e| io_err_with("cannot stage a copy", e))?;
        dir.files.push(StagedFile {
            host: grant.host.clone(),
            guest: grant.guest.clone(),
            staged,
            access: grant.access,
            original,
            target,
            mode: meta.mode() & 0o777,
        });
        Ok(())
    }
}

impl StagingState {
    fn finish(&mut self, copy_back: bool) {
        if self.finished {
            return;
        }
        self.finished = true;
        if copy_back {
            for f in self.dirs.iter().flat_map(|d| &d.files) {
                if f.access == Access::ReadWrite {
                    self.copy_back(f);
                }
            }
        }
        for dir in &mut self.dirs {
            if let Some(tmp) = dir.tmp.take()
                && let Err(e) = tmp.close()
            {
                self.audit.error(
                    &format!("staging folder of {} not removed: {e}", dir.guest),
                    None,
                );
            }
        }
    }

    fn copy_back(&self, f: &StagedFile) {
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let deny = |why: String| {
            self.audit.decision(Decided::new(
                "fs",
                &f.guest,
                Decision::Deny,
                "copy-back",
                format!(
                    "copy-back refused: {why}; {} left unchanged",
                    f.host.display()
                ),
            ));
        };
        // O_NOFOLLOW: a symlink in its place fails here (ELOOP) and is never followed;
        // O_NONBLOCK: a FIFO in its place opens without waiting for a writer.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&f.staged);
        let mut file = match file {
            Ok(file) => file,
            Err(e) => {
                return deny(match e.raw_os_error() {
                    Some(libc::ELOOP) => "the guest left a symlink in place of the file".into(),
                    Some(libc::ENOENT) => {
                        "the file is gone (removed or renamed by the guest)".into()
                    }
                    Some(libc::ENXIO) => "the guest left a socket in place of the file".into(),
                    _ => format!("the file cannot be opened: {e}"),
                });
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return deny(format!("the file cannot be examined: {e}")),
        };
        if !meta.file_type().is_file() {
            return deny(format!(
                "the guest left {} in place of the file",
                crate::regular_file::describe(meta.file_type())
            ));
        }
        if meta.nlink() != 1 {
            return deny(format!(
                "the file has {} hard links (the guest linked it)",
                meta.nlink()
            ));
        }
        let over = |size: u64| {
            format!(
                "the file is {size} bytes, over [limits] staged-file ({})",
                crate::manifest::format_size(self.limit)
            )
        };
        if meta.len() > self.limit {
            return deny(over(meta.len()));
        }
        let mut now = Vec::new();
        if let Err(e) = (&mut file)
            .take(self.limit.saturating_add(1))
            .read_to_end(&mut now)
        {
            return deny(format!("the file cannot be read: {e}"));
        }
        if now.len() as u64 > self.limit {
            return deny(over(now.len() as u64));
        }
        if now == f.original {
            return;
        }
        let Some((dir, name)) = &f.target else { return };
        match replace_file(dir, name, &now, f.mode, self.pid) {
            Ok(()) => self.audit.decision(
                Decided::new(
                    "fs",
                    &f.host.display().to_string(),
                    Decision::Allow,
                    "copy-back",
                    "read-write file grant: guest's changes copied back",
                )
                .by(&f.guest),
            ),
            Err(e) => self.audit.error(
                &format!(
                    "{}: copy-back failed ({e}); original left unchanged",
                    f.host.display()
                ),
                None,
            ),
        }
    }
}

/// Replaces `name` in `dir` with `bytes` atomically: a new file (`O_CREAT|O_EXCL`, permission
/// bits `mode` less the umask) written and synced in the same folder, then renamed over it.
/// A reader sees the old file or the new one, never a part.
fn replace_file(
    dir: &cap_std::fs::Dir,
    name: &std::ffi::OsStr,
    bytes: &[u8],
    mode: u32,
    pid: u32,
) -> std::io::Result<()> {
    use cap_std::fs::OpenOptionsExt;
    use std::io::Write;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true).create_new(true).mode(mode);
    // A few names, in case a file of an earlier, killed run is still there.
    for attempt in 0..16 {
        let tmp = format!(".warden-copyback-{pid}-{attempt}");
        let mut file = match dir.open_with(&tmp, &opts) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let result = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| dir.rename(&tmp, dir, name));
        if result.is_err() {
            let _ = dir.remove_file(&tmp);
        }
        return result;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free temporary name in the file's folder",
    ))
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

    /// Folders staged elsewhere are taken only as the policy's single-file grants' folders,
    /// each once, with the policy's permissions.
    #[test]
    fn prestaged_folders_must_be_exactly_the_policys() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["a.toml", "b.toml", "cursor"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let text = "[identity]\nname = \"t\"\n\n\
            [[files]]\nhost = \"a.toml\"\nguest = \"/etc/app/a.toml\"\naccess = \"read\"\n\n\
            [[files]]\nhost = \"b.toml\"\nguest = \"/etc/app/b.toml\"\naccess = \"read\"\n\n\
            [[files]]\nhost = \"cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n";
        let m = Manifest::from_str_at(text, &dir.path().join("t.toml"), dir.path())
            .expect("a valid manifest");
        let policy = Policy::from_manifest(m);
        let folder = |guest: &str, host: &str| StagedFolder {
            guest: guest.into(),
            host: PathBuf::from(host),
        };
        let got = policy
            .prestaged(&[folder("/state", "/tmp/s"), folder("/etc/app", "/tmp/e")])
            .expect("the policy's folders");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0.as_path(), got[0].1.as_str()),
            (Path::new("/tmp/e"), "/etc/app")
        );
        assert!(matches!(got[0].2, FsPerms::ReadOnly));
        assert!(matches!(got[1].2, FsPerms::ReadWrite));
        // A folder no grant names, one missing, one twice: refused.
        for bad in [
            vec![
                folder("/etc/app", "/tmp/e"),
                folder("/state", "/tmp/s"),
                folder("/", "/"),
            ],
            vec![folder("/etc/app", "/tmp/e")],
            vec![
                folder("/etc/app", "/tmp/e"),
                folder("/etc/app", "/tmp/f"),
                folder("/state", "/tmp/s"),
            ],
        ] {
            assert!(policy.prestaged(&bad).is_err(), "{bad:?}");
        }
    }

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

    /// A run's cursor yields what wasmtime-wasi's `Deterministic` over a copy of the stream
    /// did (the guest-visible values did not change when the copy went away), across the
    /// stream's end and for every mix of the three calls.
    #[test]
    fn the_stream_cursor_reads_what_deterministic_did() {
        use rand_core::{Rng, TryRng};
        let mut cursor = StreamCursor::default();
        let mut reference = wasmtime_wasi::Deterministic::new(deterministic_stream().to_vec());
        // About 30 MB: the stream's end is crossed hundreds of times, at different offsets.
        for step in 0..40_000usize {
            match step % 4 {
                0 => assert_eq!(cursor.try_next_u32().unwrap(), reference.next_u32()),
                1 => assert_eq!(cursor.try_next_u64().unwrap(), reference.next_u64()),
                _ => {
                    let n = (step * 7919) % 3001;
                    let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                    cursor.try_fill_bytes(&mut a).unwrap();
                    reference.fill_bytes(&mut b);
                    assert_eq!(a, b, "fill of {n} at step {step}");
                }
            }
        }
        // CONTROL: a cursor one byte along is a different stream.
        let mut shifted = StreamCursor { at: 1 };
        let mut fresh = wasmtime_wasi::Deterministic::new(deterministic_stream().to_vec());
        assert_ne!(shifted.try_next_u64().unwrap(), fresh.next_u64());
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
