#!/bin/bash
# Whole-process compute twins: native vs `warden run` (no epochs) vs `warden run --epochs`,
# interleaved, ROUNDS times (default 5), each a whole process; prints the label, the
# instructions:u count (where the machine has the counter) and task-clock (ms of CPU, all
# threads) from `perf stat`. Run from the repository root after
# `cargo build --release -p warden-cli` and a test build (which builds the twins).
W=${W:-target/release/warden}
N=${N:-target/guests/twins/bench-twins}
M=${M:-target/guests/wasm32-wasip1/twins/bench-twins.wasm}
ROUNDS=${ROUNDS:-5}
export WARDEN_CACHE_DIR=${TMPDIR:-/tmp}/warden-compute-cache
mkdir -p $WARDEN_CACHE_DIR
one() { # label cmd...
  perf stat -x, -e instructions:u -e task-clock -o ${TMPDIR:-/tmp}/warden-perf.$$ "${@:2}" >/dev/null 2>&1
  ins=$(grep instructions ${TMPDIR:-/tmp}/warden-perf.$$ | cut -d, -f1); tc=$(grep task-clock ${TMPDIR:-/tmp}/warden-perf.$$ | cut -d, -f1)
  echo "$1 $ins $tc"
}
for spec in "sha256 1 100" "sha256 16 6" "json 30" "regex 10"; do
  set -- $spec
  $W run $M -- $spec >/dev/null; $W run --epochs $M -- $spec >/dev/null
  for r in $(seq $ROUNDS); do
    one "native|$spec" $N $spec
    one "noepoch|$spec" $W run $M -- $spec
    one "epoch|$spec" $W run --epochs $M -- $spec
  done
done
