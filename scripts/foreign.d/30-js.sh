# JavaScript guests (run by scripts/foreign, with the repository root as $1 and the absolute
# output root, target/foreign, as $2): installs the pinned componentize-js and jco into
# sdk/js/node_modules (`npm ci` from sdk/js/package-lock.json), writes the WIT they build
# against (scripts/js-wit) into $2/js/wit, and builds each guests-js/NAME/main.js into
# $2/js/NAME.wasm, after type-checking it against the SDK's typings. A guest is rebuilt only when the hash of its inputs (its folder, the SDK's
# sources, the WIT and the lock file) changed; the hash is kept in $2/js/NAME.wasm.stamp.
#
# Without node or npm it installs Debian's nodejs and npm (as root); under CI=true a tool
# that cannot be installed fails the step, elsewhere the step says so and builds nothing
# (the tests that need the guests then fail, saying what is missing).
root=$1
out=$2/js
cd "$root"
mkdir -p "$out"

# give_up MESSAGE: fatal under CI, a loud warning elsewhere.
give_up() {
  if [ "${CI:-}" = true ]; then
    echo "foreign/js: $1" >&2
    exit 1
  fi
  echo "foreign/js: WARNING: $1; the JavaScript guests are not built" >&2
  exit 0
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y nodejs npm >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y nodejs npm >/dev/null 2>&1; } ||
      give_up "could not install nodejs and npm (apt-get install nodejs npm)"
  else
    give_up "node and npm are missing (a Debian package: apt-get install nodejs npm, as root)"
  fi
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    give_up "node or npm is still not on PATH after apt-get install nodejs npm"
fi
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || give_up "node $(node --version) is too old: componentize-js needs node 18 or later"

# The tools, as the lock file pins them. The stamp holds the lock file's hash.
sdk=sdk/js
lock_hash=$(sha256sum "$sdk/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$sdk/node_modules/.warden-stamp" 2>/dev/null)" != "$lock_hash" ]; then
  echo "foreign/js: npm ci in $sdk" >&2
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
    give_up "npm ci in $sdk failed"
  echo "$lock_hash" >"$sdk/node_modules/.warden-stamp"
fi
componentize=$sdk/node_modules/@bytecodealliance/componentize-js/src/cli.js
[ -f "$componentize" ] || give_up "$componentize is missing after npm ci"

# The WIT: warden:host plus the WASI packages of the pinned wasmtime-wasi.
scripts/js-wit "$out/wit.new"
rm -rf "$out/wit" && mv "$out/wit.new" "$out/wit"
wit_hash=$(cd "$out/wit" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)

shopt -s nullglob
for dir in guests-js/*/; do
  name=$(basename "$dir")
  entry=$dir/main.js
  [ -f "$entry" ] || { echo "foreign/js: $dir has no main.js" >&2; exit 1; }
  wasm=$out/$name.wasm
  hash=$({
    echo "$lock_hash $wit_hash"
    find "$dir" "$sdk" -path "$sdk/node_modules" -prune -o -type f -name '*.[jt]s' -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1)
  if [ -f "$wasm" ] && [ "$(cat "$wasm.stamp" 2>/dev/null)" = "$hash" ]; then
    continue
  fi
  start=$SECONDS
  # Its calls into the SDK and warden:host checked against their typings (index.d.ts,
  # warden-host.d.ts) with the TypeScript compiler the lock file pins.
  "$sdk/node_modules/.bin/tsc" --noEmit --allowJs --checkJs --strict false --lib es2022,dom \
    --target es2022 --module nodenext --moduleResolution nodenext --types "" \
    "$entry" "$sdk/warden-host.d.ts" >&2 ||
    { echo "foreign/js: $entry does not type-check against the SDK (above)" >&2; exit 1; }
  # From the repository root: componentize-js maps the working directory into the engine
  # while it evaluates the module, so relative imports (../../sdk/js/index.js) resolve.
  node "$componentize" "$entry" --wit "$out/wit" --world-name connector -o "$wasm.tmp" >&2
  mv "$wasm.tmp" "$wasm"
  echo "$hash" >"$wasm.stamp"
  echo "foreign/js: built $wasm ($(stat -c %s "$wasm") bytes) in $((SECONDS - start)) s" >&2
done
