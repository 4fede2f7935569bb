//! Start-up cost: a fresh sandbox around an already-loaded workload, and a load from the
//! compiled-module cache. Run with `cargo bench -p warden-runtime --bench startup`.
//!
//! `run-hello` compares, for hello world: a run of the loaded module and of the loaded
//! component in-process; the native build of the same source as a whole process; and
//! `warden run` of the module as a whole process (engine, cache load, lockdown, run, exit),
//! when the `warden` binary is there (see `support::warden_bin`).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use warden::{EngineSettings, ModuleCache, Outcome, Policy, RunOptions, Sink, Warden};
use warden_guest_artifacts as guests;

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
    for (name, module) in [
        ("module", guests::HELLO_P1),
        ("component", guests::HELLO_P2),
    ] {
        let warden = Warden::new(EngineSettings::default()).expect("engine");
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
    })
    .expect("engine");
    warden.load(hello_policy()).expect("warm the cache");
    c.bench_function("load-hello-from-cache", |b| {
        b.iter(|| black_box(warden.load(hello_policy()).expect("load")))
    });
}

criterion_group!(benches, run_loaded, load_cached);
criterion_main!(benches);
