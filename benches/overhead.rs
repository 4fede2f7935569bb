//! warden's overhead against native code, on the benchmark twins of `guests/bench-twins` (one
//! source, built for wasm32-wasip1 and natively). Run with
//! `cargo bench -p warden-cli --bench overhead`, or one part of it with a filter after
//! `--`: `compute`, `interruption`, `lockdown`.
//!
//! - `compute-*`: each twin's work, `native` (the native twin as a whole process) against
//!   `wasm` (the wasm twin run in-process through the library). The twins repeat their work
//!   as often as criterion asks (`iter_custom`) in one run, and criterion's linear sampling
//!   fits time against repetitions, so the estimate is the cost of one repetition without the
//!   cost of starting a process or an instance. `csv` reads stdin and writes stdout, so it is
//!   timed as whole runs: start-up included.
//! - `interruption-*`: a twin with epoch interruption alone (always on in warden), against
//!   epochs and fuel metering (`[limits] fuel`); and, since warden never runs without epochs,
//!   the same twin in a minimal WASI host on engines built here that differ only in
//!   interruption: none, epochs (warden's own engine and epoch callback), fuel, epochs + fuel.
//! - `lockdown-readmany`: a twin that opens, reads and closes a small file thousands of times,
//!   as whole `warden run` processes with `--seccomp off` against `--seccomp enforce` (and the
//!   native twin). Needs the `warden` binary (see `support::warden_bin`); skipped without it.
//!
//! Before measuring, each twin's output under warden is checked against the native twin's.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use std::path::Path;
use std::time::{Duration, Instant};
use warden::{EngineSettings, Input, Warden, Workload};
use warden_guest_artifacts as guests;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

#[path = "support.rs"]
mod support;
use support::{args, native_twins};

/// The twins that loop themselves: a name for the group and the words before REPS.
const LOOPING: &[(&str, &[&str])] = &[
    ("sha256-1MiB", &["sha256", "1"]),
    ("sha256-16MiB", &["sha256", "16"]),
    ("json-1MiB", &["json"]),
    ("regex-4MiB", &["regex"]),
];

/// The CSV input's size, in megabytes.
const CSV_MB: &str = "10";

/// Open-read-close rounds of one `readmany` run.
const READS: &str = "10000";

fn load(settings: EngineSettings, fuel: Option<u64>) -> Workload {
    let warden = Warden::new(settings).expect("engine");
    let mut policy = support::policy(guests::BENCH_TWINS_P1);
    policy.limits.fuel = fuel;
    warden.load(policy).expect("load the wasm twin")
}

/// Fails unless the wasm twin prints what the native twin prints for `words`.
fn check_twins_agree(workload: &Workload, words: &[&str], stdin: Option<&Path>) {
    let a = args(words, None);
    let native = support::output_process(native_twins(), &a, stdin);
    let input = match stdin {
        Some(p) => Input::Bytes(std::fs::read(p).expect("read stdin")),
        None => Input::Null,
    };
    let wasm = support::output_wasm(workload, &a, input);
    assert!(
        native == wasm,
        "the twins disagree on {words:?}:\n native: {:?}\n wasm:   {:?}",
        String::from_utf8_lossy(&native.0).lines().next(),
        String::from_utf8_lossy(&wasm.0).lines().next(),
    );
}

