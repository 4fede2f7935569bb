//! Loading: a [`Policy`] and a module's bytes become a [`Workload`] (checked, pinned, compiled
//! or taken from the cache, imports checked, pre-instantiated).

use super::engine::{component_linker, core_linker};
use super::{
    ComponentEntry, CoreEntry, Prepared, RUN_THREAD_STACK, Warden, Workload, WorkloadInner,
};
use crate::cache::{CacheStatus, Compiled};
use crate::error::{EngineError, LoadError, cause};
use crate::fs_audit;
use crate::policy::Policy;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::ValType;
use wasmtime::component::{self};
use wasmtime_wasi::p2::bindings::sync::CommandPre;

impl Warden {
    /// Reads the policy's module and prepares it to run.
    ///
    /// # Errors
    /// See [`LoadError`]: missing or unreadable module, not wasm, pin mismatch, compile
    /// failure, an import no grant provides, a missing entry point, a grant this version
    /// cannot enforce.
    pub fn load(&self, policy: Policy) -> Result<Workload, LoadError> {
        let (path, bytes) = self.read_module(&policy)?;
        self.load_bytes(policy, &path, &bytes)
    }

    /// The module's full path and bytes, after checking the policy can be run by this engine.
    fn read_module(&self, policy: &Policy) -> Result<(PathBuf, Vec<u8>), LoadError> {
        if policy.limits.fuel.is_some() && !self.inner.settings.fuel {
            return Err(LoadError::Unsupported(
                "[limits] fuel is set but this engine was built without fuel metering".into(),
            ));
        }
        let path = policy.module.clone().ok_or(LoadError::NoModule)?;
        // The audit log names the module by its full path, whatever the working folder.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        // Not `std::fs::read`: a FIFO or a device named as the module would block it forever.
        let bytes = crate::read_regular_file(&path).map_err(|source| LoadError::ReadModule {
            path: path.clone(),
            source,
        })?;
        Ok((path, bytes))
    }

    /// [`Warden::load`] when the compiled code is in the cache; `None` when it is not (or no
    /// cache is in use), and then nothing was compiled: the caller loads as usual. Errors
    /// found before the cache is consulted (unreadable module, not wasm, pin mismatch) are
    /// returned as they are, since loading again would only find them again.
    fn load_if_cached(&self, policy: &Policy) -> Option<Result<Workload, LoadError>> {
        let cache = self.inner.settings.cache.as_ref()?;
        let (path, bytes) = match self.read_module(policy) {
            Ok(read) => read,
            Err(e) => return Some(Err(e)),
        };
        let (is_component, digest, sha256) = match check_bytes(policy, &path, &bytes) {
            Ok(checked) => checked,
            Err(e) => return Some(Err(e)),
        };
        let compiled = cache.load_hit(&self.inner.engine, &digest, is_component)?;
        Some(self.prepare(policy.clone(), &path, sha256, compiled, CacheStatus::Hit))
    }

