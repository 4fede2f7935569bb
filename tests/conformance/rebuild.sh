#!/usr/bin/env bash
# Regenerates the vendored conformance binaries from their sources. Not run by CI or by
# scripts/test: the binaries are committed, and this says exactly how they were made.
#
#   tests/conformance/rebuild.sh wasi-testsuite GIT_DIR   # a clone of WebAssembly/wasi-testsuite
#   tests/conformance/rebuild.sh wasmtime-p2 GIT_DIR      # a clone of bytecodealliance/wasmtime
#
# GIT_DIR is any git directory holding the pinned commit (a bare clone will do); nothing is
# fetched but crates from crates.io. Needs git, python3 (strip.py), and for wasmtime-p2 cargo
# with the wasm32-wasip1 and wasm32-wasip2 targets (rust-toolchain.toml installs them).
# Pins and licences: PROVENANCE.md in each folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# WebAssembly/wasi-testsuite keeps its prebuilt binaries on the branch prod/testsuite-base;
# this commit holds the ones built from main at e1f53e05d128.
TESTSUITE_COMMIT=9f80ca35444cfd9e63100725615140a346652e6c
# wasmtime's tag v48.0.0 (warden uses wasmtime 48.0.8, whose tag the snapshot lacked).
WASMTIME_COMMIT=f1412a598f96f3c261a19118d94caffcb0c36235

usage() {
    sed -n '2,11p' "$0" >&2
    exit 2
}
[ $# -eq 2 ] || usage
what=$1
git_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

case $what in
wasi-testsuite)
    # The .wasm, .json and fixture folders of each preview 1 suite, as the suite ships them.
    git --git-dir="$git_dir" archive "$TESTSUITE_COMMIT" \
        tests/assemblyscript/testsuite/wasm32-wasip1 \
        tests/c/testsuite/wasm32-wasip1 \
        tests/rust/testsuite/wasm32-wasip1 | tar -x -C "$scratch"
    out=$here/wasi-testsuite
    for lang in assemblyscript c rust; do
        rm -rf "${out:?}/$lang"
        cp -a "$scratch/tests/$lang/testsuite/wasm32-wasip1" "$out/$lang"
    done
    git --git-dir="$git_dir" show "$TESTSUITE_COMMIT:LICENSE" >"$out/LICENSE"
    # Debug information is most of the Rust tests' size (about 2 MB each); the code stays.
    python3 "$here/strip.py" "$out"/*/*.wasm
    ;;
wasmtime-p2)
    # crates/test-programs and the WIT it generates bindings from, as a workspace of its own
    # (wasmtime's workspace is not needed to build it). Only the source of the build: it is
    # not committed here.
    git --git-dir="$git_dir" archive "$WASMTIME_COMMIT" \
        crates/test-programs crates/wasi-http/wit crates/wasi-http/src/p3/wit \
        crates/wasi-tls/wit crates/wasi-tls/src/p3/wit crates/wasi-config/wit \
        crates/wasi-keyvalue/wit crates/wasi-nn/wit | tar -x -C "$scratch"
    git --git-dir="$git_dir" show "$WASMTIME_COMMIT:Cargo.lock" >"$scratch/Cargo.lock"
    # The versions are wasmtime's [workspace.dependencies] at that commit. The release
    # profile keeps debug assertions and overflow checks, as wasmtime's (debug) build of the
    # programs has them.
    cat >"$scratch/Cargo.toml" <<'EOF'
[workspace]
resolver = "2"
members = ["crates/test-programs"]

[workspace.package]
edition = "2024"
rust-version = "1.95.0"

[workspace.lints.rust]
unexpected_cfgs = "allow"

[workspace.dependencies]
wit-bindgen = { version = "0.60.0", default-features = false }
anyhow = { version = "1.0.103", default-features = false }
libc = { version = "0.2.185", default-features = true }
futures = { version = "0.3.31", default-features = false }
url = "2.5.7"
base64 = "0.22.1"
regex = "1.9.1"
sha2 = { version = "0.10.2", default-features = false }

[profile.release]
debug = false
strip = "debuginfo"
debug-assertions = true
overflow-checks = true
opt-level = "s"
EOF
    # The programs rebuilt are the ones vendored (which ones, and why: PROVENANCE.md).
    out=$here/wasmtime-p2
    p1=()
    p2=()
    for wasm in "$out"/*.wasm; do
        name=$(basename "$wasm" .wasm)
        case $name in
        p1_*) p1+=(--bin "$name") ;;
        *) p2+=(--bin "$name") ;;
        esac
    done
    target=${CARGO_TARGET_DIR:-$scratch/target}
    # The p2_* programs for wasm32-wasip2: rustc links each into a component itself
    # (wasm-component-ld).
    (cd "$scratch" && CARGO_TARGET_DIR=$target cargo build --release --target wasm32-wasip2 "${p2[@]}")
    # The p1_* programs as wasmtime builds them: for wasm32-wasip1, then made components with
    # wasmtime's command adapter (the crate wasi-preview1-component-adapter-provider 48.0.8,
    # the adapter of the wasmtime-wasi warden uses), as crates/test-programs/artifacts/build.rs
    # does.
    (cd "$scratch" && CARGO_TARGET_DIR=$target cargo build --release --target wasm32-wasip1 "${p1[@]}")
    mkdir -p "$scratch/componentize/src"
    cat >"$scratch/componentize/Cargo.toml" <<'EOF'
[package]
name = "componentize"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
wit-component = "0.254.0"
wasi-preview1-component-adapter-provider = "=48.0.8"

[workspace]
EOF
    cat >"$scratch/componentize/src/main.rs" <<'EOF'
//! INPUT OUTPUT: a component made of a wasm32-wasip1 module and wasmtime's command adapter.
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER as ADAPTER;

fn main() {
    let mut args = std::env::args().skip(1);
    let (input, output) = (args.next().expect("INPUT"), args.next().expect("OUTPUT"));
    let module = std::fs::read(&input).expect("read the module");
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).adapter("wasi_snapshot_preview1", ADAPTER))
        .and_then(|mut e| e.encode())
        .unwrap_or_else(|e| panic!("{input}: {e:?}"));
    std::fs::write(&output, component).expect("write the component");
}
EOF
    (cd "$scratch/componentize" && CARGO_TARGET_DIR=$target cargo build --release)
    for wasm in "$out"/*.wasm; do
        name=$(basename "$wasm")
        case $name in
        p1_*)
            "$target/release/componentize" \
                "$target/wasm32-wasip1/release/$name" "$wasm"
            ;;
        *) cp "$target/wasm32-wasip2/release/$name" "$wasm" ;;
        esac
    done
    git --git-dir="$git_dir" show "$WASMTIME_COMMIT:LICENSE" >"$out/LICENSE"
    python3 "$here/strip.py" "$out"/*.wasm
    ;;
*)
    usage
    ;;
esac
du -sh "$out"
