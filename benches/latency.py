#!/usr/bin/env python3
"""Latency of POST runs over keep-alive connections, for benches/serve.sh.

wrk's latency figures stop adding up when its own thread competes for the CPU (a mean that,
times the request count, exceeds the connections' total time), so the well-behaved
identity's latency is measured here: CONNS processes, each one keep-alive connection, each
request timed with the monotonic clock from just before it is sent to its last byte.

    latency.py URL SECONDS [CONNS]     # prints count, rate, p50, p90, p99, max
"""
import http.client
import multiprocessing
import sys
import time
import urllib.parse


def one(url, seconds, out):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    path = u.path + (("?" + u.query) if u.query else "")
    samples, errors = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter_ns()
        conn.request("POST", path, body=b"", headers={"Content-Length": "0"})
        r = conn.getresponse()
        r.read()
        samples.append(time.perf_counter_ns() - t0)
        if r.status != 200:
            errors += 1
    out.put((samples, errors))


def main():
    url, seconds = sys.argv[1], float(sys.argv[2])
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=one, args=(url, seconds, q)) for _ in range(conns)]
    for p in procs:
        p.start()
    samples, errors = [], 0
    for _ in procs:
        s, e = q.get()
        samples += s
        errors += e
    for p in procs:
        p.join()
    samples.sort()
    n = len(samples)
    pct = lambda p: samples[min(n - 1, int(p / 100 * n))] / 1e6
    print(f"  {n} requests ({n / seconds:.0f}/s, {errors} not 200); latency ms: "
          f"p50 {pct(50):.3f}  p90 {pct(90):.3f}  p99 {pct(99):.3f}  max {samples[-1] / 1e6:.3f}")


if __name__ == "__main__":
    main()
