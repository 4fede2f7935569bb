//! Audit records for filesystem operations the sandbox refuses (core modules here,
//! components in [`p2`]).
//!
//! wasmtime-wasi enforces the grants; this module only watches. Each path-taking
//! `wasi_snapshot_preview1` function is shadowed by a wrapper that calls the real one and,
//! when it answers with an errno that means "not allowed" (`EPERM`, `EACCES`, `ENOTCAPABLE`,
//! `EROFS`), writes a `deny` decision naming the path the guest asked for.
//!
//! When the run records allowed operations too (`RunOptions::record_fs`, set by `warden
//! learn`), each distinct successful operation on a path is written once as an `allow`
//! decision: target the guest path, reason the operation and whether it reads or writes
//! (`path_open read`, `path_open write`, `path_unlink_file write`, …). See [`op_reason`].
//!
//! Paths outside every preopened folder never reach the host (wasi-libc answers `ENOENT`
//! itself), so those denials cannot be recorded here; see docs/security.md.

use crate::audit::{Access, Audit, Decided, Decision, Event, LimitReached};
use crate::grant_use::{FileOp, Placement};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;
use wasmtime::{Caller, Extern, FuncType, Instance, Linker, Module, Val, ValType};

/// WASI preview 1 errno values that mean the sandbox refused the operation.
const DENIALS: [(i32, &str); 4] = [
    (2, "EACCES"),
    (63, "EPERM"),
    (69, "EROFS"),
    (76, "ENOTCAPABLE"),
];

/// A shadowed function: its name, its parameter types, and which parameters hold
/// `(dir fd, path pointer, path length)`; `path2` the second path of a rename or link.
struct PathFn {
    name: &'static str,
    params: &'static [ValType],
    path: (usize, usize, usize),
    path2: Option<(usize, usize, usize)>,
}

/// The most distinct allowed operations one run records (see `FsAuditState::seen`): a
/// guest walking a huge tree must not make warden's memory or the audit log grow without
/// bound. Past it, further operations go unrecorded and one `limit` record says so; `warden
/// learn` then keeps every file grant as BROAD has it (see `record_allowed`).
pub const MAX_RECORDED_OPS: usize = 65_536;

/// `path_open` flags the read/write judgement looks at (WASI preview 1).
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_DIRECTORY: i32 = 2;
const OFLAGS_TRUNC: i32 = 8;
const RIGHTS_FD_WRITE: i64 = 1 << 6;
const FDFLAGS_APPEND: i32 = 1;

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

const PATH_FNS: &[PathFn] = &[
    PathFn {
        name: "path_open",
        params: &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
        path: (0, 2, 3),
        path2: None,
    },
    PathFn {
        name: "path_create_directory",
        params: &[I32, I32, I32],
        path: (0, 1, 2),
        path2: None,
    },
    PathFn {
        name: "path_remove_directory",
        params: &[I32, I32, I32],
        path: (0, 1, 2),
        path2: None,
    },
    PathFn {
        name: "path_unlink_file",
        params: &[I32, I32, I32],
        path: (0, 1, 2),
        path2: None,
    },
    PathFn {
        name: "path_filestat_get",
        params: &[I32, I32, I32, I32, I32],
        path: (0, 2, 3),
        path2: None,
    },
    PathFn {
        name: "path_filestat_set_times",
        params: &[I32, I32, I32, I32, I64, I64, I32],
        path: (0, 2, 3),
        path2: None,
    },
    PathFn {
        name: "path_readlink",
        params: &[I32, I32, I32, I32, I32, I32],
        path: (0, 1, 2),
        path2: None,
    },
    PathFn {
        name: "path_rename",
        params: &[I32, I32, I32, I32, I32, I32],
        path: (0, 1, 2),
        path2: Some((3, 4, 5)),
    },
    PathFn {
        name: "path_symlink",
        params: &[I32, I32, I32, I32, I32],
        path: (2, 3, 4),
        path2: None,
    },
    PathFn {
        name: "path_link",
        params: &[I32, I32, I32, I32, I32, I32, I32],
        path: (0, 2, 3),
        path2: Some((4, 5, 6)),
    },
];

/// What the wrappers need from the store's data.
pub(crate) trait FsAuditState: crate::grant_use::Counted {
    fn audit(&self) -> &Audit;
    /// Guest paths of the preopened folders, in preopen order (fd 3 onwards).
    fn preopens(&self) -> &[String];
    /// This store's instance of the shim, once made.
    fn shim(&mut self) -> &mut Option<Instance>;
    /// When allowed operations are recorded: the `(target, reason)` pairs recorded so far
    /// (each is written once). `None` in ordinary runs, which record refusals only.
    fn seen(&mut self) -> Option<&mut std::collections::HashSet<(String, String)>>;
    /// Components: the guest path of each descriptor the guest holds, by resource rep.
    fn descriptors(&mut self) -> &mut HashMap<u32, String>;
}

