#!/usr/bin/env python3
"""Soak: hours-of-traffic behaviour in minutes. Starts redis-server (AOF always), an origin
(bench/py/soak_origin.py) and strata (2 workers: cache-aside, write-behind and bypass routes,
a fleet rate limit), then drives mixed load for --duration seconds: hits, misses, writes,
purges and 10% bad requests, with the origin restarted every --origin-every seconds and
Redis every --redis-every. Checks at the end:
  - RSS after warm-up is flat: the slope of a least-squares line through the samples of
    the last 80% of the run, in KiB per minute, must stay under --max-slope;
  - no error beyond the injected ones: each answer is classified; a 5xx is allowed only
    while (or just after) the origin or Redis is down, a 400 only for a bad request;
  - all connections settle: /stats connections.open back to 0 once the clients close;
  - nothing acknowledged is lost: the write-behind queue drains and the origin holds the
    last acknowledged value of every key.
Prints a markdown section; exit 0 when every check holds, 1 otherwise."""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
GRACE = 3.0  # seconds after an injected outage in which its errors still count as injected


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_tcp(port, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"soak: nothing listens on {port} after {timeout}s")


class Outages:
    """When injected failures were in effect (monotonic times)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows = []  # [kind, start, end or None]

    def begin(self, kind):
        with self.lock:
            self.windows.append([kind, time.monotonic(), None])

    def end(self, kind):
        with self.lock:
            for w in reversed(self.windows):
                if w[0] == kind and w[2] is None:
                    w[2] = time.monotonic()
                    return

    def covers(self, t0, t1):
        with self.lock:
            for _, start, end in self.windows:
                if t1 >= start and (end is None or t0 <= end + GRACE):
                    return True
        return False


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.unexpected = []

    def add(self, kind, n=1):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def bad(self, what):
        with self.lock:
            self.unexpected.append(what)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_kib_per_min(samples):
    """Least-squares slope of (t seconds, rss KiB), in KiB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (r - mr) for t, r in samples)
    return cov / var * 60 if var else 0.0