    /// [`Warden::load`] within `budget`: compiling cannot be interrupted by the epoch, and a
    /// huge module could otherwise keep the caller busy for as long as it likes before any
    /// wall limit applies. A load that compiles runs on a thread of its own; past the budget
    /// the caller gets [`LoadError::CompileTimeout`] and the thread is abandoned (it ends
    /// when the compiler does, and its result is dropped). A cache hit compiles nothing and
    /// is loaded on the calling thread (its cost grows with the entry's size only: mapping
    /// and checksumming it).
    ///
    /// # Errors
    /// As [`Warden::load`]; [`LoadError::CompileTimeout`] past the budget;
    /// [`LoadError::LoadThread`] when the thread cannot be started.
    pub fn load_within(&self, policy: Policy, budget: Duration) -> Result<Workload, LoadError> {
        // A cache hit compiles nothing, so it needs no budget and no thread: a thread of its
        // own (started, given a malloc arena, joined) is a measurable part of a cached start.
        if let Some(loaded) = self.load_if_cached(&policy) {
            return loaded;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let warden = self.clone();
        let thread = std::thread::Builder::new()
            .name("warden-load".into())
            .stack_size(RUN_THREAD_STACK)
            .spawn(move || {
                let _ = tx.send(warden.load(policy));
            })
            .map_err(|e| LoadError::LoadThread(Some(e)))?;
        match rx.recv_timeout(budget) {
            Ok(result) => {
                // The thread is ending: wait for it, so that it is gone before a lockdown.
                let _ = thread.join();
                result
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(LoadError::CompileTimeout { budget })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(LoadError::LoadThread(None))
            }
        }
    }

    /// Like [`Warden::load`], with the module's bytes given; `path` names it in errors and
    /// the audit log.
    ///
    /// # Errors
    /// As [`Warden::load`].
    pub fn load_bytes(
        &self,
        policy: Policy,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Workload, LoadError> {
        let (is_component, digest, sha256) = check_bytes(&policy, path, bytes)?;

        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            path: path.to_owned(),
            message: format!("{e:#}"),
            source: cause(e),
        };
        let (compiled, cache) = match &self.inner.settings.cache {
            Some(cache) => cache
                .load_or_compile(&self.inner.engine, bytes, &digest, is_component)
                .map_err(compile_err)?,
            None => {
                let c = if is_component {
                    Compiled::Component(
                        component::Component::new(&self.inner.engine, bytes)
                            .map_err(compile_err)?,
                    )
                } else {
                    Compiled::Module(
                        wasmtime::Module::new(&self.inner.engine, bytes).map_err(compile_err)?,
                    )
                };
                (c, CacheStatus::Disabled)
            }
        };
        self.prepare(policy, path, sha256, compiled, cache)
    }

    /// The last steps of a load, whatever the compiled code came from: the memory image,
    /// the entry point and the imports checked, pre-instantiation.
    fn prepare(
        &self,
        policy: Policy,
        path: &Path,
        sha256: String,
        compiled: Compiled,
        cache: CacheStatus,
    ) -> Result<Workload, LoadError> {
        // The copy-on-write memory image is built on first instantiation unless built now;
        // for code compiled in memory (not mapped from a cache entry) building it needs a
        // memfd, which a locked-down host no longer may create.
        let cow = match &compiled {
            Compiled::Module(m) => m.initialize_copy_on_write_image(),
            Compiled::Component(c) => c.initialize_copy_on_write_image(),
        };
        cow.map_err(|e| LoadError::Compile {
            path: path.to_owned(),
            message: format!("cannot prepare the memory image: {e}"),
            source: cause(e),
        })?;
        let pre = match compiled {
            Compiled::Module(m) => self.prepare_core(&policy, path, m)?,
            Compiled::Component(c) => self.prepare_component(&policy, path, c)?,
        };
        Ok(Workload {
            inner: Arc::new(WorkloadInner {
                warden: self.clone(),
                policy,
                path: path.to_owned(),
                sha256,
                cache,
                pre,
            }),
        })
    }

    fn prepare_core(
        &self,
        policy: &Policy,
        path: &Path,
        module: wasmtime::Module,
    ) -> Result<Prepared, LoadError> {
        for import in module.imports() {
            #[cfg(feature = "test-escape")]
            if import.module() == crate::test_escape::MODULE {
                continue;
            }
            if import.module() != "wasi_snapshot_preview1" {
                return Err(LoadError::UnknownImport {
                    path: path.to_owned(),
                    import: format!("{}::{}", import.module(), import.name()),
                    source: None,
                });
            }
        }
        let entry_err = |message: String| LoadError::Entry {
            path: path.to_owned(),
            message,
        };
        let entry = match &policy.invoke {
            None => {
                match module.get_export("_start") {
                    Some(wasmtime::ExternType::Func(f))
                        if f.params().len() == 0 && f.results().len() == 0 => {}
                    _ => {
                        return Err(entry_err(
                            "no `_start` command entry point; set [workload] invoke to call \
                             another export"
                                .into(),
                        ));
                    }
                }
                CoreEntry::Start
            }
            Some(name) => {
                let Some(wasmtime::ExternType::Func(f)) = module.get_export(name) else {
                    return Err(entry_err(format!(
                        "no exported function `{name}` to invoke"
                    )));
                };
                let results: Vec<ValType> = f.results().collect();
                let returns_i32 = match results.as_slice() {
                    [] => false,
                    [ValType::I32] => true,
                    _ => {
                        return Err(entry_err(format!(
                            "export `{name}` must return nothing or an i32 exit code"
                        )));
                    }
                };
                if f.params().len() != 0 {
                    return Err(entry_err(format!(
                        "export `{name}` must take no parameters"
                    )));
                }
                CoreEntry::Invoke {
                    name: name.clone(),
                    returns_i32,
                }
            }
        };
        if fs_audit::uses_paths(&module) && self.inner.shim.get().is_none() {
            let shim = self.compile_shim().map_err(|e| {
                LoadError::Engine(EngineError::new(
                    "cannot build the filesystem audit shim",
                    cause(e),
                ))
            })?;
            // Another thread may have won the race; either module will do.
            let _ = self.inner.shim.set(shim);
        }
        let linker = self
            .inner
            .core_linker
            .get_or_init(|| core_linker(&self.inner.engine, &self.inner.shim).map_err(cause))
            .as_ref()
            .map_err(|e| EngineError::new("cannot build the core module linker", e.clone()))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::UnknownImport {
                path: path.to_owned(),
                import: format!("{e:#}"),
                source: Some(cause(e)),
            })?;
        Ok(Prepared::Core { pre, entry })
    }