fn compute(c: &mut Criterion) {
    // The first group to run: a counting run exits before any other work.
    interruption_once();
    let workload = load(EngineSettings::default(), None);
    // What a one-shot `warden run` uses: no epoch instrumentation (the watchdog ends the
    // process at the wall limit, which these runs never reach).
    let no_epochs = load(
        EngineSettings {
            interruption: warden::Interruption::EndProcess,
            ..EngineSettings::default()
        },
        None,
    );
    for &(name, words) in LOOPING {
        check_twins_agree(&workload, words, None);
        check_twins_agree(&no_epochs, words, None);
        let mut group = c.benchmark_group(format!("compute-{name}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .sampling_mode(SamplingMode::Linear);
        group.bench_function("native", |b| {
            b.iter_custom(|reps| {
                support::run_process(native_twins(), &args(words, Some(reps)), None)
            })
        });
        group.bench_function("wasm", |b| {
            b.iter_custom(|reps| {
                support::run_wasm(&workload, &args(words, Some(reps)), Input::Null)
            })
        });
        group.bench_function("wasm-no-epochs", |b| {
            b.iter_custom(|reps| {
                support::run_wasm(&no_epochs, &args(words, Some(reps)), Input::Null)
            })
        });
        group.finish();
    }

    // CSV from stdin to stdout: whole runs, one at a time.
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.csv");
    let (csv, _) = support::output_process(native_twins(), &args(&["csv-gen", CSV_MB], None), None);
    std::fs::write(&input, &csv).expect("write the CSV input");
    check_twins_agree(&workload, &["csv"], Some(&input));
    let mut group = c.benchmark_group(format!("compute-csv-{CSV_MB}MB"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);
    let csv_args = args(&["csv"], None);
    group.bench_function("native", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| support::run_process(native_twins(), &csv_args, Some(&input)))
                .sum()
        })
    });
    group.bench_function("wasm", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| support::run_wasm(&workload, &csv_args, Input::Bytes(csv.clone())))
                .sum()
        })
    });
    group.finish();
}

/// `WARDEN_INTERRUPTION_ONCE="ENGINE WORDS… REPS"` (ENGINE one of `none`, `epochs`, `fuel`,
/// `epochs+fuel`): builds only that engine, runs the twin once in the minimal host and exits,
/// for instruction counts that load on the machine does not blur:
/// `valgrind --tool=callgrind --toggle-collect='*RawTwin*run*' BENCH_EXE`, at two REPS.
fn interruption_once() {
    let Ok(spec) = std::env::var("WARDEN_INTERRUPTION_ONCE") else {
        return;
    };
    let words: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
    let (label, rest) = words.split_first().expect("ENGINE WORDS… REPS");
    let (epochs, fuel) = match label.as_str() {
        "none" => (false, false),
        "epochs" => (true, false),
        "fuel" => (false, true),
        "epochs+fuel" => (true, true),
        other => panic!("unknown engine {other:?}"),
    };
    // warden's own engine wherever it has epochs, so the ticker runs as in a run.
    let warden = epochs.then(|| {
        Warden::new(EngineSettings {
            fuel,
            ..EngineSettings::default()
        })
        .expect("engine")
    });
    let engine = match &warden {
        Some(w) => w.engine().clone(),
        None => own_engine(false, fuel),
    };
    let twin = RawTwin::new("once", engine, epochs, fuel);
    let t = twin.run(rest);
    eprintln!("{spec}: {t:?}");
    std::process::exit(0);
}

