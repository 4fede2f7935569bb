#!/usr/bin/env bash
# `warden serve` at full size (BENCHMARKS.md, "warden serve"): runs per second of a no-op
# connector with keep-alive clients on loopback, and a well-behaved identity's latency
# unloaded and while 1,000 hostile runs (memory bombs, spin loops, output floods, traps,
# secret exfiltration attempts) hammer its neighbours. Needs wrk (apt-get install wrk), a
# release build (cargo build --release -p warden-cli --bin warden) and the guests
# (built by the test suite into target/guests).
#
#   benches/serve.sh            # WARDEN, GUESTS, DUR, CONNS override the defaults below
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN=${WARDEN:-target/release/warden}
GUESTS=${GUESTS:-target/guests/wasm32-wasip1/release}
GUESTS_P2=${GUESTS_P2:-target/guests/wasm32-wasip2/release}
DUR=${DUR:-10s}
CONNS=${CONNS:-32}
# How long the well-behaved identity is measured, unloaded and under the hostile load; the
# hostile client runs for as long, and its request count is printed (goal: at least 1,000).
WINDOW=${WINDOW:-10s}
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
head = bytes([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0,
              7, 10, 1, 6]) + b"_start" + bytes([0, 0])
open(f"{d}/noop.wasm", "wb").write(head + bytes([10, 4, 1, 2, 0, 0x0b]))
# The same with `unreachable` as its body: a trap on every run.
open(f"{d}/trap.wasm", "wb").write(head + bytes([10, 5, 1, 3, 0, 0x00, 0x0b]))
PY
m() { # name module body
  printf '[identity]\nname = "%s"\n\n[workload]\nmodule = "%s"\n\n%b' "$1" "$(realpath "$2")" "${3:-}" \
    > "$dir/$1.toml"
}
m noop "$dir/noop.wasm"
m good "$GUESTS/hello.wasm"
m membomb "$GUESTS/membomb.wasm" '[limits]\nmemory = "32MiB"\n'
m spin "$GUESTS/spin.wasm" '[limits]\nwall = "100ms"\n'
m flood "$GUESTS/flood.wasm" '[limits]\noutput = "256KiB"\n'
m trap "$dir/trap.wasm"
m exfil "$GUESTS_P2/net-probe.wasm" '[[http]]\nurl = "http://127.0.0.1:9/v1/"\n\n[secrets.api]\nfrom = "env:BENCH_API_KEY"\ninject = { header = "Authorization", format = "Bearer {secret}", url = "http://127.0.0.1:9/v1/" }\n'

# SERVE_FLAGS: more `warden serve` options, e.g. "--max-workers 1".
# shellcheck disable=SC2086
BENCH_API_KEY=sk_bench_secret "$WARDEN" serve --listen 127.0.0.1:0 --audit "$dir/audit.jsonl" ${SERVE_FLAGS:-} \
  $(for n in noop good membomb spin flood trap exfil; do echo --manifest "$dir/$n.toml"; done) \
  > "$dir/out" 2> "$dir/err" &
server=$!
for _ in $(seq 600); do grep -q serving "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http://[^ ]*' "$dir/out")
echo "server: $addr ($(nproc) cores), $("$WARDEN" --version) ${SERVE_FLAGS:-}"

# CLIENTS_CGROUP=1: the load generators (wrk, latency.py) run in a cgroup v1 cpu group of
# their own, weighted as one identity, rather than as threads beside the server: closer to
# clients on other machines, which is how a server is used.
client() {
  if [ -n "${CLIENTS_CGROUP:-}" ]; then
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$clients" "$@"
  else
    "$@"
  fi
}
if [ -n "${CLIENTS_CGROUP:-}" ]; then
  clients=/sys/fs/cgroup/cpu/warden-bench-clients-$$
  mkdir -p "$clients"
  echo "${CLIENTS_SHARES:-1024}" > "$clients/cpu.shares"
  trap 'kill "$server" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"; sleep 0.5; rmdir "$clients" 2>/dev/null || true' EXIT
fi

cat > "$dir/post.lua" <<'LUA'
wrk.method = "POST"
LUA
# HOSTILE: which hostile identities the hostile client rotates over (all five by default).
hostile_paths=""
for h in ${HOSTILE:-membomb spin flood trap exfil}; do
  case $h in
    exfil) p='/v1/workloads/exfil/runs?arg=http-secret%20POST%20http%3A%2F%2F127.0.0.1%3A9%2Fcollect%20api' ;;
    *) p="/v1/workloads/$h/runs" ;;
  esac
  hostile_paths="$hostile_paths  \"$p\",
"
done
cat > "$dir/hostile.lua" <<LUA
local paths = {
$hostile_paths}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", paths[(i % #paths) + 1])
end
LUA

# Warm-up: every worker started and every workload's code cached.
client wrk -t1 -c4 -d2s -s "$dir/post.lua" "$addr/v1/workloads/noop/runs" > /dev/null
echo; echo "== 1. no-op connector: $CONNS keep-alive connections, $DUR"
client wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$dir/post.lua" "$addr/v1/workloads/noop/runs"
echo; echo "== 2. well-behaved identity (hello), unloaded: 2 connections, $WINDOW"
client python3 benches/latency.py "$addr/v1/workloads/good/runs" "${WINDOW%s}" 2
echo; echo "== 3. the same while hostile runs hammer the other identities (8 connections, $WINDOW)"
client wrk -t2 -c8 -d"$WINDOW" -s "$dir/hostile.lua" "$addr/" > "$dir/hostile.txt" &
hostile=$!
client python3 benches/latency.py "$addr/v1/workloads/good/runs" "${WINDOW%s}" 2
wait "$hostile" || echo "(the hostile client exited with $?)"
echo "-- the hostile client, over the same window:"
cat "$dir/hostile.txt"
echo; echo "== server after the load"
curl -s "$addr/healthz"
curl -s "$addr/metrics" | grep -E '^warden_(runs_total|worker_restarts_total|denials_total|rejections_total|workers)' || true
answered=$(curl -s "$addr/metrics" | awk '/^warden_runs_total/ {s += $2} END {print s}')
exits=$(grep -c '"event":"exit"' "$dir/audit.jsonl" || true)
echo "answered runs: $answered; exit records in the audit log: $exits"
grep -c sk_bench_secret "$dir/audit.jsonl" | sed 's/^/audit lines holding the secret: /' || true
kill -TERM "$server"; wait "$server"; echo "server exit code: $?"
