#!/usr/bin/env bash
# What counting a run's grant usage costs (BENCHMARKS.md, "Grant usage in the exit record"):
# the same workloads under two warden binaries, one without the counters and one with them,
# interleaved: the readmany twin (open, read to the end, close a small granted file, READS
# times: every operation passes the counting file wrapper) and the sha256 twin (compute, no
# host calls: the counters should not show). Medians of wall time and of user + system CPU.
#
#   benches/usage-cost.sh NEW OLD     # release binaries; ROUNDS, READS override
# Needs the twins (guests/target/wasm32-wasip1/twins/bench-twins.wasm:
#   cd guests && cargo build --profile twins --target wasm32-wasip1 -p bench-twins).
set -euo pipefail
NEW=$(realpath "$1")
OLD=$(realpath "$2")
TWINS=$(realpath "${TWINS:-guests/target/wasm32-wasip1/twins/bench-twins.wasm}")
ROUNDS=${ROUNDS:-40}
READS=${READS:-20000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
mkdir "$DIR/data"
python3 -c "import sys; open(sys.argv[1], 'w').write('warden bench: a small file, read many times\n' * 24)" \
  "$DIR/data/small.txt"
printf '[identity]\nname = "bench-usage"\n\n[[files]]\nhost = "data"\nguest = "/data"\naccess = "read"\n' \
  > "$DIR/bench.warden.toml"
export WARDEN_CACHE_DIR="$DIR/cache"
cd "$DIR"
uptime
python3 - "$ROUNDS" "$READS" "$TWINS" "$NEW" "$OLD" <<'PY'
import os, statistics, subprocess, sys, time
rounds, reads, twins, new, old = int(sys.argv[1]), sys.argv[2], *sys.argv[3:]
loads = {"readmany": ["readmany", "/data/small.txt", reads], "sha256": ["sha256", "16"]}
def run(binary, load):
    argv = [binary, "run", "--manifest", "bench.warden.toml", twins, "--"] + loads[load]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{argv}: status {status}")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime
configs = [(load, side, b) for load in loads for side, b in (("old", old), ("new", new))]
for _, _, b in configs[:2]:
    run(b, "readmany"); run(b, "sha256")
wall = {c[:2]: [] for c in configs}; cpu = {c[:2]: [] for c in configs}
for r in range(rounds):
    k = r % len(configs)
    for load, side, b in configs[k:] + configs[:k]:
        w, c = run(b, load); wall[(load, side)].append(w); cpu[(load, side)].append(c)
for load in loads:
    ow, oc = statistics.median(wall[(load, "old")]), statistics.median(cpu[(load, "old")])
    nw, nc = statistics.median(wall[(load, "new")]), statistics.median(cpu[(load, "new")])
    print(f"{load:<9} wall {ow*1e3:7.1f} -> {nw*1e3:7.1f} ms ({(nw/ow-1)*100:+5.1f}%)   "
          f"cpu {oc*1e3:7.1f} -> {nc*1e3:7.1f} ms ({(nc/oc-1)*100:+5.1f}%)   ({rounds} rounds)")
PY
