//! Counting what a run uses of its grants, for the exit record's `usage` (see
//! [`crate::audit::GrantUsage`]).
//!
//! Counted where warden already watches the guest: the filesystem audit wrappers (every
//! successful path operation, placed on the grant whose guest path covers it), the granted
//! clocks, random generator and stdin (wrapped for every run, see [`crate::observe`]) and, for
//! components, `wasi:cli/environment`. Each count is one relaxed atomic add or flag; nothing is
//! written per operation.

use crate::audit::{FileUse, GrantUsage};
use crate::manifest::{EnvVar, FileGrant};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a file operation did to its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileOp {
    Read,
    Write,
    Create,
    Delete,
}

impl FileOp {
    /// The kind of operation the filesystem audit describes as `FUNCTION WORD…`
    /// (`path_open write create`, `unlink-file-at write`, `read-directory dir`).
    pub(crate) fn of(described: &str) -> FileOp {
        let mut words = described.split(' ');
        let op = words.next().unwrap_or("");
        let has = |word: &str| described.split(' ').skip(1).any(|w| w == word);
        if op.contains("unlink") || op.contains("remove") {
            FileOp::Delete
        } else if has("create")
            || op.contains("create")
            || op.contains("symlink")
            || matches!(op, "path_link" | "link-at")
        {
            FileOp::Create
        } else if has("write") {
            FileOp::Write
        } else {
            FileOp::Read
        }
    }
}

/// Where the operations below one preopened folder are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Against this grant (its index), whatever the path.
    Grant(usize),
    /// By the whole guest path.
    ByPath,
    /// Against none: no grant covers the folder.
    Nowhere,
}

/// Something used once is enough to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Used {
    Env,
    WallClock,
    MonotonicClock,
    Random,
    Stdin,
}

struct FileCounter {
    guest: String,
    counts: [AtomicU64; 4],
}

/// The counters of one run.
pub(crate) struct GrantCounters {
    files: Vec<FileCounter>,
    used: [AtomicBool; 5],
    /// What preview 1's `environ_sizes_get` answers: the number of variables and the bytes
    /// of their `NAME=VALUE\0` strings.
    env_sizes: (u32, u32),
}

impl GrantCounters {
    /// Counters for the `[[files]]` grants `files` and the environment `env` (the run's
    /// whole environment: `[env]`), all at zero.
    pub(crate) fn new(files: &[FileGrant], env: &[EnvVar]) -> GrantCounters {
        let bytes: usize = env.iter().map(|v| v.name.len() + v.value.len() + 2).sum();
        GrantCounters {
            env_sizes: (
                u32::try_from(env.len()).unwrap_or(u32::MAX),
                u32::try_from(bytes).unwrap_or(u32::MAX),
            ),
            files: files
                .iter()
                .map(|f| FileCounter {
                    guest: f.guest.clone(),
                    counts: Default::default(),
                })
                .collect(),
            used: Default::default(),
        }
    }