pub(crate) mod p2;

/// Records one allowed operation (when recording), once per `(target, reason)`. Past
/// [`MAX_RECORDED_OPS`] nothing more is recorded, and the first operation past it writes one
/// `limit` record (`"limit": "recorded-operations"`) so that readers (`warden learn`) know
/// the record of the run is incomplete rather than take an unrecorded grant for an unused one.
pub(crate) fn record_allowed<T: FsAuditState + ?Sized>(data: &mut T, target: &str, reason: &str) {
    let Some(seen) = data.seen() else {
        return;
    };
    let key = (target.to_owned(), reason.to_owned());
    if seen.contains(&key) {
        return;
    }
    if seen.len() >= MAX_RECORDED_OPS {
        // An empty pair no operation records marks that the bound was reported.
        let first_past = seen.insert((String::new(), String::new()));
        if first_past {
            data.audit().record(Event::Limit(LimitReached {
                limit: "recorded-operations".into(),
                value: MAX_RECORDED_OPS.into(),
                scope: None,
                handles: None,
                reason: Some(format!(
                    "recording stopped at {MAX_RECORDED_OPS} distinct allowed file operations; \
                     later ones are not recorded"
                )),
            }));
        }
        return;
    }
    seen.insert(key);
    data.audit()
        .decision(fs_decided(target, Decision::Allow, reason, reason));
}

/// The record of a file operation described as [`op_reason`] (and the component wrappers)
/// describe it, `FUNCTION WORD…`: the function is the `op`, `write` among the words makes the
/// access `write` (else `read`), and `dir` marks an operation on a folder.
pub(crate) fn fs_decided(
    target: &str,
    decision: Decision,
    described: &str,
    reason: &str,
) -> Decided {
    let mut words = described.split(' ');
    let op = words.next().unwrap_or(described);
    let words: Vec<&str> = words.collect();
    let access = if words.contains(&"write") {
        Access::Write
    } else {
        Access::Read
    };
    let mut d = Decided::new("fs", target, decision, op, reason).access(access);
    d.folder = words.contains(&"dir");
    d
}

/// What an allowed call did, for the `allow` record: the function and `read` or `write`.
/// `path_open` writes when it asks for the write right, creates, truncates or appends (`path_open
/// write create truncate`, the flags it used); it opens a folder as `path_open dir`.
fn op_reason(name: &str, params: &[Val]) -> String {
    let i32_at = |i: usize| params.get(i).and_then(Val::i32).unwrap_or(0);
    let i64_at = |i: usize| params.get(i).and_then(Val::i64).unwrap_or(0);
    match name {
        "path_open" => {
            let (oflags, rights, fdflags) = (i32_at(4), i64_at(5), i32_at(7));
            if oflags & OFLAGS_DIRECTORY != 0 {
                "path_open dir".into()
            } else if oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) != 0
                || rights & RIGHTS_FD_WRITE != 0
                || fdflags & FDFLAGS_APPEND != 0
            {
                let mut r = String::from("path_open write");
                if oflags & OFLAGS_CREAT != 0 {
                    r.push_str(" create");
                }
                if oflags & OFLAGS_TRUNC != 0 {
                    r.push_str(" truncate");
                }
                r
            } else {
                "path_open read".into()
            }
        }
        "path_filestat_get" | "path_readlink" => format!("{name} read"),
        _ => format!("{name} write"),
    }
}

/// What a successful call did to its grant, as [`FileOp::of`] reads [`op_reason`]'s
/// description, without building it (this runs on every file operation of every run).
fn file_op(name: &str, params: &[Val]) -> FileOp {
    let i32_at = |i: usize| params.get(i).and_then(Val::i32).unwrap_or(0);
    let i64_at = |i: usize| params.get(i).and_then(Val::i64).unwrap_or(0);
    match name {
        "path_open" => {
            let (oflags, rights, fdflags) = (i32_at(4), i64_at(5), i32_at(7));
            if oflags & OFLAGS_DIRECTORY != 0 {
                FileOp::Read
            } else if oflags & OFLAGS_CREAT != 0 {
                FileOp::Create
            } else if oflags & OFLAGS_TRUNC != 0
                || rights & RIGHTS_FD_WRITE != 0
                || fdflags & FDFLAGS_APPEND != 0
            {
                FileOp::Write
            } else {
                FileOp::Read
            }
        }
        "path_filestat_get" | "path_readlink" => FileOp::Read,
        "path_unlink_file" | "path_remove_directory" => FileOp::Delete,
        "path_create_directory" | "path_symlink" | "path_link" => FileOp::Create,
        _ => FileOp::Write,
    }
}