fn interruption(c: &mut Criterion) {
    let epochs = load(EngineSettings::default(), None);
    let fuel = load(
        EngineSettings {
            fuel: true,
            cache: None,
            pooling: false,
            ..EngineSettings::default()
        },
        Some(u64::MAX),
    );
    let with_epochs = Warden::new(EngineSettings::default()).expect("engine");
    let with_both = Warden::new(EngineSettings {
        fuel: true,
        ..EngineSettings::default()
    })
    .expect("engine");
    let raw = [
        RawTwin::new("none", own_engine(false, false), false, false),
        RawTwin::new("epochs", with_epochs.engine().clone(), true, false),
        RawTwin::new("fuel", own_engine(false, true), false, true),
        RawTwin::new("epochs+fuel", with_both.engine().clone(), true, true),
    ];
    for (name, words) in [
        ("sha256-1MiB", &["sha256", "1"][..]),
        ("json-1MiB", &["json"][..]),
    ] {
        let mut group = c.benchmark_group(format!("interruption-{name}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sampling_mode(SamplingMode::Linear);
        for (label, workload) in [("epochs (default)", &epochs), ("epochs+fuel", &fuel)] {
            group.bench_function(label, |b| {
                b.iter_custom(|reps| {
                    support::run_wasm(workload, &args(words, Some(reps)), Input::Null)
                })
            });
        }
        for twin in &raw {
            group.bench_function(format!("minimal host: {}", twin.label), |b| {
                b.iter_custom(|reps| twin.run(&args(words, Some(reps))))
            });
        }
        group.finish();
    }
}

/// An engine configured as warden's, with the interruption given.
fn own_engine(epochs: bool, fuel: bool) -> Engine {
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(epochs)
        .consume_fuel(fuel)
        .wasm_component_model(true);
    Engine::new(&config).expect("engine")
}

/// The wasm twin in a minimal WASI preview 1 host: no limiter, no audit, no output metering.
struct RawTwin {
    label: &'static str,
    engine: Engine,
    pre: wasmtime::InstancePre<WasiP1Ctx>,
    epochs: bool,
    fuel: bool,
}

impl RawTwin {
    fn new(label: &'static str, engine: Engine, epochs: bool, fuel: bool) -> RawTwin {
        let module = wasmtime::Module::from_file(&engine, guests::BENCH_TWINS_P1).expect("compile");
        let mut linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c).expect("link WASI");
        let pre = linker.instantiate_pre(&module).expect("pre-instantiate");
        RawTwin {
            label,
            engine,
            pre,
            epochs,
            fuel,
        }
    }

    /// One run of the twin with `args`; its time, instantiation included.
    #[inline(never)]
    fn run(&self, args: &[String]) -> Duration {
        let mut wasi = WasiCtxBuilder::new();
        wasi.arg("bench-twins")
            .args(args)
            .stdout(wasmtime_wasi::p2::pipe::SinkOutputStream);
        let mut store = Store::new(&self.engine, wasi.build_p1());
        if self.fuel {
            store.set_fuel(u64::MAX).expect("fuel");
        }
        if self.epochs {
            // What warden's wall limit does each tick, minus the limit.
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
        }
        let started = Instant::now();
        let instance = self.pre.instantiate(&mut store).expect("instantiate");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("_start");
        if let Err(e) = start.call(&mut store, ()) {
            let code = e.downcast_ref::<I32Exit>().map(|x| x.0);
            assert_eq!(code, Some(0), "{}: {e:#}", self.label);
        }
        started.elapsed()
    }
}

fn lockdown(c: &mut Criterion) {
    let Some(bin) = support::warden_bin("lockdown-readmany") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let small = "warden bench: a small file, read many times\n".repeat(24);
    std::fs::write(data.join("small.txt"), &small).expect("write");
    let manifest = dir.path().join("readmany.warden.toml");
    std::fs::write(
        &manifest,
        "[identity]\nname = \"bench-readmany\"\n\n\
         [[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n",
    )
    .expect("write the manifest");
    let cache = dir.path().join("cache");
    let warden_run = |seccomp: &str| {
        let mut cmd = support::warden_cmd(&bin, &cache);
        cmd.arg("run")
            .arg("--manifest")
            .arg(&manifest)
            .args(["--seccomp", seccomp])
            .arg(guests::BENCH_TWINS_P1)
            .args(["--", "readmany", "/data/small.txt", READS]);
        cmd
    };
    // Fills the cache, and checks that the locked-down run works at all.
    support::time_cmd(&mut warden_run("enforce"));
    let native_args = args(
        &["readmany", &data.join("small.txt").to_string_lossy(), READS],
        None,
    );

    let mut group = c.benchmark_group("lockdown-readmany");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("native", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| support::run_process(native_twins(), &native_args, None))
                .sum()
        })
    });
    for seccomp in ["off", "enforce"] {
        group.bench_function(format!("seccomp-{seccomp}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| support::time_cmd(&mut warden_run(seccomp)))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compute, interruption, lockdown);
criterion_main!(benches);