class Soak:
    def __init__(self, a):
        self.a = a
        self.dir = tempfile.mkdtemp(prefix="strata-soak.")
        self.outages = Outages()
        self.stats = Stats()
        self.stop = threading.Event()
        self.acked = {}  # key -> last acknowledged value (write-behind)
        self.acked_lock = threading.Lock()
        self.origin = self.redis = self.strata = None
        self.origin_port, self.redis_port = free_port(), free_port()
        self.port, self.admin = free_port(), free_port()

    # ---- processes ----
    def start_origin(self):
        log = open(os.path.join(self.dir, "origin.log"), "ab")
        self.origin = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "soak_origin.py"), str(self.origin_port),
             os.path.join(self.dir, "writes.log")], stdout=log, stderr=log)
        wait_tcp(self.origin_port)

    def start_redis(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", HOST, "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=log, stderr=log)
        wait_tcp(self.redis_port)

    def start_strata(self):
        conf = os.path.join(self.dir, "strata.yaml")
        with open(conf, "w") as f:
            f.write(f"""listen: "{HOST}:{self.port}"
workers: 2
admin: {{ listen: "{HOST}:{self.admin}" }}
limits: {{ header_timeout: 5s, idle_timeout: 30s }}
cache: {{ memory: 2MiB }}
redis: {{ url: "redis://{HOST}:{self.redis_port}/0", timeout: 250ms }}
tiers:
  hot: {{ ttl: 2s, stale_if_error: 1m }}
upstreams:
  origin: {{ servers: ["localhost:{self.origin_port}"], connect_timeout: 500ms, timeout: 5s,
            breaker: {{ window: 5s, min_requests: 20, error_ratio: 50%, open_for: 1s, probes: 3 }} }}
routes:
  - {{ match: "/c/*", upstream: origin, strategy: cache-aside, tier: hot }}
  - {{ match: "/wb/*", upstream: origin, strategy: write-behind, tier: hot,
      write_behind: {{ flush_delay: 200ms, max_retries: 1000, claim_after: 30s }} }}
  - {{ match: "/*", upstream: origin, strategy: bypass,
      rate_limit: {{ rate: 100000/s, burst: 100000, scope: fleet }} }}
""")
        log = open(os.path.join(self.dir, "strata.log"), "ab")
        self.strata = subprocess.Popen([self.a.strata, "-c", conf], stdout=log, stderr=log)
        wait_tcp(self.admin)
        wait_tcp(self.port)

    def admin_json(self, path):
        c = http.client.HTTPConnection(HOST, self.admin, timeout=5)
        try:
            c.request("GET", path)
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    # ---- load ----
    def request(self, conn, method, path, body=None):
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers={"Host": "soak.test"})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, t0, None
        except (OSError, http.client.HTTPException) as e:
            return None, b"", t0, e

    def classify(self, kind, status, t0, err, want=(200,)):
        t1 = time.monotonic()
        if status in want:
            self.stats.add(kind)
            return True
        injected = self.outages.covers(t0, t1)
        if injected and (status is None or status >= 500):
            self.stats.add("injected")
            return False
        self.stats.add("unexpected")
        self.stats.bad(f"{kind}: {status or err!r} at +{t1 - self.t_start:.1f}s")
        return False

    def client(self, seed):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        n = 0
        while not self.stop.is_set():
            n += 1
            x = rnd.random()
            if x < 0.10:  # a bad request, on its own connection
                self.bad_request(rnd)
                continue
            if x < 0.50:
                kind, method, path, body, want = "hit", "GET", f"/c/hot{rnd.randrange(20)}", None, (200,)
            elif x < 0.65:
                kind, method, path, body, want = ("miss", "GET", f"/c/u{seed}-{n}", None, (200,))
            elif x < 0.80:
                # Each client writes keys of its own, one after the other: the last value it
                # had acknowledged for a key is the one the origin must end with.
                key = f"k{seed}-{rnd.randrange(25)}"
                kind, method, path, body, want = ("write", "PUT", f"/wb/{key}",
                                                  f"{seed}-{n}".encode(), (202,))
            elif x < 0.83:
                kind, method, path, body, want = "purge", None, None, None, None
            else:
                kind, method, path, body, want = ("bypass", "GET", f"/p/{rnd.randrange(1000)}",
                                                  None, (200,))
            if kind == "purge":
                self.purge(rnd)
                continue
            status, data, t0, err = self.request(conn, method, path, body)
            if err is not None:
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            ok = self.classify(kind, status, t0, err, want)
            if ok and kind == "write":
                with self.acked_lock:
                    self.acked[path[4:]] = body.decode()
            elif status == 503 and kind == "write":
                pass  # not acknowledged: not owed
        conn.close()

    BAD = [b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"GARBAGE\r\n\r\n",
           b"GET /x HTTP/1.1\r\nTransfer Encoding: chunked\r\nHost: a\r\n\r\n",
           b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"]

    def bad_request(self, rnd):
        t0 = time.monotonic()
        try:
            with socket.create_connection((HOST, self.port), timeout=5) as s:
                s.sendall(rnd.choice(self.BAD))
                head = s.recv(64)
        except OSError as e:
            self.classify("bad", None, t0, e)
            return
        self.stats.add("bad" if head.startswith(b"HTTP/1.1 400") else "unexpected")
        if not head.startswith(b"HTTP/1.1 400"):
            self.stats.bad(f"bad request answered {head[:20]!r}")

    def purge(self, rnd):
        t0 = time.monotonic()
        c = http.client.HTTPConnection(HOST, self.admin, timeout=5)
        try:
            c.request("POST", "/invalidate", body=json.dumps({"prefix": f"/c/hot{rnd.randrange(20)}"}),
                      headers={"Content-Type": "application/json"})
            status = c.getresponse().status
            self.classify("purge", status, t0, None, (200, 202))
        except (OSError, http.client.HTTPException) as e:
            self.classify("purge", None, t0, e)
        finally:
            c.close()

    # ---- chaos ----
    def restart(self, kind, start, settled=lambda: True):
        """SIGKILL the origin or Redis, start it again a second later, and count its outage
        until settled() (or 15 s)."""
        self.outages.begin(kind)
        proc = getattr(self, kind)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)
        start()
        deadline = time.monotonic() + 15
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.outages.end(kind)
        self.stats.add(f"{kind}_restarts")

    def chaos(self):
        next_origin = time.monotonic() + self.a.origin_every
        next_redis = time.monotonic() + self.a.redis_every
        while not self.stop.wait(0.2):
            now = time.monotonic()
            if now >= next_origin:
                self.restart("origin", self.start_origin)
                next_origin = now + self.a.origin_every
            if now >= next_redis:
                # strata reconnects with a backoff of up to 5 s
                self.restart("redis", self.start_redis,
                             lambda: self.admin_json("/readyz").get("redis") == "up")
                next_redis = now + self.a.redis_every

    def run(self):
        self.start_redis()
        self.start_origin()
        self.start_strata()
        self.t_start = time.monotonic()
        samples, heap = [], []
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(self.a.clients)]
        threads.append(threading.Thread(target=self.chaos))
        for t in threads:
            t.start()
        end = self.t_start + self.a.duration
        try:
            while time.monotonic() < end:
                time.sleep(min(self.a.sample_every, max(0.0, end - time.monotonic())))
                samples.append((time.monotonic() - self.t_start, rss_kb(self.strata.pid)))
                heap.append((samples[-1][0], self.allocator_kb()))
                if self.strata.poll() is not None:
                    self.stats.bad(f"strata exited {self.strata.returncode}")
                    break
        finally:
            self.stop.set()
            for t in threads:
                t.join(30)
        return self.finish(samples, heap)

    ALLOC_FIELDS = ("allocated", "active", "metadata", "dirty", "resident")

    def allocator_kb(self):
        """jemalloc's numbers from /stats (ALLOC_FIELDS), KiB; None without them."""
        try:
            a = self.admin_json("/stats").get("allocator", {})
        except (OSError, ValueError):
            return None
        if "allocated" not in a:
            return None
        return {k: a.get(k, 0) // 1024 for k in self.ALLOC_FIELDS}

    def finish(self, samples, heap):
        alive = self.strata.poll() is None
        settled = drained = False
        open_conns = pending = None
        lost = []
        if alive:
            # A write that failed while the origin was down may wait out its backoff (up to
            # 30 s) before it is sent again.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                st = self.admin_json("/stats")
                open_conns = st["connections"]["open"]
                pending = st["write_behind"]["pending"]
                settled = open_conns == 0
                drained = pending == 0
                if settled and drained:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # the origin appends a write before it answers: all are logged
            last = {}
            with open(os.path.join(self.dir, "writes.log")) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition(" ")
                    last[k] = v
            with self.acked_lock:
                lost = [k for k, v in self.acked.items() if last.get(k) != v]
        warmup = self.a.warmup if self.a.warmup is not None else self.a.duration * 0.2
        warm = [s for s in samples if s[0] >= warmup]
        slope = slope_kib_per_min(warm)
        c = self.stats.counts
        ok = (alive and settled and drained and not lost and not self.stats.unexpected
              and abs(slope) <= self.a.max_slope)
        print(f"### soak: {self.a.duration:.0f} s, {self.a.clients} clients, origin restarted "
              f"every {self.a.origin_every:.0f} s, Redis every {self.a.redis_every:.0f} s")
        print()
        print("| answers | count |\n|---|---|")
        for k in ("hit", "miss", "write", "purge", "bypass", "bad", "injected", "unexpected",
                  "origin_restarts", "redis_restarts"):
            print(f"| {k} | {c.get(k, 0)} |")
        print()
        first = samples[0][1] if samples else 0
        print(f"- RSS: {first} KiB at the first sample, {warm[0][1] if warm else 0} KiB after "
              f"the {warmup:.0f} s warm-up, {samples[-1][1] if samples else 0} KiB at the end, "
              f"max {max((r for _, r in samples), default=0)} KiB; slope after warm-up "
              f"{slope:+.1f} KiB/min (limit ±{self.a.max_slope:.0f})")
        per_min = {}
        for t, r in samples:
            per_min.setdefault(int(t // 60), r)
        print("- RSS at each minute (KiB): " + ", ".join(f"{m}: {r}" for m, r in sorted(per_min.items())))
        live = [(t, a["allocated"]) for t, a in heap if a is not None and t >= warmup]
        if live:
            print(f"- the allocator's live bytes after warm-up: {live[0][1]} KiB, at the end "
                  f"{live[-1][1]} KiB; slope {slope_kib_per_min(live):+.1f} KiB/min (not checked: "
                  f"RSS minus these is what the allocator keeps)")
            by_min = {}
            for t, a in heap:
                if a is not None:
                    by_min.setdefault(int(t // 60), a)
            print("- the allocator at each minute (KiB, " + " / ".join(self.ALLOC_FIELDS) + "): "
                  + ", ".join(f"{m}: " + " / ".join(str(a[k]) for k in self.ALLOC_FIELDS)
                              for m, a in sorted(by_min.items())))
        print(f"- connections open after the clients closed: {open_conns} "
              f"({'settled' if settled else 'NOT settled'}); write-behind pending: {pending}")
        print(f"- acknowledged writes: {len(self.acked)} keys, lost: {len(lost)}"
              + (f" ({', '.join(lost[:5])})" if lost else ""))
        if alive and not drained:
            print(f"- /write-behind: `{json.dumps(self.admin_json('/write-behind'))[:600]}`")
            for part in range(16):
                key = "strata:{wb%d}:q" % part
                out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "XPENDING", key,
                                      "strata", "-", "+", "3"], capture_output=True,
                                     text=True).stdout.split()
                if out:
                    info = subprocess.run(["redis-cli", "-p", str(self.redis_port), "XINFO",
                                           "GROUPS", key], capture_output=True, text=True).stdout
                    print(f"- partition {part}: pending {' '.join(out[:12])}; group "
                          f"{' '.join(info.split())}")
        for u in self.stats.unexpected[:10]:
            print(f"- unexpected: {u}")
        print(f"- result: {'ok' if ok else 'FAILED'} (logs in {self.dir})")
        return ok

    def cleanup(self):
        for p in (self.strata, self.origin, self.redis):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strata", required=True)
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--origin-every", type=float, default=120)
    ap.add_argument("--redis-every", type=float, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--sample-every", type=float, default=5)
    ap.add_argument("--max-slope", type=float, default=256, help="KiB per minute")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the RSS slope counts (default: 20%% of the run)")
    a = ap.parse_args()
    s = Soak(a)
    try:
        ok = s.run()
    finally:
        s.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