/// Counts `op` on the path `(fd, ptr, len)` names: through the grant of the preopened folder
/// `fd` when that grant alone covers everything below it (no path is read or built), else by
/// the whole guest path. A descriptor that is not a preopen is not counted.
fn count<T: FsAuditState>(caller: &mut Caller<'_, T>, fd: i32, ptr: i32, len: i32, op: FileOp) {
    let index = usize::try_from(fd).ok().and_then(|fd| fd.checked_sub(3));
    let data = caller.data();
    let Some(base) = index.and_then(|i| data.preopens().get(i)) else {
        return;
    };
    match data.grant_use().placement(base) {
        Placement::Grant(i) => data.grant_use().file_at(i, op),
        Placement::ByPath => {
            let target = guest_path(caller, fd, ptr, len);
            caller.data().grant_use().file(&target, op);
        }
        Placement::Nowhere => {}
    }
}

/// A tiny core module through which the wrappers call the real functions.
///
/// wasmtime-wasi's preview 1 functions find the guest's memory through their caller's
/// `memory` export, and a host function called from the host has no caller. The shim imports
/// the guest's memory and the real functions, re-exports the memory, and exports one
/// forwarding function per real one, so the real functions always see a caller whose
/// `memory` is the guest's.
pub(crate) fn shim_bytes() -> wasmtime::Result<Vec<u8>> {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, MemoryType, TypeSection, ValType as W,
    };
    let wasm_ty = |t: &ValType| {
        if matches!(t, ValType::I64) {
            W::I64
        } else {
            W::I32
        }
    };
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut funcs = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    imports.import(
        "guest",
        "memory",
        EntityType::Memory(MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        }),
    );
    exports.export("memory", ExportKind::Memory, 0);
    let n = u32::try_from(PATH_FNS.len())?;
    for (i, f) in (0u32..).zip(PATH_FNS) {
        types.ty().function(f.params.iter().map(wasm_ty), [W::I32]);
        imports.import("wasi_snapshot_preview1", f.name, EntityType::Function(i));
    }
    for (i, f) in (0u32..).zip(PATH_FNS) {
        funcs.function(i);
        exports.export(f.name, ExportKind::Func, n + i);
        let mut body = Function::new([]);
        for p in 0..u32::try_from(f.params.len())? {
            body.instruction(&Instruction::LocalGet(p));
        }
        body.instruction(&Instruction::Call(i));
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = wasm_encoder::Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    Ok(module.finish())
}

/// The shim, compiled once per engine when the first workload that needs it is loaded (never
/// during a run: compiling maps executable memory, which the lockdown forbids).
pub(crate) type ShimCell = Arc<OnceLock<Module>>;

/// Whether `module` imports any of the shadowed path functions (and so needs the shim).
pub(crate) fn uses_paths(module: &Module) -> bool {
    module.imports().any(|i| {
        i.module() == "wasi_snapshot_preview1" && PATH_FNS.iter().any(|f| f.name == i.name())
    })
}

