#!/usr/bin/env bash
# Live instances in one `warden serve` worker (BENCHMARKS.md, "warden serve", density): N
# clients each ask for a run of net-probe (a small wasip2 connector) that makes one HTTP
# request to an upstream which holds every request until all N have arrived. At that moment
# N instances are live in the one worker process; its memory is read from /proc, then the
# upstream answers them all and every run's answer and exit record are counted.
#
#   benches/serve-density.sh [N]     # default 10000; WARDEN, GUESTS_P2 override
#
# Needs a release build, the guests (built by the test suite into target/guests), python3,
# an open-file limit of N plus some per process (`ulimit -n`; each of the upstream, the
# worker, the server and the client holds N sockets) and, past about 5,400 runs,
# `sysctl -w vm.max_map_count=262144` (a worker refuses to start with more runs than the
# host's mapping limit allows).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
WARDEN=${WARDEN:-target/release/warden}
GUESTS_P2=${GUESTS_P2:-target/guests/wasm32-wasip2/release}
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

# The upstream: holds each request until N are held (or the release file appears), then
# answers them all.
cat > "$dir/upstream.py" <<'PY'
import asyncio, os, sys
n, release = int(sys.argv[1]), sys.argv[2]
held = 0
everyone = asyncio.Event()
async def handle(r, w):
    global held
    try:
        while (await r.readline()) not in (b"\r\n", b"\n", b""):
            pass
        held += 1
        if held >= n:
            everyone.set()
        while not everyone.is_set() and not os.path.exists(release):
            try:
                await asyncio.wait_for(everyone.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await w.drain()
    finally:
        w.close()
async def report():
    while True:
        print(f"held {held}", flush=True)
        await asyncio.sleep(0.5)
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(f"port {srv.sockets[0].getsockname()[1]}", flush=True)
    asyncio.ensure_future(report())
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY
# The clients: N connections, one run request each, all sent at once; counts the outcomes.
cat > "$dir/client.py" <<'PY'
import asyncio, collections, json, sys
addr, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = addr.rsplit(":", 1)
async def one():
    for attempt in range(50):
        try:
            r, w = await asyncio.open_connection(host, int(port))
            break
        except OSError:
            await asyncio.sleep(0.1)
    w.write(f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        v = json.loads(body)
        return f"{head.split()[1].decode()} {v.get('outcome')} {v.get('stdout', '').strip()}"
    except Exception:
        return head[:40].decode(errors="replace")
async def main():
    got = await asyncio.gather(*(one() for _ in range(n)))
    for k, c in collections.Counter(got).most_common():
        print(f"  {c} x {k}")
asyncio.run(main())
PY

python3 "$dir/upstream.py" "$N" "$dir/release" > "$dir/upstream.out" &
pids+=($!)
for _ in $(seq 100); do grep -q port "$dir/upstream.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/^port/ {print $2}' "$dir/upstream.out")
printf '[identity]\nname = "probe"\n\n[workload]\nmodule = "%s"\n\n[[http]]\nurl = "http://127.0.0.1:%s/"\nmethods = ["GET"]\n\n[limits]\nwall = "300s"\n' \
  "$(realpath "$GUESTS_P2/net-probe.wasm")" "$port" > "$dir/probe.toml"
"$WARDEN" serve --listen 127.0.0.1:0 --audit "$dir/audit.jsonl" --max-workers 1 \
  --runs-per-worker "$N" --queue "$N" -m "$dir/probe.toml" > "$dir/out" 2> "$dir/err" &
server=$!
pids+=("$server")
for _ in $(seq 600); do grep -q serving "$dir/out" 2>/dev/null && break; sleep 0.1; done
grep -q serving "$dir/out" || { cat "$dir/err"; exit 1; }
addr=$(grep -o 'http://[^ ]*' "$dir/out" | sed 's|http://||')
worker=$(cat /proc/"$server"/task/*/children | tr ' ' '\n' | grep . | head -1)
mem() { # pid: RSS and PSS in KiB, and threads
  awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {printf "%d %d", r, p}' /proc/"$1"/smaps_rollup
  echo " $(ls /proc/"$1"/task | wc -l)"
}
read -r rss0 pss0 threads0 < <(mem "$worker")
echo "worker $worker loaded, idle: RSS $((rss0 / 1024)) MiB, PSS $((pss0 / 1024)) MiB, $threads0 threads ($(nproc) cores, $("$WARDEN" --version))"
started=$(date +%s.%N)
python3 "$dir/client.py" "$addr" "$N" "/v1/workloads/probe/runs?arg=http%20GET%20http%3A%2F%2F127.0.0.1%3A$port%2Fhold" > "$dir/client.out" &
client=$!
pids+=("$client")
# Wait until the upstream holds all N (every run live in the worker), or give up after 10 min.
for _ in $(seq 6000); do
  held=$(awk '/^held/ {h=$2} END {print h+0}' "$dir/upstream.out")
  [ "$held" -ge "$N" ] && break
  sleep 0.1
done
read -r rss1 pss1 threads1 < <(mem "$worker")
live=$(awk '/^held/ {h=$2} END {print h+0}' "$dir/upstream.out")
echo "live runs held at once: $live of $N after $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $started}") s"
echo "worker with them live: RSS $((rss1 / 1024)) MiB, PSS $((pss1 / 1024)) MiB, $threads1 threads"
echo "per live instance: $(((pss1 - pss0) / live)) KiB (PSS), $(((rss1 - rss0) / live)) KiB (RSS)"
touch "$dir/release"
wait "$client"
echo "answers:"; cat "$dir/client.out"
echo "exit records in the audit log: $(grep -c '"event":"exit"' "$dir/audit.jsonl" || true)"
kill -TERM "$server"; wait "$server"; echo "server exit code: $?"
