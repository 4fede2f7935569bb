//! A content-addressed cache of precompiled code, so a module is compiled once.
//!
//! An entry's name is the SHA-256 of the module's bytes, its kind (core module or component)
//! and the engine's compatibility hash (wasmtime version, target, every setting that changes
//! the code). An entry is `MAGIC`, the SHA-256 of the payload, then the payload that
//! `Engine::precompile_*` produced. An entry whose header or checksum is wrong, or that the
//! engine refuses, is ignored and rebuilt. Entries are only read from a folder that belongs
//! to the current user and that no one else may write, since precompiled code is trusted
//! as machine code.
//!
//! This is the one place in the runtime that uses `unsafe`: deserializing precompiled code.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every entry; bump the number when the layout changes.
const MAGIC: &[u8; 16] = b"warden-cache-v1\n";

/// Bytes before an entry's payload: [`MAGIC`], then the payload's SHA-256.
const ENTRY_HEADER: usize = MAGIC.len() + 32;

/// A compiled workload: a core module or a component.
#[derive(Clone)]
pub enum Compiled {
    Module(wasmtime::Module),
    Component(Component),
}

/// What the cache did for one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded precompiled code; nothing was compiled.
    Hit,
    /// Not cached yet: compiled and stored.
    Miss,
    /// An entry existed but was not trusted (the reason says why): compiled and replaced.
    Rebuilt(String),
    /// No cache in use: compiled in memory.
    Disabled,
}

impl CacheStatus {
    pub fn as_str(&self) -> &str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Rebuilt(_) => "rebuilt",
            CacheStatus::Disabled => "disabled",
        }
    }
}

/// The on-disk cache of precompiled modules.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash gives the same key in
/// every process (std's `DefaultHasher` makes no such promise).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModuleCache {
    /// A cache in `dir`, created (mode 0700) on first store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleCache { dir: dir.into() }
    }

    /// `$WARDEN_CACHE_DIR`, else the user's cache folder (`~/.cache/warden/modules` on Linux).
    /// `None` if neither can be found.
    ///
    /// # Ambient Authority
    /// Reads warden's environment and the user's home folder.
    pub fn user_default() -> Option<Self> {
        if let Some(dir) = std::env::var_os("WARDEN_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(Self::new(dir));
        }
        directories::ProjectDirs::from("", "", "warden")
            .map(|d| Self::new(d.cache_dir().join("modules")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, engine: &Engine, digest: &[u8], component: bool) -> PathBuf {
        let mut h = ShaHasher(Sha256::new());
        h.write(digest);
        h.write(if component { b"component" } else { b"module" });
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{}.cwasm", hex(&h.0.finalize())))
    }

    /// Returns the compiled form of `bytes`, from the cache when a trusted entry exists.
    /// `digest` is the SHA-256 of `bytes`, which the caller has already computed (hashing a
    /// large module twice is a noticeable part of a cached start).
    ///
    /// # Errors
    /// The module does not compile. Cache read and write failures are not errors: they fall
    /// back to compiling in memory.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &[u8],
        component: bool,
    ) -> wasmtime::Result<(Compiled, CacheStatus)> {
        let path = self.entry_path(engine, digest, component);
        let status = match self.read_trusted(&path) {
            Ok(Some(data)) => match deserialize(engine, &data[ENTRY_HEADER..], component) {
                Ok(c) => return Ok((c, CacheStatus::Hit)),
                Err(e) => CacheStatus::Rebuilt(format!("engine refused the entry: {e}")),
            },
            Ok(None) => CacheStatus::Miss,
            Err(why) => CacheStatus::Rebuilt(why),
        };
        let payload = if component {
            engine.precompile_component(bytes)?
        } else {
            engine.precompile_module(bytes)?
        };
        let compiled = deserialize(engine, &payload, component)?;
        // A cache that cannot be written only costs the next run a compile.
        let _ = self.store(&path, &payload);
        Ok((compiled, status))
    }

    /// Reads an entry if the folder may be trusted and the entry is intact: the whole file,
    /// whose payload starts at [`ENTRY_HEADER`] (not copied out: a copy of a large entry
    /// costs a cached start its page faults twice).
    /// `Ok(None)`: no entry. `Err(reason)`: an entry exists but is not trusted.
    fn read_trusted(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read entry: {e}")),
        };
        check_private_dir(&self.dir)?;
        if data.len() < ENTRY_HEADER || &data[..MAGIC.len()] != MAGIC {
            return Err("not a warden cache entry".into());
        }
        let (sum, payload) = data[MAGIC.len()..].split_at(32);
        if Sha256::digest(payload).as_slice() != sum {
            return Err("checksum mismatch".into());
        }
        Ok(Some(data))
    }

    fn store(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(payload))?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        // Rename is atomic: a concurrent reader sees the old entry or the whole new one.
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8], component: bool) -> wasmtime::Result<Compiled> {
    if component {
        // SAFETY: `payload` is either what `Engine::precompile_component` returned just now
        // in this process, or a cache entry read from a folder only this user can write and
        // whose checksum matched, i.e. bytes this process's user produced with
        // `precompile_component`. wasmtime additionally checks the header, version and
        // engine settings before using it.
        let c = unsafe { Component::deserialize(engine, payload)? };
        Ok(Compiled::Component(c))
    } else {
        // SAFETY: as above, with `Engine::precompile_module`.
        let m = unsafe { wasmtime::Module::deserialize(engine, payload)? };
        Ok(Compiled::Module(m))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The cache folder must be the current user's and writable by no one else.
#[cfg(unix)]
fn check_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot inspect cache folder: {e}"))?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if me.is_some_and(|uid| uid != meta.uid()) {
        return Err(format!(
            "cache folder {} belongs to another user",
            dir.display()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "cache folder {} is writable by others (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_dir(_dir: &Path) -> Result<(), String> {
    Ok(())
}
