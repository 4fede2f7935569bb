#!/usr/bin/env bash
# Python guests, built with componentize-py against warden's WIT package (wit/) and the
# Python SDK (sdk/python): each guests/python/NAME/app.py becomes $2/python/NAME.wasm.
#
# componentize-py is installed at the pinned version, with the SDK, into a virtual
# environment under $2/python/venv (made with the machine's python3, 3.11 or newer). A guest
# is rebuilt only when the hash of its inputs (its folder, the SDK, wit/, this script and the
# pinned version) changed. Under CI=true a missing Python or a failed install is fatal;
# elsewhere it is a warning and the Python tests say what is missing.
#
#   bash scripts/foreign.d/20-python.sh REPO OUT
set -euo pipefail
repo=$1
out=$2/python
COMPONENTIZE_PY_VERSION=0.25.1

fail() {
  if [ "${CI:-}" = true ]; then
    echo "python: $*" >&2
    exit 1
  fi
  echo "python: $* (the Python guests are not built; their tests will fail and say so)" >&2
  exit 0
}

mkdir -p "$out"
python=$(command -v python3 || true)
[ -n "$python" ] || fail "python3 not found (apt-get install python3 python3-venv)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "componentize-py's SDK needs Python 3.11 or newer, found $("$python" --version 2>&1)"

venv=$out/venv
cpy=$venv/bin/componentize-py
sdk_hash=$(cd "$repo" && find sdk/python -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' \
  -not -path 'sdk/python/build/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64)
tools_stamp=$venv/.warden-tools
want_tools="componentize-py==$COMPONENTIZE_PY_VERSION sdk=$sdk_hash"
if [ ! -x "$cpy" ] || [ "$(cat "$tools_stamp" 2>/dev/null)" != "$want_tools" ]; then
  echo "python: installing componentize-py $COMPONENTIZE_PY_VERSION and sdk/python into $venv" >&2
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2 ||
      { rm -rf "$venv"; fail "could not make a virtual environment (apt-get install python3-venv)"; }
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "componentize-py==$COMPONENTIZE_PY_VERSION" >&2 || fail "could not install componentize-py $COMPONENTIZE_PY_VERSION"
  # Not editable: the build uses the SDK as a user's `pip install ./sdk/python` gets it. From
  # a copy, so that pip's build folders do not land in the source tree.
  rm -rf "$out/sdk-src" && cp -R "$repo/sdk/python" "$out/sdk-src"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps "$out/sdk-src" >&2 || fail "could not install sdk/python"
  echo "$want_tools" >"$tools_stamp"
fi

for dir in "$repo"/guests/python/*/; do
  [ -f "$dir/app.py" ] || continue
  name=$(basename "$dir")
  wasm=$out/$name.wasm
  stamp=$out/$name.stamp
  hash=$( { echo "$want_tools"; sha256sum "$0";
            (cd "$repo" && find "guests/python/$name" wit -type f -not -path '*/__pycache__/*' |
               LC_ALL=C sort | xargs sha256sum); } | sha256sum | cut -c1-64)
  if [ -f "$wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    continue
  fi
  echo "python: building $name" >&2
  rm -f "$stamp"
  start=$SECONDS
  (cd "$dir" && VIRTUAL_ENV=$venv "$cpy" -d "$repo/wit" -w connector componentize app -o "$wasm.tmp" >&2) ||
    { rm -f "$wasm.tmp"; fail "componentize-py could not build $name"; }
  mv "$wasm.tmp" "$wasm"
  echo "$hash" >"$stamp"
  echo "python: built $name.wasm ($(du -h "$wasm" | cut -f1)) in $((SECONDS - start)) s" >&2
done
