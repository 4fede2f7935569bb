"""warden serve's memory under hostile connections (issue 23: the front door).

    python3 benches/serve-front-memory.py WARDEN HELLO.wasm [EXTRA SERVE FLAGS...]

Starts `warden serve` (the flags below, then EXTRA), reads its resident memory (VmRSS) idle,
with 1,000 idle connections, then with 200 connections that each send 4 MiB - 1 byte of a
4 MiB run body and hold it. Needs `ulimit -n` of at least 1,500 in the calling shell.
"""
import socket, subprocess, time, os, sys, tempfile
warden = sys.argv[1]
extra = sys.argv[3:]
d = tempfile.mkdtemp()
m = os.path.join(d, "hello.warden.toml")
open(m, "w").write('[identity]\nname = "hello"\n\n[workload]\nmodule = "%s"\n\n[stdio]\nstdin = "inherit"\n' % sys.argv[2])
p = subprocess.Popen([warden, "serve", "--listen", "127.0.0.1:0", "--manifest", m, "--max-connections", "2000",
                      "--idle-timeout", "600s", "--header-timeout", "600s", "--cpu-groups", "off"] + extra,
                     stdout=subprocess.PIPE, stderr=None, text=True)
line = p.stdout.readline()
if not line:
    print("warden serve did not start: exit", p.wait())
    sys.exit(1)
addr = line.strip().rsplit("http://", 1)[1]
host, port = addr.rsplit(":", 1); port = int(port)
def rss():
    for l in open("/proc/%d/status" % p.pid):
        if l.startswith("VmRSS"): return int(l.split()[1])
time.sleep(0.5)
base = rss()
idle = [socket.create_connection((host, port)) for _ in range(1000)]
time.sleep(1.0)
r_idle = rss()
for s in idle: s.close()
time.sleep(0.5)
bodies = []
part = b"x" * ((4 << 20) - 1)
for _ in range(200):
    s = socket.create_connection((host, port))
    s.settimeout(2.0)
    try:
        s.sendall(b"POST /v1/workloads/hello/runs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 << 20))
        s.sendall(part)
    except (socket.timeout, OSError):
        pass  # refused (503) and no longer read: the server holds none of it
    bodies.append(s)
time.sleep(2.0)
r_body = rss()
print("base %d KiB; 1000 idle: %d KiB (+%.1f KiB each); 200 held 4 MiB bodies: %d KiB (+%.1f MiB each)" % (
    base, r_idle, (r_idle - base) / 1000.0, r_body, (r_body - base) / 200.0 / 1024))
for s in bodies: s.close()
p.terminate(); p.wait()
