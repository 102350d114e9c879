#!/usr/bin/env python3
"""bench/py/redis_bench.py - the Redis tier's measurements that wrk cannot make.

  redis_bench.py propagation A_URL B_URL N
      N times: make B hold /bus/<i> (a hit), PUT it through A, and from the
      moment A answers, poll B until its answer is no longer a hit (the bus
      dropped B's copy). Prints p50/p99/max of that delay in ms.

  redis_bench.py outage URL SECONDS REDIS_PID
      Load on URL (8 keep-alive clients, every request a new key: each one
      asks Redis, then the origin) for SECONDS, Redis stopped (SIGSTOP: the
      worst case, it answers nothing) for the middle third. Prints p50/p99/max
      per phase (before, during, after) and the errors seen.

One JSON object on stdout. Every client talks to 127.0.0.1 only.
"""
import http.client
import json
import os
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

HOST = {"Host": "api.bench"}


class Conn:
    """A keep-alive connection that opens a new one when the server closed it."""

    def __init__(self, url):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.c = None

    def ask(self, method, path, body=None):
        for attempt in (1, 2):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.c.request(method, path, body=body, headers=HOST)
                r = self.c.getresponse()
                r.read()
                if r.will_close:
                    self.close()
                return r.status, r.getheader("Cache-Status") or ""
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c is not None:
            self.c.close()
        self.c = None


def conn_for(url):
    return Conn(url)


def ask(c, method, path, body=None):
    return c.ask(method, path, body)


def pct(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p * len(v)))], 3) if v else None


def propagation(a_url, b_url, n):
    a, b = conn_for(a_url), conn_for(b_url)
    delays, polls = [], []
    for i in range(n):
        path = f"/bus/{i}"
        ask(b, "GET", path)
        st, cs = ask(b, "GET", path)
        if "hit" not in cs:
            raise SystemExit(f"B does not hold {path} after two GETs: {cs!r}")
        ask(a, "PUT", path, body=b"")
        t0 = time.perf_counter()
        k = 0
        while True:
            k += 1
            st, cs = ask(b, "GET", path)
            if "hit" not in cs.split(";")[1]:
                break
            if time.perf_counter() - t0 > 5:
                raise SystemExit(f"B still answers {path} from its cache 5 s after the write")
        delays.append((time.perf_counter() - t0) * 1000)
        polls.append(k)
    return {"writes": n, "p50_ms": pct(delays, 0.5), "p99_ms": pct(delays, 0.99),
            "max_ms": round(max(delays), 3), "mean_polls": round(sum(polls) / n, 1)}


def outage(url, seconds, redis_pid):
    stop = threading.Event()
    lat = []  # (t, ms, ok)
    lock = threading.Lock()
    t_start = time.perf_counter()

    def client(k):
        c = conn_for(url)
        i = 0
        while not stop.is_set():
            i += 1
            t = time.perf_counter()
            try:
                st, _ = ask(c, "GET", f"/outage/{k}-{i}")
                ok = st == 200
            except OSError:
                ok = False
                c.close()
            with lock:
                lat.append((t - t_start, (time.perf_counter() - t) * 1000, ok))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    third = seconds / 3
    time.sleep(third)
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        time.sleep(third)
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    time.sleep(third)
    stop.set()
    for t in threads:
        t.join(15)
    out = {}
    for name, lo, hi in (("before", 0, third), ("during", third, 2 * third),
                         ("after", 2 * third, 3 * third + 60)):
        ms = [m for (t, m, ok) in lat if lo <= t < hi]
        out[name] = {"requests": len(ms), "p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99),
                     "max_ms": round(max(ms), 3) if ms else None,
                     "errors": sum(1 for (t, m, ok) in lat if lo <= t < hi and not ok)}
    return out


def main():
    mode = sys.argv[1]
    if mode == "propagation":
        r = propagation(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "outage":
        r = outage(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
