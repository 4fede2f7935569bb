//! The same audit for components: `wasi:filesystem` calls that name a path.
//!
//! wasmtime-wasi enforces the grants; these wrappers only watch. Each path-taking method of
//! `wasi:filesystem/types` is shadowed by one that calls wasmtime-wasi's own and then, as for
//! core modules, writes a `deny` decision when the answer means "not allowed" (`access`,
//! `not-permitted`, `read-only`) and, when the run records allowed operations (`warden
//! learn`), one `allow` decision per distinct successful operation and path.
//!
//! A component names a path relative to a descriptor, never absolutely, so the wrappers keep
//! each descriptor's guest path: the preopened folders' from `get-directories` (shadowed too),
//! every other one from the `open-at` that made it. The reasons use the WIT names: `open-at
//! read`, `open-at write create truncate`, `open-at dir`, `stat-at read`, `unlink-file-at
//! write`, `read-directory dir`, ….

use super::{Decision, FsAuditState};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DirectoryEntryStream, ErrorCode, HostDescriptor,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{FsError, FsResult};

/// The interfaces shadowed, as wasmtime-wasi 48 names them.
const TYPES: &str = "wasi:filesystem/types@0.2.12";
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";

/// The most descriptors whose guest path is remembered at once. Every descriptor lives in the
/// run's resource table, which holds at most `host_memory::MAX_HANDLES` entries; the map is
/// cleared past this bound (later operations are then recorded against `<descriptor>`, never
/// against a wrong path).
const MAX_DESCRIPTORS: usize = 100_000;

/// What `get-directories` answers: each preopened folder and its guest path.
type Preopens = Vec<(Resource<Descriptor>, String)>;

/// A filesystem method taking a descriptor and a path and answering nothing.
type PathOp =
    for<'a, 'b> fn(&'a mut WasiFilesystemCtxView<'b>, Resource<Descriptor>, String) -> FsResult<()>;

/// A filesystem method's answer, converted to the guest-visible error code.
type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// Turns wasmtime-wasi's error into the code the guest sees (or the trap it is).
fn code(e: FsError) -> wasmtime::Result<ErrorCode> {
    let async_code: wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode = e.downcast()?;
    Ok(async_code.into())
}

/// The reason of an allowed `open-at`: `dir` for a folder, `write` (and the flags that make it
/// one) when it may change the file, else `read`.
fn open_reason(oflags: OpenFlags, flags: DescriptorFlags) -> String {
    if oflags.contains(OpenFlags::DIRECTORY) {
        return "open-at dir".into();
    }
    let writes = oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE)
        || flags.intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY);
    if !writes {
        return "open-at read".into();
    }
    let mut r = String::from("open-at write");
    if oflags.contains(OpenFlags::CREATE) {
        r.push_str(" create");
    }
    if oflags.contains(OpenFlags::TRUNCATE) {
        r.push_str(" truncate");
    }
    r
}

/// The guest path of `rel` below the descriptor `rep` (its own path for `.` or an empty `rel`).
fn guest_path<T: FsAuditState>(data: &mut T, rep: u32, rel: &str) -> String {
    let base = data.descriptors().get(&rep).cloned();
    let rel = rel.trim_start_matches("./");
    match base {
        Some(b) if rel.is_empty() || rel == "." => b,
        Some(b) if b == "/" => format!("/{rel}"),
        Some(b) => format!("{}/{rel}", b.trim_end_matches('/')),
        None => format!("<descriptor>/{rel}"),
    }
}

/// Audits one finished call: an allow record (once per target and reason) when it succeeded
/// and the run records allowed operations, a deny record when the sandbox refused it.
fn audit<T: FsAuditState, R>(
    data: &mut T,
    targets: &[String],
    reason: &str,
    answer: &Result<R, ErrorCode>,
) {
    match answer {
        Ok(_) => {
            let op = crate::grant_use::FileOp::of(reason);
            for target in targets {
                data.grant_use().file(target, op);
                super::record_allowed(data, target, reason);
            }
        }
        Err(e @ (ErrorCode::Access | ErrorCode::NotPermitted | ErrorCode::ReadOnly)) => {
            let op = reason.split(' ').next().unwrap_or(reason);
            let name = match e {
                ErrorCode::Access => "access",
                ErrorCode::NotPermitted => "not-permitted",
                _ => "read-only",
            };
            if let Some(target) = targets.first() {
                data.audit().decision(super::fs_decided(
                    target,
                    Decision::Deny,
                    reason,
                    &format!("{op}: {name}"),
                ));
            }
        }
        Err(_) => {}
    }
}

/// Remembers the guest path of a descriptor just made.
fn remember<T: FsAuditState>(data: &mut T, rep: u32, path: String) {
    let map = data.descriptors();
    if map.len() >= MAX_DESCRIPTORS && !map.contains_key(&rep) {
        map.clear();
    }
    map.insert(rep, path);
}

/// Calls `f` with wasmtime-wasi's filesystem view of the store and converts its answer.
fn call<T: WasiView, R>(
    store: &mut StoreContextMut<'_, T>,
    f: impl FnOnce(&mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>) -> Result<R, FsError>,
) -> wasmtime::Result<Result<R, ErrorCode>> {
    let mut view = store.data_mut().filesystem();
    match f(&mut view) {
        Ok(r) => Ok(Ok(r)),
        Err(e) => Ok(Err(code(e)?)),
    }
}

