#!/usr/bin/env bash
# The host filter's cost (BENCHMARKS.md, "Host lockdown: the seccomp filter's cost"): the
# readmany twin (open, read to the end, close a small granted file, READS times) under
# `--seccomp off` and `enforce`, for one or two warden binaries (e.g. before and after a
# change to host-seccomp), interleaved.
#
# 1. time: ROUNDS rounds, each running every configuration once in an order rotated by one
#    per round; medians of wall time and of the process's user + system CPU time.
# 2. profile: three `perf record -e cpu-clock` runs per configuration (READS_PROFILE reads);
#    the share of samples in JIT-ed BPF (kernel addresses 0xffffffffc0…) and in seccomp's
#    entry path. For machines without hardware counters (`perf stat -e instructions` says
#    <not supported> in a KVM guest without a PMU).
#
#   benches/seccomp.sh NEW [OLD]    # release binaries; ROUNDS, READS, READS_PROFILE override
# Needs the twins (target/guests/wasm32-wasip1/twins/bench-twins.wasm, built with the tests),
# python3 and perf.
set -euo pipefail
NEW=$(realpath "$1")
OLD=$(realpath "${2:-$1}")
TWINS=$(realpath "${TWINS:-target/guests/wasm32-wasip1/twins/bench-twins.wasm}")
ROUNDS=${ROUNDS:-80}
READS=${READS:-20000}
READS_PROFILE=${READS_PROFILE:-100000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
mkdir "$DIR/data"
python3 -c "import sys; open(sys.argv[1], 'w').write('warden bench: a small file, read many times\n' * 24)" \
  "$DIR/data/small.txt"
printf '[identity]\nname = "bench-readmany"\n\n[[files]]\nhost = "data"\nguest = "/data"\naccess = "read"\n' \
  > "$DIR/readmany.warden.toml"
export WARDEN_CACHE_DIR="$DIR/cache"
cd "$DIR"
uptime

python3 - "$ROUNDS" "$READS" "$TWINS" "off=$NEW:off" "enforce-old=$OLD:enforce" \
  "enforce-new=$NEW:enforce" <<'EOF'
import os, statistics, subprocess, sys, time
rounds, reads, twins = int(sys.argv[1]), sys.argv[2], sys.argv[3]
configs = [(s.split("=", 1)[0], *s.split("=", 1)[1].rsplit(":", 1)) for s in sys.argv[4:]]
def run(binary, mode):
    argv = [binary, "run", "--manifest", "readmany.warden.toml", "--seccomp", mode, twins,
            "--", "readmany", "/data/small.txt", reads]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{argv}: status {status}")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime
for _, b, m in configs:  # fills the cache, faults the binaries in
    run(b, m); run(b, m)
wall = {c[0]: [] for c in configs}; cpu = {c[0]: [] for c in configs}
for r in range(rounds):
    k = r % len(configs)
    for name, b, m in configs[k:] + configs[:k]:
        w, c = run(b, m); wall[name].append(w); cpu[name].append(c)
bw, bc = statistics.median(wall["off"]), statistics.median(cpu["off"])
for name, _, _ in configs:
    w, c = statistics.median(wall[name]), statistics.median(cpu[name])
    print(f"{name:<12} wall median {w*1e3:7.1f} ms ({(w/bw-1)*100:+5.1f}%)  "
          f"cpu median {c*1e3:7.1f} ms ({(c/bc-1)*100:+5.1f}%)  n={len(wall[name])}")
EOF
uptime

for _ in 1 2 3; do
  for cfg in "off $NEW off" "enforce-old $OLD enforce" "enforce-new $NEW enforce"; do
    set -- $cfg
    perf record -q -e cpu-clock -F 10000 -o p.data -- "$2" run --manifest readmany.warden.toml \
      --seccomp "$3" "$TWINS" -- readmany /data/small.txt "$READS_PROFILE" > /dev/null 2>&1
    perf report -i p.data --stdio --sort dso,sym 2> /dev/null | awk -v n="$1" '
      /\[k\] 0xffffffffc0/ { jit += $1 }
      /__seccomp_filter|populate_seccomp_data|syscall_trace_enter|__secure_computing/ { sc += $1 }
      END { printf "%-12s JIT-ed BPF %5.2f%%  seccomp entry %5.2f%%  total %5.2f%%\n", n, jit, sc, jit + sc }'
  done
done
