"""What `warden learn`'s per-operation record costs (issue 23: the recording bound).

    python3 benches/learn-recording.py WARDEN FS.wasm [N ...]     (default: 100 1000 4000)

For each N, makes N files and runs the `fs` guest (guests/fs, preview 1) statting each once,
three times under `warden learn` (every distinct allowed file operation recorded, up to the
bound) and three times under `warden run --audit` (refusals only, the same grants). Prints the
median wall time of each, their difference per operation, and the peak resident memory of
the learning runs. N above the bound measures the bound's own
path (nothing more recorded past it).
"""
import os, resource, shutil, statistics, subprocess, sys, tempfile, time

warden, module = sys.argv[1], sys.argv[2]
sizes = [int(n) for n in sys.argv[3:]] or [100, 1000, 4000]
d = tempfile.mkdtemp(prefix="warden-learn-bench-")


def timed(cmd):
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{cmd[1]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


try:
    print(f"{'ops':>7} {'learn s':>8} {'run s':>7} {'us/op':>7} {'peak RSS MB':>12}")
    for n in sizes:
        data = os.path.join(d, f"data{n}")
        os.mkdir(data)
        for i in range(n):
            open(os.path.join(data, f"f{i}.txt"), "w").write("x")
        broad = os.path.join(d, f"broad{n}.toml")
        open(broad, "w").write(f'[identity]\nname = "bench"\n\n[[files]]\nhost = "{data}"\n'
                               f'guest = "/data"\naccess = "read"\n')
        argv = ["seq"] + [f"stat /data/f{i}.txt" for i in range(n)]
        out = os.path.join(d, f"learned{n}.toml")
        learns = [timed([warden, "learn", "--manifest", broad, "--out", out, module, "--"] + argv)
                  for _ in range(3)]
        runs = [timed([warden, "run", "--manifest", broad, "--audit", os.path.join(d, "run.jsonl"),
                       module, "--"] + argv) for _ in range(3)]
        lw = statistics.median(w for w, _ in learns)
        rw = statistics.median(w for w, _ in runs)
        print(f"{n:>7} {lw:>8.3f} {rw:>7.3f} {(lw - rw) / n * 1e6:>7.1f} {learns[-1][1] / 1024:>12.0f}")
finally:
    shutil.rmtree(d, ignore_errors=True)