/// Shadows the path functions of `linker` (which must already hold wasmtime-wasi's preview 1
/// functions) with auditing wrappers that forward through `shim`.
///
/// # Errors
/// The linker refuses a definition.
pub(crate) fn add_to_linker<T: FsAuditState + 'static>(
    linker: &mut Linker<T>,
    shim: ShimCell,
) -> wasmtime::Result<()> {
    let inner = Arc::new(linker.clone());
    linker.allow_shadowing(true);
    for f in PATH_FNS {
        let ty = FuncType::new(linker.engine(), f.params.iter().cloned(), [ValType::I32]);
        let inner = inner.clone();
        let shim = shim.clone();
        let (fd_at, ptr_at, len_at) = f.path;
        let path2 = f.path2;
        let name = f.name;
        linker.func_new(
            "wasi_snapshot_preview1",
            name,
            ty,
            move |mut caller: Caller<'_, T>, params: &[Val], results: &mut [Val]| {
                let Some(shim) = shim.get() else {
                    wasmtime::bail!("the fs audit shim was not prepared at load");
                };
                let instance = shim_instance(&mut caller, &inner, shim)?;
                let Some(forward) = instance.get_func(&mut caller, name) else {
                    wasmtime::bail!("the fs audit shim lacks {name}");
                };
                forward.call(&mut caller, params, results)?;
                let errno = results.first().and_then(Val::i32).unwrap_or(0);
                if errno == 0 {
                    let arg = |i: usize| params.get(i).and_then(Val::i32).unwrap_or(0);
                    let op = file_op(name, params);
                    let mut paths = vec![(arg(fd_at), arg(ptr_at), arg(len_at))];
                    if let Some((fd2, ptr2, len2)) = path2 {
                        paths.push((arg(fd2), arg(ptr2), arg(len2)));
                    }
                    if caller.data_mut().seen().is_some() {
                        let reason = op_reason(name, params);
                        for (fd, ptr, len) in paths {
                            let target = guest_path(&mut caller, fd, ptr, len);
                            caller.data().grant_use().file(&target, op);
                            record_allowed(caller.data_mut(), &target, &reason);
                        }
                    } else {
                        for (fd, ptr, len) in paths {
                            count(&mut caller, fd, ptr, len, op);
                        }
                    }
                }
                if let Some((_, errname)) = DENIALS.iter().find(|(n, _)| *n == errno) {
                    let arg = |i: usize| params.get(i).and_then(Val::i32).unwrap_or(0);
                    let target = guest_path(&mut caller, arg(fd_at), arg(ptr_at), arg(len_at));
                    caller.data().audit().decision(fs_decided(
                        &target,
                        Decision::Deny,
                        &op_reason(name, params),
                        &format!("{name}: {errname}"),
                    ));
                }
                Ok(())
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// This store's shim instance, made on the first path operation, wired to the calling
/// guest's memory and to the real functions of `inner`.
fn shim_instance<T: FsAuditState + 'static>(
    caller: &mut Caller<'_, T>,
    inner: &Linker<T>,
    shim: &Module,
) -> wasmtime::Result<Instance> {
    if let Some(i) = *caller.data_mut().shim() {
        return Ok(i);
    }
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("the guest exports no memory");
    };
    let mut imports = vec![Extern::Memory(memory)];
    for f in PATH_FNS {
        imports.push(inner.get(&mut *caller, "wasi_snapshot_preview1", f.name)?);
    }
    let instance = Instance::new(&mut *caller, shim, &imports)?;
    *caller.data_mut().shim() = Some(instance);
    Ok(instance)
}
/// The path the guest named, joined to its preopen's guest path when `fd` is a preopen.
fn guest_path<T: FsAuditState>(caller: &mut Caller<'_, T>, fd: i32, ptr: i32, len: i32) -> String {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
    let read = match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m
            .read(
                &*caller,
                usize::try_from(ptr).unwrap_or(usize::MAX),
                &mut buf,
            )
            .is_ok(),
        _ => false,
    };
    let rel = if read {
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        "<unreadable>".to_string()
    };
    let base = usize::try_from(fd)
        .ok()
        .and_then(|fd| fd.checked_sub(3))
        .and_then(|i| caller.data().preopens().get(i).cloned());
    match base {
        Some(b) if b == "/" => format!("/{rel}"),
        Some(b) => format!("{b}/{rel}"),
        None => format!("<fd {fd}>/{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        FileOp, OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_TRUNC, PATH_FNS, file_op, op_reason,
    };
    use wasmtime::Val;

    /// The counting fast path classifies every shadowed call as the description the audit
    /// writes does, for every combination of the flags `path_open` looks at.
    #[test]
    fn the_fast_classification_agrees_with_the_audited_description() {
        for f in PATH_FNS {
            for oflags in [
                0,
                OFLAGS_CREAT,
                OFLAGS_DIRECTORY,
                OFLAGS_TRUNC,
                OFLAGS_CREAT | OFLAGS_TRUNC,
            ] {
                for rights in [0i64, 1 << 1, 1 << 6] {
                    for fdflags in [0, 1] {
                        let params: Vec<Val> = f
                            .params
                            .iter()
                            .enumerate()
                            .map(|(i, t)| match (i, t) {
                                (4, _) => Val::I32(oflags),
                                (5, _) => Val::I64(rights),
                                (7, _) => Val::I32(fdflags),
                                (_, wasmtime::ValType::I64) => Val::I64(0),
                                _ => Val::I32(0),
                            })
                            .collect();
                        let described = op_reason(f.name, &params);
                        assert_eq!(
                            file_op(f.name, &params),
                            FileOp::of(&described),
                            "{described}"
                        );
                    }
                }
            }
        }
    }
}
