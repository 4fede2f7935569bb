#!/usr/bin/env bash
# The reference runtime row of BENCHMARKS.md: hello world run by the `wasmtime` CLI (the same
# major version warden embeds, 48), by its native twin and by `warden run`, timed side by side
# with hyperfine. Not run by CI.
#
#   benches/wasmtime-cli.sh            # install wasmtime-cli if needed, then measure
#   INSTALL_ONLY=1 benches/wasmtime-cli.sh
#
# The CLI is built from crates.io with `cargo install --locked` into target/wasmtime-cli (about
# 15-25 minutes of compiling on 2 cores); hyperfine comes from the Debian package `hyperfine`.
# Environment: WASMTIME_VERSION (default 48.0.8), RUNS (default 200), WARMUP (default 20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${WASMTIME_VERSION:-48.0.8}
target=${CARGO_TARGET_DIR:-$root/target}
prefix=$target/wasmtime-cli
wasmtime=$prefix/bin/wasmtime
runs=${RUNS:-200}
warmup=${WARMUP:-20}

if ! "$wasmtime" --version 2>/dev/null | grep -q " $version"; then
    echo "installing wasmtime-cli $version into $prefix (this compiles wasmtime: many minutes)" >&2
    cargo install --locked --quiet --root "$prefix" "wasmtime-cli@$version"
fi
"$wasmtime" --version
[ -n "${INSTALL_ONLY:-}" ] && exit 0

if ! command -v hyperfine >/dev/null; then
    echo "hyperfine is missing: apt-get install hyperfine" >&2
    exit 1
fi

# warden and the guests (the artifacts step builds hello for wasm and natively).
cargo build --release --locked -p warden-cli -p warden-guest-artifacts >&2
warden=$target/release/warden
hello=$target/guests/wasm32-wasip1/release/hello.wasm
native=$target/guests/release/hello
for f in "$warden" "$hello" "$native"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "missing: $f" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Precompiled for the wasmtime CLI (what `warden run` gets from its cache).
"$wasmtime" compile "$hello" -o "$work/hello.cwasm"
export WARDEN_CACHE_DIR=$work/warden-cache
"$warden" run "$hello" >/dev/null # fills warden's cache

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --warmup "$warmup" --runs "$runs" --export-markdown "$work/table.md" \
    -n native "$native" \
    -n "wasmtime run (precompiled)" "$wasmtime run --allow-precompiled $work/hello.cwasm" \
    -n "wasmtime run (.wasm, its cache)" "$wasmtime run $hello" \
    -n "warden run (cached)" "$warden run $hello"
cat "$work/table.md"
