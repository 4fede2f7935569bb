//! Builds the guests workspace (`guests/`, next to this crate) for wasm32-wasip1 and
//! wasm32-wasip2, and the benchmarks' native twins for the host, then writes
//! `$OUT_DIR/artifacts.rs`: one `&str` constant per built `.wasm` or native executable, holding
//! its absolute path, and `GUESTS_DIR`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Core modules.
const P1: &str = "wasm32-wasip1";
/// Components.
const P2: &str = "wasm32-wasip2";

/// Where a guest is built for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A wasm target triple.
    Wasm(&'static str),
    /// The host, as a native executable: the twin a benchmark compares the wasm build with.
    /// Built for the host's baseline CPU (no `target-cpu=native`, no RUSTFLAGS), like the wasm.
    Native,
}

/// The guests' cargo profiles: `release` (small code, for tests) and `twins` (fast code, for
/// the benchmark twins; see guests/Cargo.toml).
const PROFILES: &[&str] = &["release", "twins"];

/// The profile only benchmarks use. Its guests (optimised for speed, and built natively too)
/// are built when this crate is built for an optimised profile (`cargo bench`,
/// `cargo build --release`) or when [`BUILD_TWINS_VAR`] is set: the test build, which never
/// runs them, does not pay for them.
const BENCH_PROFILE: &str = "twins";

/// Set (to anything) to build the benchmark twins in a debug build as well.
const BUILD_TWINS_VAR: &str = "WARDEN_BUILD_TWINS";

/// One guest crate of the guests workspace.
struct Guest {
    /// Its package name.
    package: &'static str,
    /// What it does, for the constants' docs.
    what: &'static str,
    /// Whether it is a `cdylib` (whose file is named after the crate) rather than a binary.
    cdylib: bool,
    /// Whether it builds for wasm32-wasip1 (as a core module).
    p1: bool,
    /// Whether it builds for wasm32-wasip2 (as a component).
    p2: bool,
    /// Whether it also builds natively, for the host (as a benchmark's native twin).
    native: bool,
    /// Its cargo profile, one of [`PROFILES`].
    profile: &'static str,
}

impl Guest {
    fn builds_for(&self, target: Target) -> bool {
        match target {
            Target::Wasm(P1) => self.p1,
            Target::Wasm(_) => self.p2,
            Target::Native => self.native,
        }
    }
}

const fn bin(package: &'static str, what: &'static str) -> Guest {
    Guest {
        package,
        what,
        cdylib: false,
        p1: true,
        p2: true,
        native: false,
        profile: "release",
    }
}

const GUESTS: &[Guest] = &[
    Guest {
        native: true,
        ..bin("hello", "prints `hello, NAME`")
    },
    bin(
        "fs",
        "the file tool: read, write, append, ls, mkdir, rm, stat",
    ),
    bin("env", "prints the environment variables it sees"),
    bin(
        "probe",
        "probes clocks, randomness, stdin, args and exit codes",
    ),
    bin("membomb", "hostile: allocates memory until refused"),
    bin("spin", "hostile: loops forever"),
    bin("flood", "hostile: writes to stdout forever"),
    bin("recurse", "hostile: recurses until the stack overflows"),
    bin(
        "escape",
        "hostile: tries to get out of its granted directory",
    ),
    Guest {
        native: true,
        ..bin(
            "report-connector",
            "the example connector of examples/report-connector (and its native twin)",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "payments",
            "example connector: charges through an API with an injected secret",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "agent-tool",
            "example connector: an agent's tool summarising a read-only workspace",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "ci-job",
            "example connector: unpacks artifacts with checksums, uploads its log",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "vendor-connector",
            "example connector: a third party's, sends orders to its vendor API",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "deploy-controller",
            "example connector: restarts a service with a rotated credential",
        )
    },
    Guest {
        p1: false,
        ..bin(
            "net-probe",
            "makes the HTTP requests, TCP connections and secret calls its arguments describe",
        )
    },
    bin(
        "stress",
        "drives every host function a grant allows at its extremes (lockdown completeness)",
    ),
    bin(
        "corpus-rust",
        "reads files as connector authors do: a BufReader, serde_json, wasi:filesystem streams",
    ),
    Guest {
        package: "component-export",
        what: "exports `transform: func() -> string`",
        cdylib: true,
        p1: false,
        p2: true,
        native: false,
        profile: "release",
    },
    Guest {
        package: "http-echo",
        what: "exports `wasi:http/incoming-handler`: echoes, fetches, reads a file, spins, traps",
        cdylib: true,
        p1: false,
        p2: true,
        native: false,
        profile: "release",
    },
    Guest {
        package: "reactor",
        what: "exports `transform() -> i32`",
        cdylib: true,
        p1: true,
        p2: false,
        native: false,
        profile: "release",
    },
    Guest {
        package: "bench-twins",
        what: "the benchmark twins: sha256, json, regex, csv, readmany",
        cdylib: false,
        p1: true,
        p2: false,
        native: true,
        profile: "twins",
    },
    Guest {
        package: "bench-hostcall",
        what: "exports `run(call, n)`: one host call (a secret's method, a no-op, the clock) n times",
        cdylib: true,
        p1: false,
        p2: true,
        native: false,
        profile: "twins",
    },
];

