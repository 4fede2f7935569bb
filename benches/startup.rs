//! Start-up cost: a fresh sandbox around an already-loaded workload, and a load from the
//! compiled-module cache. Run with `cargo bench -p warden-cli --bench startup`.
//!
//! `run-hello` compares, for hello world: a run of the loaded module and of the loaded
//! component in-process, with wasmtime's on-demand and pooling instance allocators; the native
//! build of the same source as a whole process; and `warden run` of the module as a whole
//! process (engine, cache load, lockdown, run, exit), when the `warden` binary is there (see
//! `support::warden_bin`).
//!
//! `instantiate`: instantiation alone from a pre-instantiated module (`wasmtime::InstancePre`
//! on warden's engine, a fresh store each time), on-demand against pooling: a no-op module
//! (one page of memory, `invoke` called) and hello (its WASI preview 1 context built, not run).
//!
//! `engine-new`: `Warden::new` (engine, linkers, epoch ticker), on-demand against pooling (which
//! reserves its memory and table slots here), what each `warden run` process pays once.
//!
//! `invoke-noop`: a fresh run of a no-op module's `invoke` through `Workload::run`, one thread.
//!
//! `throughput-2-threads`: fresh-instance invocations of the no-op module from two threads at
//! once on one engine (criterion's figure is the wall time per invocation, and its throughput
//! line the invocations per second): through `Workload::run`, and through `InstancePre` alone.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use warden::{EngineSettings, ModuleCache, Outcome, Policy, RunOptions, Sink, Warden, Workload};
use warden_guest_artifacts as guests;
use wasmtime::{Store, UpdateDeadline};

#[path = "support.rs"]
mod support;

fn hello_policy() -> Policy {
    let mut p = Policy::anonymous();
    p.module = Some(guests::HELLO_P1.into());
    p
}

fn run_loaded(c: &mut Criterion) {
    let mut group = c.benchmark_group("run-hello");
    // The whole-process runs take milliseconds: 20 samples keep the group to seconds.
    group.sample_size(20);
    for (name, module, pooling) in [
        ("module", guests::HELLO_P1, false),
        ("component", guests::HELLO_P2, false),
        ("module (pooling)", guests::HELLO_P1, true),
        ("component (pooling)", guests::HELLO_P2, true),
    ] {
        let warden = engine(pooling);
        let mut policy = hello_policy();
        policy.module = Some(module.into());
        let workload = warden.load(policy).expect("load");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut opts = RunOptions::from_policy(workload.policy());
                opts.stdout = Sink::Null;
                let report = workload.run(opts).expect("run");
                assert_eq!(report.outcome, Outcome::Exited(0));
                black_box(report)
            })
        });
    }
    group.bench_function("native-process", |b| {
        b.iter(|| support::run_process(Path::new(guests::HELLO_NATIVE), &[], None))
    });
    if let Some(bin) = support::warden_bin("run-hello/warden-run-process") {
        let cache = tempfile::tempdir().expect("tempdir");
        let warden_run = || {
            let mut cmd = support::warden_cmd(&bin, cache.path());
            cmd.arg("run").arg(guests::HELLO_P1);
            cmd
        };
        // Fills the cache: the runs measured load the compiled module from it.
        support::time_cmd(&mut warden_run());
        group.bench_function("warden-run-process", |b| {
            b.iter(|| support::time_cmd(&mut warden_run()))
        });
    }
    group.finish();
}

fn load_cached(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let warden = Warden::new(EngineSettings {
        fuel: false,
        cache: Some(ModuleCache::new(dir.path())),
        pooling: false,
        ..EngineSettings::default()
    })
    .expect("engine");
    warden.load(hello_policy()).expect("warm the cache");
    c.bench_function("load-hello-from-cache", |b| {
        b.iter(|| black_box(warden.load(hello_policy()).expect("load")))
    });
}

/// A no-op module: one page of memory, an `invoke` that returns 0.
const NOOP_WAT: &str =
    r#"(module (memory (export "memory") 1) (func (export "invoke") (result i32) i32.const 0))"#;

fn engine(pooling: bool) -> Warden {
    Warden::new(EngineSettings {
        pooling,
        ..EngineSettings::default()
    })
    .expect("engine")
}

