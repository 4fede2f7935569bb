#!/usr/bin/env bash
# Two `warden` binaries side by side (BENCHMARKS.md, "warden serve"): each serves a no-op
# identity alone; rounds alternate A B A B, each a 2 s warm-up then 10 s of wrk with 32
# keep-alive connections on loopback. Needs wrk.
#
#   benches/serve-ab.sh OLD_WARDEN NEW_WARDEN [ROUNDS]
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
python3 - "$dir" <<'PY'
import sys
head = bytes([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0,
              7, 10, 1, 6]) + b"_start" + bytes([0, 0])
open(f"{sys.argv[1]}/noop.wasm", "wb").write(head + bytes([10, 4, 1, 2, 0, 0x0b]))
PY
printf '[identity]\nname = "noop"\n\n[workload]\nmodule = "%s/noop.wasm"\n' "$dir" > "$dir/noop.toml"
echo 'wrk.method = "POST"' > "$dir/post.lua"
for round in $(seq "$rounds"); do
  for side in A B; do
    bin=$a; [ "$side" = B ] && bin=$b
    "$bin" serve --listen 127.0.0.1:0 --audit "$dir/audit.jsonl" --manifest "$dir/noop.toml" \
      > "$dir/out" 2> "$dir/err" &
    pid=$!
    for _ in $(seq 100); do grep -q serving "$dir/out" 2>/dev/null && break; sleep 0.1; done
    addr=$(grep -o 'http://[^ ]*' "$dir/out")
    wrk -t1 -c4 -d2s -s "$dir/post.lua" "$addr/v1/workloads/noop/runs" > /dev/null
    r=$(wrk -t2 -c32 -d10s --latency -s "$dir/post.lua" "$addr/v1/workloads/noop/runs")
    echo "round $round $side: $(echo "$r" | grep Requests/sec)" \
      "p50 $(echo "$r" | awk '$1=="50%"{print $2}') p99 $(echo "$r" | awk '$1=="99%"{print $2}')" \
      "load $(cut -d' ' -f1 /proc/loadavg)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$dir/audit.jsonl"
  done
done
