#!/usr/bin/env bash
# The C corpus (tests/corpus/c/*.c): wasm32-wasi core modules (WASI preview 1) built with
# Debian bookworm's clang 14, lld 14, wasi-libc and the wasm32 compiler-rt builtins, into
# $2/c/NAME.wasm, for tests/all/corpus_c.rs. Run by scripts/foreign as
# `10-c.sh REPO_ROOT OUT_ROOT`.
#
# Installs the pinned packages with apt-get when they are missing (as root). Under CI=true a
# failed install is fatal; elsewhere it is a loud warning and the C corpus tests then fail,
# naming the missing module. A build whose inputs (the sources, this script, the compiler's
# version) hash the same as the last one is skipped.
set -euo pipefail
root=$1
out=$2/c
src=$root/tests/corpus/c

# Debian bookworm's versions: `apt-cache policy clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32`.
llvm_version=1:14.0.6-12
packages=(
  "clang-14=$llvm_version"
  "lld-14=$llvm_version"
  "libclang-rt-14-dev-wasm32=$llvm_version"
  "wasi-libc=0.0~git20220510.9886d3d-2"
)
cc=clang-14
sysroot=/usr
builtins=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
cflags=(--target=wasm32-wasi "--sysroot=$sysroot" -O2 -Wall -Wextra -Werror -Wl,--strip-all)

say() { echo "foreign/c: $*" >&2; }

# Every pinned package installed at its pinned version?
installed() {
  command -v dpkg-query >/dev/null 2>&1 || return 1
  local p name version
  for p in "${packages[@]}"; do
    name=${p%%=*}
    version=${p#*=}
    [ "$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null)" = "install ok installed $version" ] ||
      return 1
  done
}

give_up() {
  say "!!!!! $1: the C corpus cannot be built and its tests (tests/all/corpus_c.rs) will fail !!!!!"
  if [ "${CI:-}" = true ]; then
    exit 1
  fi
  exit 0
}

if ! installed; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    give_up "need ${packages[*]} (Debian bookworm: apt-get install them as root)"
  fi
  say "installing ${packages[*]}"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      --allow-downgrades -o DPkg::Lock::Timeout=300 "${packages[@]}"
  }
  if ! apt_install >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt_install >&2 || give_up "apt-get install ${packages[*]} failed"
  fi
  installed || give_up "the pinned versions are not what got installed"
fi
for need in "$(command -v $cc || echo "$cc")" "$sysroot/lib/wasm32-wasi/libc.a" "$builtins"; do
  [ -e "$need" ] || give_up "$need is missing after the install"
done

# The inputs' hash: sources and headers, this script, the compiler's own version line.
stamp=$out/.inputs.sha256
sum=$(
  {
    "$cc" --version | head -1
    cat "${BASH_SOURCE[0]}"
    for f in "$src"/*.c "$src"/*.h; do
      echo "== $(basename "$f")"
      cat "$f"
    done
  } | sha256sum | cut -d' ' -f1
)
shopt -s nullglob
sources=("$src"/*.c)
up_to_date=true
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] || up_to_date=false
for c in "${sources[@]}"; do
  [ -f "$out/$(basename "$c" .c).wasm" ] || up_to_date=false
done
if $up_to_date; then
  say "${#sources[@]} modules up to date"
  exit 0
fi

mkdir -p "$out"
rm -f "$stamp"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for c in "${sources[@]}"; do
  name=$(basename "$c" .c)
  "$cc" "${cflags[@]}" -o "$tmp/$name.wasm" "$c"
done
for c in "${sources[@]}"; do
  name=$(basename "$c" .c)
  mv -f "$tmp/$name.wasm" "$out/$name.wasm"
done
echo "$sum" >"$stamp"
say "built ${#sources[@]} modules into $out"