/// Shadows the path-taking `wasi:filesystem` methods of `linker` (which must already hold
/// wasmtime-wasi's) with auditing wrappers.
///
/// # Errors
/// The linker lacks wasmtime-wasi's filesystem interfaces.
///
/// Kept whole: one registration per shadowed method, in the order of the WIT interface; a
/// list read top to bottom, which split in parts would only be harder to check against it.
pub(crate) fn add_to_linker<T: WasiView + FsAuditState + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(PREOPENS)?.func_wrap(
        "get-directories",
        |mut store: StoreContextMut<'_, T>, (): ()| -> wasmtime::Result<(Preopens,)> {
            let dirs = preopens::Host::get_directories(&mut store.data_mut().filesystem())?;
            for (fd, name) in &dirs {
                remember(store.data_mut(), fd.rep(), name.clone());
            }
            Ok((dirs,))
        },
    )?;
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, pflags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )|
         -> Answer<Resource<Descriptor>> {
            let target = guest_path(store.data_mut(), fd.rep(), &path);
            let answer = call(&mut store, |v| {
                HostDescriptor::open_at(v, fd, pflags, path, oflags, flags)
            })?;
            if let Ok(new) = &answer {
                remember(store.data_mut(), new.rep(), target.clone());
            }
            audit(
                store.data_mut(),
                &[target],
                &open_reason(oflags, flags),
                &answer,
            );
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.stat-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, pflags, path): (Resource<Descriptor>, PathFlags, String)|
         -> Answer<DescriptorStat> {
            let target = guest_path(store.data_mut(), fd.rep(), &path);
            let answer = call(&mut store, |v| HostDescriptor::stat_at(v, fd, pflags, path))?;
            audit(store.data_mut(), &[target], "stat-at read", &answer);
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.readlink-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, path): (Resource<Descriptor>, String)|
         -> Answer<String> {
            let target = guest_path(store.data_mut(), fd.rep(), &path);
            let answer = call(&mut store, |v| HostDescriptor::readlink_at(v, fd, path))?;
            audit(store.data_mut(), &[target], "readlink-at read", &answer);
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.metadata-hash-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, pflags, path): (Resource<Descriptor>, PathFlags, String)|
         -> Answer<MetadataHashValue> {
            let target = guest_path(store.data_mut(), fd.rep(), &path);
            let answer = call(&mut store, |v| {
                HostDescriptor::metadata_hash_at(v, fd, pflags, path)
            })?;
            audit(
                store.data_mut(),
                &[target],
                "metadata-hash-at read",
                &answer,
            );
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.read-directory",
        |mut store: StoreContextMut<'_, T>,
         (fd,): (Resource<Descriptor>,)|
         -> Answer<Resource<DirectoryEntryStream>> {
            let target = guest_path(store.data_mut(), fd.rep(), "");
            let answer = call(&mut store, |v| HostDescriptor::read_directory(v, fd))?;
            audit(store.data_mut(), &[target], "read-directory dir", &answer);
            Ok((answer,))
        },
    )?;
    let path_ops: [(&str, &str, PathOp); 3] = [
        (
            "[method]descriptor.create-directory-at",
            "create-directory-at write",
            |v, fd, path| HostDescriptor::create_directory_at(v, fd, path),
        ),
        (
            "[method]descriptor.remove-directory-at",
            "remove-directory-at write",
            |v, fd, path| HostDescriptor::remove_directory_at(v, fd, path),
        ),
        (
            "[method]descriptor.unlink-file-at",
            "unlink-file-at write",
            |v, fd, path| HostDescriptor::unlink_file_at(v, fd, path),
        ),
    ];
    for (name, reason, op) in path_ops {
        types.func_wrap(
            name,
            move |mut store: StoreContextMut<'_, T>,
                  (fd, path): (Resource<Descriptor>, String)|
                  -> Answer<()> {
                let target = guest_path(store.data_mut(), fd.rep(), &path);
                let answer = call(&mut store, |v| op(v, fd, path))?;
                audit(store.data_mut(), &[target], reason, &answer);
                Ok((answer,))
            },
        )?;
    }
    types.func_wrap(
        "[method]descriptor.set-times-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, pflags, path, atim, mtim): (
            Resource<Descriptor>,
            PathFlags,
            String,
            NewTimestamp,
            NewTimestamp,
        )|
         -> Answer<()> {
            let target = guest_path(store.data_mut(), fd.rep(), &path);
            let answer = call(&mut store, |v| {
                HostDescriptor::set_times_at(v, fd, pflags, path, atim, mtim)
            })?;
            audit(store.data_mut(), &[target], "set-times-at write", &answer);
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, old, new): (Resource<Descriptor>, String, String)|
         -> Answer<()> {
            let target = guest_path(store.data_mut(), fd.rep(), &new);
            let answer = call(&mut store, |v| HostDescriptor::symlink_at(v, fd, old, new))?;
            audit(store.data_mut(), &[target], "symlink-at write", &answer);
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, old, new_fd, new): (Resource<Descriptor>, String, Resource<Descriptor>, String)|
         -> Answer<()> {
            let from = guest_path(store.data_mut(), fd.rep(), &old);
            let to = guest_path(store.data_mut(), new_fd.rep(), &new);
            let answer = call(&mut store, |v| {
                HostDescriptor::rename_at(v, fd, old, new_fd, new)
            })?;
            audit(store.data_mut(), &[from, to], "rename-at write", &answer);
            Ok((answer,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, pflags, old, new_fd, new): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )|
         -> Answer<()> {
            let from = guest_path(store.data_mut(), fd.rep(), &old);
            let to = guest_path(store.data_mut(), new_fd.rep(), &new);
            let answer = call(&mut store, |v| {
                HostDescriptor::link_at(v, fd, pflags, old, new_fd, new)
            })?;
            audit(store.data_mut(), &[from, to], "link-at write", &answer);
            Ok((answer,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