    /// The filesystem audit shim, from the compiled-code cache when there is one.
    fn compile_shim(&self) -> wasmtime::Result<wasmtime::Module> {
        let bytes = fs_audit::shim_bytes()?;
        let engine = &self.inner.engine;
        let module = match &self.inner.settings.cache {
            Some(cache) => match cache
                .load_or_compile(engine, &bytes, &Sha256::digest(&bytes), false)?
                .0
            {
                Compiled::Module(m) => m,
                Compiled::Component(_) => wasmtime::bail!("the shim is a core module"),
            },
            None => wasmtime::Module::new(engine, &bytes)?,
        };
        module.initialize_copy_on_write_image()?;
        Ok(module)
    }

    fn prepare_component(
        &self,
        policy: &Policy,
        path: &Path,
        c: component::Component,
    ) -> Result<Prepared, LoadError> {
        let engine = &self.inner.engine;
        let ty = c.component_type();
        let linker = self
            .inner
            .component_linker
            .get_or_init(|| component_linker(engine).map_err(cause))
            .as_ref()
            .map_err(|e| EngineError::new("cannot build the component linker", e.clone()))?;
        let pre = linker
            .instantiate_pre(&c)
            .map_err(|e| LoadError::UnknownImport {
                path: path.to_owned(),
                import: unknown_import_name(&e),
                source: Some(cause(e)),
            })?;
        let entry_err = |message: String| LoadError::Entry {
            path: path.to_owned(),
            message,
        };
        let entry = match &policy.invoke {
            None => match CommandPre::new(pre.clone()) {
                Ok(command) => ComponentEntry::Run(Box::new(command)),
                // Not a command: an HTTP handler is served under `warden serve`'s /http/NAME/.
                Err(_) => ComponentEntry::Http(Box::new(
                    wasmtime_wasi_http::p2::bindings::sync::ProxyPre::new(pre.clone()).map_err(
                        |_| {
                            entry_err(
                                "component does not export `wasi:cli/run` (a command of the \
                                 wasi:cli/command world) nor `wasi:http/incoming-handler` (for \
                                 `warden serve`); set [workload] invoke to call another export"
                                    .into(),
                            )
                        },
                    )?,
                )),
            },
            Some(name) => {
                let Some(component::types::ComponentItem::ComponentFunc(f)) =
                    ty.get_export(engine, name).map(|e| e.ty)
                else {
                    return Err(entry_err(format!(
                        "no exported function `{name}` to invoke"
                    )));
                };
                if f.params().len() != 0 {
                    return Err(entry_err(format!(
                        "export `{name}` must take no parameters"
                    )));
                }
                ComponentEntry::Invoke {
                    name: name.clone(),
                    results: f.results().len(),
                }
            }
        };
        Ok(Prepared::Component { pre, entry })
    }
}

/// The import a failed `instantiate_pre` complains about, for a one-line error.
fn unknown_import_name(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.split('`').nth(1).map(str::to_string).unwrap_or(text)
}

/// Checks a module's bytes before anything is compiled or looked up: a WebAssembly binary of a
/// kind the policy supports, matching the policy's `sha256` pin. Returns whether it is a
/// component, its SHA-256 and that digest in hex.
fn check_bytes(
    policy: &Policy,
    path: &Path,
    bytes: &[u8],
) -> Result<(bool, Vec<u8>, String), LoadError> {
    let not_wasm = |message: &str| LoadError::NotWasm {
        path: path.to_owned(),
        message: message.into(),
    };
    if bytes.is_empty() {
        return Err(not_wasm(
            "empty file: not a WebAssembly module or component",
        ));
    }
    let is_component = match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => false,
        [0, b'a', b's', b'm', 0x0d, 0, 1, 0, ..] => true,
        [0, b'a', b's', b'm', ..] => {
            return Err(not_wasm("unsupported WebAssembly binary version"));
        }
        _ => {
            return Err(not_wasm(
                "not a WebAssembly module or component (bad magic)",
            ));
        }
    };
    policy.check_supported(is_component)?;
    let digest = Sha256::digest(bytes).to_vec();
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(expected) = &policy.sha256
        && *expected != sha256
    {
        return Err(LoadError::PinMismatch {
            path: path.to_owned(),
            expected: expected.clone(),
            actual: sha256,
        });
    }

    Ok((is_component, digest, sha256))
}