/// Variables of this build that must not reach the guests' build: they describe the host build
/// (its flags, wrappers, target, profile, features and jobserver), not the guests'.
const SCRUBBED: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "DEBUG",
    "OPT_LEVEL",
    "PROFILE",
    "TARGET",
    "HOST",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
    "OUT_DIR",
    "NUM_JOBS",
];
const SCRUBBED_PREFIXES: &[&str] = &["CARGO_FEATURE_", "CARGO_CFG_"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let guests_dir = manifest_dir
        .parent()
        .expect("the artifacts crate lives in guests/")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_dir = root_target_dir(&out_dir).join("guests");

    track_inputs(&guests_dir);
    println!("cargo:rerun-if-env-changed={BUILD_TWINS_VAR}");
    // cargo gives a build script the host build's profile as `PROFILE`: `release` for the
    // release and bench profiles, `debug` for dev and test.
    let build_twins =
        env::var("PROFILE").is_ok_and(|p| p == "release") || env::var_os(BUILD_TWINS_VAR).is_some();
    let built = |profile: &str| profile != BENCH_PROFILE || build_twins;

    for target in [Target::Wasm(P1), Target::Wasm(P2), Target::Native] {
        for profile in PROFILES.iter().filter(|p| built(p)) {
            build(&guests_dir, &target_dir, target, profile);
        }
    }

    let mut code = String::new();
    writeln!(
        code,
        "/// The absolute path of the `guests/` folder, the guests' cargo workspace.\n\
         pub const GUESTS_DIR: &str = {:?};",
        path_str(&guests_dir)
    )
    .expect("write to a String");
    for guest in GUESTS {
        for (target, suffix, kind) in [
            (
                Target::Wasm(P1),
                "P1",
                "built for wasm32-wasip1 as a core module",
            ),
            (
                Target::Wasm(P2),
                "P2",
                "built for wasm32-wasip2 as a component",
            ),
            (
                Target::Native,
                "NATIVE",
                "built natively for the host, to compare with",
            ),
        ] {
            if !guest.builds_for(target) {
                continue;
            }
            let path = artifact_path(&target_dir, target, guest);
            let note = if built(guest.profile) {
                ""
            } else {
                " Not built by this (debug) build: `cargo bench` or a release build builds it."
            };
            assert!(
                !built(guest.profile) || path.is_file(),
                "the guests built, but {} is missing: is `{}` still in guests/Cargo.toml?",
                path.display(),
                guest.package
            );
            let name = format!(
                "{}_{suffix}",
                guest.package.replace('-', "_").to_uppercase()
            );
            writeln!(
                code,
                "/// `{}` ({}), {kind}.{note}\n\
                 pub const {name}: &str = {:?};",
                guest.package,
                guest.what,
                path_str(&path)
            )
            .expect("write to a String");
        }
    }
    fs::write(out_dir.join("artifacts.rs"), code).expect("write $OUT_DIR/artifacts.rs");
}