    /// Counts `op` on the guest path `path` against the grant that covers it (the most
    /// specific one: grants may nest); a path no grant covers is not counted.
    pub(crate) fn file(&self, path: &str, op: FileOp) {
        let covering = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| covers(&f.guest, path))
            .max_by_key(|(_, f)| f.guest.len());
        if let Some((i, _)) = covering {
            self.file_at(i, op);
        }
    }

    /// Counts `op` against the grant at `index` (of [`GrantCounters::placement`]).
    pub(crate) fn file_at(&self, index: usize, op: FileOp) {
        if let Some(f) = self.files.get(index) {
            f.counts[op as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Which grant an operation below the folder `base` (a guest path) counts against: one
    /// grant, whatever the rest of the path, unless some grant lies strictly below `base`
    /// (nested grants, or single files staged in a folder of their own), when the whole path
    /// decides.
    pub(crate) fn placement(&self, base: &str) -> Placement {
        if self
            .files
            .iter()
            .any(|f| f.guest != base && covers(base, &f.guest))
        {
            return Placement::ByPath;
        }
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| covers(&f.guest, base))
            .max_by_key(|(_, f)| f.guest.len())
            .map_or(Placement::Nowhere, |(i, _)| Placement::Grant(i))
    }

    /// Notes that the guest used `what`.
    pub(crate) fn used(&self, what: Used) {
        let flag = &self.used[what as usize];
        // A load first: after the first use no call writes the shared line again.
        if !flag.load(Ordering::Relaxed) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub(crate) fn summary(&self) -> GrantUsage {
        let used = |w: Used| self.used[w as usize].load(Ordering::Relaxed);
        GrantUsage {
            files: self
                .files
                .iter()
                .map(|f| {
                    let n = |op: FileOp| f.counts[op as usize].load(Ordering::Relaxed);
                    FileUse {
                        guest: f.guest.clone(),
                        reads: n(FileOp::Read),
                        writes: n(FileOp::Write),
                        creates: n(FileOp::Create),
                        deletes: n(FileOp::Delete),
                    }
                })
                .collect(),
            env: used(Used::Env),
            wall_clock: used(Used::WallClock),
            monotonic_clock: used(Used::MonotonicClock),
            random: used(Used::Random),
            stdin: used(Used::Stdin),
        }
    }
}

/// A store's data that holds the run's [`GrantCounters`]: what the shadowing functions here
/// (and the filesystem wrappers of `fs_audit`) count through.
pub(crate) trait Counted {
    /// Where the run counts what it used of each grant.
    fn grant_use(&self) -> &GrantCounters;
}

/// `wasi:cli/environment` as wasmtime-wasi 48 names it.
const ENVIRONMENT: &str = "wasi:cli/environment@0.2.12";

/// Shadows `get-environment` of `linker` (which must already hold wasmtime-wasi's) with a
/// wrapper that notes the read, then answers as wasmtime-wasi does.
///
/// # Errors
/// The linker lacks wasmtime-wasi's `wasi:cli/environment`.
pub(crate) fn watch_environment<T>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()>
where
    T: wasmtime_wasi::WasiView + Counted + 'static,
{
    use wasmtime_wasi::cli::WasiCliView;
    use wasmtime_wasi::p2::bindings::cli::environment::Host as _;
    linker.allow_shadowing(true);
    linker.instance(ENVIRONMENT)?.func_wrap(
        "get-environment",
        |mut store: wasmtime::StoreContextMut<'_, T>,
         (): ()|
         -> wasmtime::Result<(Vec<(String, String)>,)> {
            store.data().grant_use().used(Used::Env);
            Ok((store.data_mut().cli().get_environment()?,))
        },
    )?;
    Ok(())
}

/// WASI preview 1's errno for an address outside the guest's memory.
const ERRNO_FAULT: i32 = 21;

/// Shadows preview 1's `environ_sizes_get` of `linker`, which every guest calls before it reads
/// its environment (wasi-libc does so when the program first looks at a variable), with one
/// that notes the read and answers what wasmtime-wasi would: the number of variables and the
/// size of their strings, which `environ_get` then fills in.
///
/// # Errors
/// The linker refuses the definition.
pub(crate) fn watch_environment_p1<T>(linker: &mut wasmtime::Linker<T>) -> wasmtime::Result<()>
where
    T: Counted + 'static,
{
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "environ_sizes_get",
        |mut caller: wasmtime::Caller<'_, T>, count_at: i32, size_at: i32| -> i32 {
            let counters = caller.data().grant_use();
            counters.used(Used::Env);
            let (count, size) = counters.env_sizes;
            let Some(wasmtime::Extern::Memory(memory)) = caller.get_export("memory") else {
                return ERRNO_FAULT;
            };
            let put = |caller: &mut wasmtime::Caller<'_, T>, at: i32, value: u32| {
                usize::try_from(at)
                    .ok()
                    .is_some_and(|at| memory.write(caller, at, &value.to_le_bytes()).is_ok())
            };
            if put(&mut caller, count_at, count) && put(&mut caller, size_at, size) {
                0
            } else {
                ERRNO_FAULT
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Whether the guest path `grant` covers `path`: the same path, or one below it.
fn covers(grant: &str, path: &str) -> bool {
    if grant == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(grant)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::{FileOp, covers};

    #[test]
    fn operations_are_classified_as_the_audit_describes_them() {
        for (described, op) in [
            ("path_open read", FileOp::Read),
            ("path_open dir", FileOp::Read),
            ("path_open write", FileOp::Write),
            ("path_open write create truncate", FileOp::Create),
            ("path_unlink_file write", FileOp::Delete),
            ("path_remove_directory write", FileOp::Delete),
            ("path_create_directory write", FileOp::Create),
            ("path_rename write", FileOp::Write),
            ("open-at read", FileOp::Read),
            ("open-at write create", FileOp::Create),
            ("unlink-file-at write", FileOp::Delete),
            ("read-directory dir", FileOp::Read),
            ("stat-at read", FileOp::Read),
            ("symlink-at write", FileOp::Create),
            ("link-at write", FileOp::Create),
            ("readlink-at read", FileOp::Read),
            ("path_readlink read", FileOp::Read),
        ] {
            assert_eq!(FileOp::of(described), op, "{described}");
        }
    }

    #[test]
    fn a_folder_counts_against_its_grant_unless_a_grant_lies_below_it() {
        use super::{GrantCounters, Placement};
        use crate::manifest::{Access, FileGrant, FileKind};
        let grant = |guest: &str, kind| FileGrant {
            host: "/".into(),
            guest: guest.into(),
            access: Access::Read,
            kind,
        };
        let c = GrantCounters::new(
            &[
                grant("/data", FileKind::Dir),
                grant("/data/deep", FileKind::Dir),
                grant("/config/app.toml", FileKind::File),
            ],
            &[],
        );
        assert_eq!(c.placement("/data"), Placement::ByPath);
        assert_eq!(c.placement("/data/deep"), Placement::Grant(1));
        assert_eq!(c.placement("/config"), Placement::ByPath);
        assert_eq!(c.placement("/other"), Placement::Nowhere);
    }

    #[test]
    fn a_grant_covers_its_path_and_what_is_below_it_only() {
        assert!(covers("/data", "/data"));
        assert!(covers("/data", "/data/a/b"));
        assert!(!covers("/data", "/database"));
        assert!(covers("/", "/x"));
        assert!(!covers("/data", "<fd 9>/x"));
    }
}
