"""`warden check --against` on large audit logs (issue 23: roughly linear in the log's size).

    python3 benches/check-against.py WARDEN [RECORDS ...]     (default: 10000 100000 1000000)

Writes, for each size, an audit log of that many records of one identity in runs of 1,000
records each, written as warden writes them (typed: `op`, `grant`, the exit record's `usage`):
per run a start record, 700 refused file operations of which 600 have targets no other record
shares (the worst case for grouping refusals: as many groups as refusals), 200 allowed HTTP
requests, 98 allowed connections and an exit record. Then times `warden check
MANIFEST --against LOG --json` three times and prints the median wall time, the peak resident
memory, and the time per million records. The logs are written to a private temporary folder
and removed afterwards.

With SHARED_TARGETS=1 every run's refusals name the same 700 targets instead (700 refusal
groups in all, the usual case): what the reader holds is then the groups, not the records.
"""
import json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

warden = sys.argv[1]
sizes = [int(n) for n in sys.argv[2:]] or [10_000, 100_000, 1_000_000]
shared = os.environ.get("SHARED_TARGETS") == "1"
ID = "spiffe://example.test/bench/check-against"
d = tempfile.mkdtemp(prefix="warden-check-bench-")
manifest = os.path.join(d, "m.warden.toml")
with open(manifest, "w") as f:
    f.write(f'''[identity]
name = "bench"
id = "{ID}"

[[files]]
host = "{d}"
guest = "/data"
access = "read"

[network]
connect = ["127.0.0.1:8080"]

[[http]]
url = "http://127.0.0.1:8080/v1/"
methods = ["GET", "POST"]
''')


def write_log(path, records):
    ts = "2026-12-07T12:00:00.000Z"
    with open(path, "w") as f:
        n = 0
        run = 0
        while n < records:
            r = f"run-{run:08d}"
            def rec(event, **kw):
                nonlocal n
                if n >= records:
                    return
                f.write(json.dumps({"ts": ts, "event": event, "identity": ID, "run": r, **kw}) + "\n")
                n += 1
            rec("start", name="bench", module="m.wasm", sha256="0" * 64, kind="module",
                manifest="m.warden.toml", grants={}, seccomp={"mode": "enforce"})
            for i in range(700):
                target = f"/data/run{run}/file{i}" if i < 600 and not shared else f"/data/common/{i}"
                rec("decision", capability="fs", target=target, decision="deny", op="path_open",
                    access="write", reason="path_open: EPERM")
            for i in range(200):
                method = "GET" if i % 2 else "POST"
                rec("decision", capability="http", target=f"{method} http://127.0.0.1:8080/v1/items/{i}",
                    decision="allow", op="request", grant="http://127.0.0.1:8080/v1/",
                    reason=f"[[http]] http://127.0.0.1:8080/v1/ {method} (address 127.0.0.1:8080)")
            for i in range(98):
                rec("decision", capability="net", target="127.0.0.1:8080", decision="allow",
                    op="connect", grant="127.0.0.1:8080", reason='TcpConnect: connect entry "127.0.0.1:8080"')
            rec("exit", outcome="exited", code=0, message=None, wall_ms=12, fuel_used=None,
                peak_memory=1 << 20, output_bytes=0, egress_bytes=4096,
                usage={"files": [{"guest": "/data", "reads": 100, "writes": 0, "creates": 0,
                                  "deletes": 0}], "env": False, "wall_clock": False,
                       "monotonic_clock": False, "random": False, "stdin": False})
            run += 1


def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if p.returncode not in (0, 1):
        sys.exit(f"warden check failed ({p.returncode}): {p.stderr.decode()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before), p.stdout


try:
    print(f"{'records':>10} {'log MB':>8} {'median s':>9} {'s per 1M':>9} {'peak RSS MB':>12}")
    for records in sizes:
        log = os.path.join(d, f"audit-{records}.jsonl")
        write_log(log, records)
        runs = [timed([warden, "check", manifest, "--against", log, "--json"]) for _ in range(3)]
        walls = [w for w, _, _ in runs]
        out = json.loads(runs[0][2])
        assert out["records"] == records, (out["records"], records)
        assert out["runs"] == (records + 999) // 1000, out["runs"]
        med = statistics.median(walls)
        mb = os.path.getsize(log) / 1e6
        print(f"{records:>10} {mb:>8.1f} {med:>9.2f} {med / records * 1e6:>9.2f} {runs[-1][1] / 1024:>12.0f}")
        os.remove(log)
finally:
    shutil.rmtree(d, ignore_errors=True)