/// The root workspace's target directory, where the guests get a `guests/` folder of their own
/// shared by every profile and package hash (so their builds are incremental): the folder
/// `CARGO_TARGET_DIR` names if set, else the nearest ancestor of `OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`) named `target`.
fn root_target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        if dir.is_absolute() {
            return dir;
        }
        // Relative to wherever cargo was started: find it among OUT_DIR's ancestors.
        if let Some(found) = out_dir.ancestors().find(|a| a.ends_with(&dir)) {
            return found.to_path_buf();
        }
    }
    if let Some(found) = out_dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "target"))
    {
        return found.to_path_buf();
    }
    // An unusual layout: the four levels above OUT_DIR, or OUT_DIR itself.
    out_dir.ancestors().nth(4).unwrap_or(out_dir).to_path_buf()
}

/// Runs cargo on the guests workspace for one target and profile, building the guests meant
/// for them (if any).
fn build(guests_dir: &Path, target_dir: &Path, target: Target, profile: &str) {
    let packages: Vec<&str> = GUESTS
        .iter()
        .filter(|g| g.profile == profile && g.builds_for(target))
        .map(|g| g.package)
        .collect();
    if packages.is_empty() {
        return;
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args: Vec<String> = ["build", "--profile", profile, "--color=never"]
        .map(String::from)
        .into();
    let target_name = match target {
        Target::Wasm(triple) => {
            args.push("--target".into());
            args.push(triple.into());
            triple
        }
        Target::Native => "the host",
    };
    args.push("--manifest-path".into());
    args.push(path_str(&guests_dir.join("Cargo.toml")).into());
    args.push("--target-dir".into());
    args.push(path_str(target_dir).into());
    for package in packages {
        args.push("-p".into());
        args.push(package.into());
    }
    let shown = format!("{} {}", cargo.to_string_lossy(), args.join(" "));
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(guests_dir).args(&args);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if SCRUBBED.contains(&key) || SCRUBBED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
    }
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("could not run `{shown}` to build the guests: {e}");
    });
    if !output.status.success() {
        panic!(
            "building the guests for {target_name} failed ({}).\n\
             command: {shown}\n\
             hint: if the wasm targets are missing (\"the `{target_name}` target may not be installed\", \
             \"can't find crate for `std`\"), install them: \
             rustup target add wasm32-wasip1 wasm32-wasip2\n\
             --- stderr of the guests' build ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Where cargo puts a guest's `.wasm` for a wasm `target`, or its executable for the host.
fn artifact_path(target_dir: &Path, target: Target, guest: &Guest) -> PathBuf {
    let stem = if guest.cdylib {
        guest.package.replace('-', "_")
    } else {
        guest.package.to_string()
    };
    match target {
        Target::Wasm(triple) => target_dir
            .join(triple)
            .join(guest.profile)
            .join(format!("{stem}.wasm")),
        // The build script runs on the host, so its executable suffix is the host's.
        Target::Native => target_dir
            .join(guest.profile)
            .join(format!("{stem}{}", env::consts::EXE_SUFFIX)),
    }
}

/// Tells cargo to run this script again when a guest's sources, a manifest, the lock file or
/// the toolchain file changes.
fn track_inputs(guests_dir: &Path) {
    rerun_if_changed(&guests_dir.join("Cargo.toml"));
    rerun_if_changed(&guests_dir.join("Cargo.lock"));
    if let Some(root) = guests_dir.parent() {
        rerun_if_changed(&root.join("rust-toolchain.toml"));
        // warden's own WIT, which the guest SDK generates its bindings from.
        walk(&root.join("wit"));
    }
    // Guest crates sit in guests/ and, for the example connectors, in guests/connectors/.
    let nested = guests_dir.join("connectors");
    rerun_if_changed(&nested);
    let entries = fs::read_dir(guests_dir)
        .expect("read the guests folder")
        .chain(fs::read_dir(&nested).into_iter().flatten());
    for entry in entries.flatten() {
        let dir = entry.path();
        let manifest = dir.join("Cargo.toml");
        if entry.file_name() == "artifacts" || !manifest.is_file() {
            continue;
        }
        rerun_if_changed(&manifest);
        for extra in ["build.rs", "wit"] {
            if dir.join(extra).exists() {
                walk(&dir.join(extra));
            }
        }
        walk(&dir.join("src"));
    }
}

/// `rerun-if-changed` for a folder (so that added files count) and everything in it.
fn walk(path: &Path) {
    rerun_if_changed(path);
    if path.is_dir() {
        let entries = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .flatten();
        for entry in entries {
            walk(&entry.path());
        }
    }
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path_str(path));
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not valid UTF-8", path.display()))
}
