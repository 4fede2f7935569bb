//! The engine: [`Warden::new`] (engine, epoch ticker, watchdog) and the linkers of core
//! modules and components.

use super::{
    ComponentCtx, EPOCH_TICK, EngineSettings, Host, Interruption, RUN_THREAD_STACK, Warden,
    WardenInner,
};
use crate::error::{EngineError, cause};
use crate::fs_audit;
use crate::secrets::SecretsView;
use crate::watchdog::Watchdog;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use wasmtime::component::{self};
use wasmtime::{Config, Engine};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;

impl Warden {
    /// Builds the engine (epoch interruption and its ticker thread unless
    /// [`Interruption::EndProcess`]; fuel if asked) and the wall-time watchdog. The linkers
    /// are built when the first module or component is loaded.
    ///
    /// # Errors
    /// The engine cannot be created on this host.
    pub fn new(settings: EngineSettings) -> Result<Warden, EngineError> {
        let mut config = Config::new();
        let epochs = settings.interruption == Interruption::Epoch;
        // Compiled code differs with and without epochs: wasmtime folds the setting into the
        // engine's compatibility hash (so into the cache key) and refuses, at deserialize, code
        // compiled for the other setting.
        config.epoch_interruption(epochs);
        config.consume_fuel(settings.fuel);
        config.wasm_component_model(true);
        if settings.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                wasmtime::PoolingAllocationConfig::default(),
            ));
        }
        let engine = Engine::new(&config)
            .map_err(|e| EngineError::new("cannot create the engine", cause(e)))?;

        let shim = fs_audit::ShimCell::default();
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        if epochs {
            std::thread::Builder::new()
                .name("warden-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| EngineError::new("cannot start the epoch ticker", Arc::new(e)))?;
        }
        let watchdog = Watchdog::start(!epochs).map_err(|e| {
            ticker_stop.store(true, Ordering::Relaxed);
            EngineError::new("cannot start the wall-time watchdog", Arc::new(e))
        })?;

        let max_live = settings
            .max_live_runs
            .unwrap_or_else(crate::run_pool::default_max_live);
        Ok(Warden {
            inner: Arc::new(WardenInner {
                engine,
                settings,
                core_linker: OnceLock::new(),
                shim,
                component_linker: OnceLock::new(),
                ticker_stop,
                watchdog,
                runs: crate::run_pool::RunPool::new("warden-run", RUN_THREAD_STACK, max_live),
            }),
        })
    }

    /// The wasmtime engine, for embedders that need it.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Starts `n` run threads now (at most [`EngineSettings::max_live_runs`]) and keeps them
    /// idle, and from then on starts no more: a run waits (up to 5 s) for one of them to be
    /// idle. For a process that
    /// installs a seccomp filter of its own after loading, which forbids starting threads:
    /// call this before the filter. Starts the I/O runtime's threads too: its network worker
    /// and its fixed blocking pool, where wasmtime-wasi runs file stream reads and writes.
    ///
    /// # Errors
    /// A thread could not be started.
    pub fn prestart_run_threads(&self, n: usize) -> std::io::Result<()> {
        crate::io_runtime::start();
        crate::io_runtime::start_blocking_pool()?;
        self.inner.runs.prestart(n)
    }
}

/// The linker of core modules: WASI preview 1 with warden's `proc_exit` and the filesystem
/// audit wrappers.
pub(super) fn core_linker(
    engine: &Engine,
    shim: &fs_audit::ShimCell,
) -> wasmtime::Result<wasmtime::Linker<Host<WasiP1Ctx>>> {
    let mut core_linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut core_linker, |h: &mut Host<WasiP1Ctx>| &mut h.wasi)?;
    // wasmtime-wasi traps on exit codes of 126 and up; warden reports every code (capped at
    // 119 in its own exit status, exact in the audit log), so it takes proc_exit over.
    core_linker.allow_shadowing(true);
    core_linker.func_wrap(
        "wasi_snapshot_preview1",
        "proc_exit",
        |code: i32| -> wasmtime::Result<()> { Err(wasmtime::Error::new(I32Exit(code))) },
    )?;
    core_linker.allow_shadowing(false);
    #[cfg(feature = "test-escape")]
    crate::test_escape::add_to_linker(&mut core_linker)?;
    fs_audit::add_to_linker(&mut core_linker, shim.clone())?;
    crate::grant_use::watch_environment_p1(&mut core_linker)?;
    Ok(core_linker)
}

/// The linker of components: WASI preview 2, `wasi:http` through the broker,
/// `warden:host/secrets`, and warden's socket gate.
pub(super) fn component_linker(
    engine: &Engine,
) -> wasmtime::Result<component::Linker<Host<ComponentCtx>>> {
    let mut linker = component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    fs_audit::p2::add_to_linker(&mut linker)?;
    crate::grant_use::watch_environment(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    crate::secrets::add_to_linker(&mut linker, |h: &mut Host<ComponentCtx>| SecretsView {
        ctx: &h.wasi.secrets,
        table: &mut h.wasi.table,
    })?;
    crate::sockets::add_to_linker(&mut linker, |h: &mut Host<ComponentCtx>| {
        h.wasi.gate.clone()
    })?;
    Ok(linker)
}
