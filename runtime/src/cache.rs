//! A content-addressed cache of precompiled code, so a module is compiled once.
//!
//! An entry's name is the SHA-256 of the module's bytes, its kind (core module or component)
//! and the engine's compatibility hash (wasmtime version, target, every setting that changes
//! the code). An entry is two files: `NAME.cwasm`, exactly what `Engine::precompile_*`
//! produced, which wasmtime maps into memory rather than copying (code and the data of linear
//! memories' copy-on-write images come straight from the file), and `NAME.sum`, a 16-byte
//! version header (`MAGIC`) then the BLAKE3 hash of the `.cwasm` (cryptographic, and faster
//! than SHA-256 over a large entry, which every cached start checks). An entry whose checksum
//! is missing or wrong, or that the engine refuses, is ignored and rebuilt. Entries are only
//! read from a folder that belongs to the current user and that no one else may write, since
//! precompiled code is trusted as machine code; they are only ever replaced by renaming a new
//! file over them, never changed in place, so a mapped entry stays what was checked.
//!
//! This is the one place in the runtime that uses `unsafe`: deserializing precompiled code.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every checksum file; bump the number when the layout changes.
const MAGIC: &[u8; 16] = b"warden-cache-v2\n";

/// Length of a checksum file: [`MAGIC`], then the entry's BLAKE3 hash.
const SUM_LEN: usize = MAGIC.len() + 32;

/// A compiled workload: a core module or a component.
#[derive(Clone)]
pub enum Compiled {
    /// A compiled core module.
    Module(wasmtime::Module),
    /// A compiled component.
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
    /// The name the audit `start` record's `cache` field gives it: `hit`, `miss`, `rebuilt`
    /// or `disabled`.
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

    /// The folder the entries are kept in.
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
        let status = match self.open_trusted(&path) {
            Ok(Some(file)) => match deserialize_file(engine, file, &path, component) {
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

    /// The compiled form of a module or component from a trusted entry, when there is one;
    /// `None` otherwise (no entry, an untrusted one, or one the engine refuses), and then
    /// nothing has been compiled or stored: [`ModuleCache::load_or_compile`] does that, and
    /// says why an entry was rebuilt. `digest` is the SHA-256 of the module's bytes.
    pub fn load_hit(&self, engine: &Engine, digest: &[u8], component: bool) -> Option<Compiled> {
        let path = self.entry_path(engine, digest, component);
        let file = self.open_trusted(&path).ok()??;
        deserialize_file(engine, file, &path, component).ok()
    }

    /// Opens an entry if the folder may be trusted and the entry is intact. The checksum is
    /// computed over a read-only mapping of the open file, the same file that is then handed
    /// to wasmtime, so no copy of the entry is made.
    /// `Ok(None)`: no entry. `Err(reason)`: an entry exists but is not trusted.
    fn open_trusted(&self, path: &Path) -> Result<Option<File>, String> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read entry: {e}")),
        };
        check_private_dir(&self.dir)?;
        let sum = match std::fs::read(sum_path(path)) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("the entry has no checksum".into());
            }
            Err(e) => return Err(format!("cannot read the entry's checksum: {e}")),
        };
        if sum.len() != SUM_LEN || &sum[..MAGIC.len()] != MAGIC {
            return Err("not a warden cache checksum".into());
        }
        if digest_file(&file).map_err(|e| format!("cannot read entry: {e}"))?[..]
            != sum[MAGIC.len()..]
        {
            return Err("checksum mismatch".into());
        }
        Ok(Some(file))
    }

    fn store(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        // Renames are atomic: a concurrent reader sees the old file or the whole new one. The
        // checksum goes last, so a reader that sees a new entry with the old checksum (or a
        // crash between the two) ends in a mismatch and a rebuild, never in trusting it.
        let mut entry = tempfile::NamedTempFile::new_in(&self.dir)?;
        entry.write_all(payload)?;
        entry.as_file().sync_all()?;
        entry.persist(path).map_err(|e| e.error)?;
        let mut sum = tempfile::NamedTempFile::new_in(&self.dir)?;
        sum.write_all(MAGIC)?;
        sum.write_all(blake3::hash(payload).as_bytes())?;
        sum.as_file().sync_all()?;
        sum.persist(sum_path(path)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// `NAME.sum` beside `NAME.cwasm`.
fn sum_path(entry: &Path) -> PathBuf {
    entry.with_extension("sum")
}

/// The BLAKE3 hash of an open file, read through a read-only mapping.
#[allow(unsafe_code)]
fn digest_file(file: &File) -> std::io::Result<[u8; 32]> {
    if file.metadata()?.len() == 0 {
        return Ok(blake3::hash(&[]).into());
    }
    // SAFETY: the mapping is read-only and lives only for this function. Entries are never
    // written in place (see `store`), so the file does not change under the mapping; were
    // it truncated by someone else, reading past its end would fault, which is the same
    // trust boundary as the cache folder itself (only this user can write it).
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(blake3::hash(&map[..]).into())
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8], component: bool) -> wasmtime::Result<Compiled> {
    if component {
        // SAFETY: `payload` is what `Engine::precompile_component` returned just now in this
        // process. wasmtime additionally checks the header, version and engine settings.
        let c = unsafe { Component::deserialize(engine, payload)? };
        Ok(Compiled::Component(c))
    } else {
        // SAFETY: as above, with `Engine::precompile_module`.
        let m = unsafe { wasmtime::Module::deserialize(engine, payload)? };
        Ok(Compiled::Module(m))
    }
}

/// Deserializes a checked entry from its open file: wasmtime maps the file rather than copying
/// it. A component is opened again through `/proc/self/fd`, which names this same open file
/// (wasmtime 48 takes a component's file by path only); where that is not available, by its
/// path in the cache folder.
#[allow(unsafe_code)]
fn deserialize_file(
    engine: &Engine,
    file: File,
    path: &Path,
    component: bool,
) -> wasmtime::Result<Compiled> {
    if component {
        #[cfg(target_os = "linux")]
        let path = {
            use std::os::fd::AsRawFd;
            let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            if by_fd.exists() {
                by_fd
            } else {
                path.to_owned()
            }
        };
        // SAFETY: the file is an entry whose checksum matched, in a folder only this user can
        // write, i.e. bytes this process's user produced with `precompile_component`; entries
        // are replaced by rename, never modified, so the mapping stays valid. wasmtime
        // additionally checks the header, version and engine settings before using it.
        let c = unsafe { Component::deserialize_file(engine, &path)? };
        // Open until here: `/proc/self/fd/N` names it only while it is.
        drop(file);
        Ok(Compiled::Component(c))
    } else {
        // SAFETY: as above, with `precompile_module`.
        let m = unsafe { wasmtime::Module::deserialize_open_file(engine, file)? };
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