const ALLOCATORS: [(&str, bool); 2] = [("on-demand", false), ("pooling", true)];

/// The no-op module, loaded to run `invoke`.
fn noop_workload(warden: &Warden) -> Workload {
    let mut policy = Policy::anonymous();
    policy.invoke = Some("invoke".into());
    let wasm = wat::parse_str(NOOP_WAT).expect("wat");
    warden
        .load_bytes(policy, Path::new("noop.wasm"), &wasm)
        .expect("load")
}

fn run_noop(workload: &Workload) {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.stdout = Sink::Null;
    opts.stderr = Sink::Null;
    let report = workload.run(opts).expect("run");
    assert_eq!(report.outcome, Outcome::Exited(0));
}

/// A fresh store, the no-op module instantiated from `pre` and its `invoke` called.
fn instantiate_noop(engine: &wasmtime::Engine, pre: &wasmtime::InstancePre<()>) {
    let mut store = Store::new(engine, ());
    // As in a warden run: a deadline every epoch tick, and a callback that lets it go on.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
    let instance = pre.instantiate(&mut store).expect("instantiate");
    let invoke = instance
        .get_typed_func::<(), i32>(&mut store, "invoke")
        .expect("invoke");
    assert_eq!(invoke.call(&mut store, ()).expect("call"), 0);
}

fn noop_pre(warden: &Warden) -> wasmtime::InstancePre<()> {
    let wasm = wat::parse_str(NOOP_WAT).expect("wat");
    let module = wasmtime::Module::new(warden.engine(), wasm).expect("compile");
    wasmtime::Linker::new(warden.engine())
        .instantiate_pre(&module)
        .expect("pre-instantiate")
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    for (allocator, pooling) in ALLOCATORS {
        let warden = engine(pooling);
        let engine = warden.engine();
        let pre = noop_pre(&warden);
        group.bench_function(format!("noop/{allocator}"), |b| {
            b.iter(|| instantiate_noop(engine, &pre))
        });

        let module = wasmtime::Module::from_file(engine, guests::HELLO_P1).expect("compile");
        module
            .initialize_copy_on_write_image()
            .expect("memory image");
        let mut linker = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c).expect("link WASI");
        let pre = linker.instantiate_pre(&module).expect("pre-instantiate");
        group.bench_function(format!("hello/{allocator}"), |b| {
            b.iter(|| {
                let wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
                let mut store = Store::new(engine, wasi);
                black_box(pre.instantiate(&mut store).expect("instantiate"));
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("engine-new");
    for (allocator, pooling) in ALLOCATORS {
        group.bench_function(allocator, |b| b.iter(|| black_box(engine(pooling))));
    }
    group.finish();

    let mut group = c.benchmark_group("invoke-noop");
    for (allocator, pooling) in ALLOCATORS {
        let workload = noop_workload(&engine(pooling));
        group.bench_function(format!("warden/{allocator}"), |b| {
            b.iter(|| run_noop(&workload))
        });
    }
    group.finish();
}

/// Runs `f` `iters` times split over two threads; the wall time from the first start to the
/// last end.
fn on_two_threads(iters: u64, f: &(impl Fn() + Sync)) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for share in [iters / 2, iters - iters / 2] {
            s.spawn(move || {
                for _ in 0..share {
                    f();
                }
            });
        }
    });
    started.elapsed()
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput-2-threads");
    group.throughput(Throughput::Elements(1));
    for (allocator, pooling) in ALLOCATORS {
        let warden = engine(pooling);
        let workload = noop_workload(&warden);
        group.bench_function(format!("warden invoke/{allocator}"), |b| {
            b.iter_custom(|iters| on_two_threads(iters, &|| run_noop(&workload)))
        });
        let engine = warden.engine();
        let pre = noop_pre(&warden);
        group.bench_function(format!("InstancePre/{allocator}"), |b| {
            b.iter_custom(|iters| on_two_threads(iters, &|| instantiate_noop(engine, &pre)))
        });
    }
    group.finish();
}

criterion_group!(benches, run_loaded, load_cached, instantiate, throughput);
criterion_main!(benches);
