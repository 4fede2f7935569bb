#!/usr/bin/env bash
# Regenerates the vendored conformance binaries from their sources. Not run by CI or by
# scripts/test: the binaries are committed, and this says exactly how they were made.
#
#   tests/conformance/rebuild.sh wasi-testsuite GIT_DIR   # a clone of WebAssembly/wasi-testsuite
#   tests/conformance/rebuild.sh wasmtime-p2 GIT_DIR      # a clone of bytecodealliance/wasmtime
#
# GIT_DIR is any git directory holding the pinned commit (a bare clone will do); nothing is
# fetched. Needs git, python3 (strip.py), and for wasmtime-p2 cargo with the wasm32-wasip2
# target (rust-toolchain.toml installs it) and crates.io for the programs' dependencies.
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
    bins=()
    for wasm in "$out"/*.wasm; do
        bins+=(--bin "$(basename "$wasm" .wasm)")
    done
    # wasm32-wasip2: rustc links each program into a component with wasm-component-ld, whose
    # bundled wasi_snapshot_preview1 adapter serves the p1_* programs' preview 1 calls.
    target=${CARGO_TARGET_DIR:-$scratch/target}
    (cd "$scratch" && CARGO_TARGET_DIR=$target cargo build --release --target wasm32-wasip2 "${bins[@]}")
    for wasm in "$out"/*.wasm; do
        cp "$target/wasm32-wasip2/release/$(basename "$wasm")" "$wasm"
    done
    git --git-dir="$git_dir" show "$WASMTIME_COMMIT:LICENSE" >"$out/LICENSE"
    python3 "$here/strip.py" "$out"/*.wasm
    ;;
*)
    usage
    ;;
esac
du -sh "$out"
