"""The Redis tier: several strata instances on one real redis-server behave as
one cache. L2 hits across instances, one origin fetch per key across instances,
invalidations seen everywhere, and Redis trouble that never stalls a client."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import (HOST, admin_invalidate, cache_config, cache_route, cache_status, free_port,
                     request, wait_until)

TIERS = {"hot": {"ttl": "60s", "jitter": "0%", "stale_if_error": "60s"}}
API = {"Host": "api.test"}  # every instance must see the same key


class RedisServer:
    """A redis-server on a fixed port that a test may kill, pause and restart."""

    def __init__(self, workdir, appendfsync=None):
        """appendfsync None: no persistence; "always" or "everysec": AOF on, with that policy."""
        self.exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.workdir = workdir
        self.appendfsync = appendfsync
        self.proc = None
        self.url = f"redis://{HOST}:{self.port}/0"

    def start(self):
        with open(self.workdir / f"redis-{self.port}.log", "ab") as log:
            aof = (["--appendonly", "yes", "--appendfsync", self.appendfsync,
                    "--appendfilename", f"aof-{self.port}.aof",
                    "--appenddirname", f"aof-{self.port}"]
                   if self.appendfsync else ["--appendonly", "no"])
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", HOST, "--save", "",
                 "--dir", str(self.workdir)] + aof,
                stdout=log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited {self.proc.returncode}")
            try:
                return self.cmd("PING") == "PONG"
            except OSError:
                return False

        wait_until(up, 10, msg="redis-server PING")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cmd(self, *args):
        """One command over RESP2; returns str, int, None, list, or raises on -ERR."""
        with socket.create_connection((HOST, self.port), timeout=2) as c:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            c.sendall(out)
            return _read_reply(c.makefile("rb"))


def _read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise AssertionError(f"bad RESP line {line!r}")


@pytest.fixture
def rds(tmp_path):
    r = RedisServer(tmp_path)
    r.start()
    yield r
    r.stop()


def fleet(strata, rds, n, routes=None, tiers=TIERS, upstream_timeout="5s", **redis_opts):
    """n instances on one Redis, each with 2 workers; redis_opts override the redis: keys."""
    # A generous timeout: sanitizer builds on a busy machine are slow, and a late answer is a miss.
    opts = {"url": rds.url, "timeout": "250ms", "lock_wait": "2s", "partition_ttl": "5s"}
    opts.update(redis_opts)
    redis_block = "redis: { " + ", ".join(f'{k}: "{v}"' for k, v in opts.items()) + " }"
    routes = routes or [cache_route("/c/*", tier="hot", invalidates=["/c/list"])]

    def text(s):
        return cache_config(s, routes, tiers, upstream_timeout=upstream_timeout) + redis_block + "\n"

    out = [strata(config_text=text) for _ in range(n)]
    for s in out:  # every worker's Redis connection and the bus
        wait_until(lambda s=s: s.admin_get("/readyz").json() | {"status": None}
                   == {"status": None, "redis": "up", "bus": "up"}, 10,
                   msg="Redis and the bus to come up")
    return out


def get(s, path, timeout=5.0):
    return s.get(path, headers=API, timeout=timeout)


def test_l2_hit_on_another_instance(origin, strata, rds):
    a, b = fleet(strata, rds, 2)
    origin.script_versioned("/c/one", headers=[("Cache-Control", "max-age=60")])
    r = get(a, "/c/one")
    assert r.status == 200 and cache_status(r).fwd == "miss"
    wait_until(lambda: a.stats()["l2"]["writes"] >= 1, 3, msg="A writes L2")
    r = get(b, "/c/one")
    assert r.status == 200 and r.body == b"/c/one v1\n"
    cs = cache_status(r)
    assert cs.fresh_hit and cs.get("detail") == "l2", cs
    assert 55 <= cs.ttl <= 60, cs  # the remaining freshness, not a fresh 60 s
    # The next one is an L1 hit on B: no Redis on the way.
    r = get(b, "/c/one")
    assert cache_status(r).fresh_hit and cache_status(r).get("detail") is None, cache_status(r)
    assert origin.count("/c/one") == 1
    st = b.stats()
    assert st["l2"]["hits"] == 1 and st["l2"]["enabled"] and st["l2"]["connected"], st["l2"]
    assert a.admin_get("/readyz").json() == {"status": "ready", "redis": "up", "bus": "up"}


def stampede(instances, path, n):
    """n clients spread over the instances send GET path at once; returns results."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        s = instances[i % len(instances)]
        conn = http.client.HTTPConnection(HOST, s.port, timeout=20)
        try:
            conn.connect()
            barrier.wait(10)
            conn.request("GET", path, headers=API)
            r = conn.getresponse()
            results[i] = (r.status, r.read(), r.getheader("Cache-Status"), time.monotonic())
        except Exception as e:  # noqa: BLE001
            results[i] = (None, repr(e), None, time.monotonic())
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, t0


def test_stampede_over_three_instances_one_origin_fetch(origin, strata, rds):
    fl = fleet(strata, rds, 3)
    origin.script_versioned("/c/cold", headers=[("Cache-Control", "max-age=60")], delay=0.3)
    results, _ = stampede(fl, "/c/cold", 150)
    bad = [r for r in results if r is None or r[0] != 200]
    assert not bad, bad[:3]
    assert {r[1] for r in results} == {b"/c/cold v1\n"}
    assert origin.count("/c/cold") == 1, f"origin saw {origin.count('/c/cold')} requests"
    waits = sum(s.stats()["locks"]["waits"] for s in fl)
    wins = sum(s.stats()["locks"]["wins"] for s in fl)
    assert wins == 1 and waits == 2, (wins, waits)


def test_write_on_one_instance_is_seen_on_the_others(origin, strata, rds):
    a, b, c = fleet(strata, rds, 3)
    origin.script_versioned("/c/item", headers=[("Cache-Control", "max-age=60")])
    for s in (a, b, c):
        assert get(s, "/c/item").body == b"/c/item v1\n"
    assert origin.count("/c/item") == 1
    r = request(a.port, "PUT", "/c/item", body=b"new", headers=API)
    assert r.status == 200
    for s in (b, c):
        wait_until(lambda s=s: get(s, "/c/item").body != b"/c/item v1\n", 2,
                   msg="the write to reach every instance")
    # Each refetched after the write (or read another's refill from L2); none kept v1.
    assert origin.count("/c/item") <= 1 + 1 + 3  # first fill, the PUT, at most one refill each


@pytest.mark.parametrize("how", ["key", "prefix", "tag"])
def test_invalidate_on_one_instance_purges_all(origin, strata, rds, how):
    a, b, c = fleet(strata, rds, 3)
    origin.script_versioned("/c/p/1", headers=[("Cache-Control", "max-age=60"),
                                                ("Surrogate-Key", "t1 other")])
    get(a, "/c/p/1")
    # A's fill reaches L2 after its answer: B and C read it from there once it has.
    wait_until(lambda: a.stats()["l2"]["writes"] >= 1, 3, msg="A's fill to reach L2")
    for s in (b, c):
        get(s, "/c/p/1")
    assert origin.count("/c/p/1") == 1
    body = {"key": {"key": "/c/p/1"}, "prefix": {"prefix": "/c/p/"}, "tag": {"tag": "t1"}}[how]
    assert admin_invalidate(a, body).status == 200
    for s in (b, c):
        wait_until(lambda s=s: s.stats()["invalidations"]["received"] >= 1, 2,
                   msg="the invalidation to arrive")
    # L2 is clean too: the next read on any instance goes to the origin, once.
    writes = c.stats()["l2"]["writes"]
    assert get(c, "/c/p/1").body == b"/c/p/1 v2\n"
    wait_until(lambda: c.stats()["l2"]["writes"] > writes, 3, msg="C's fill to reach L2")
    for s in (b, a):
        assert get(s, "/c/p/1").body == b"/c/p/1 v2\n"
    assert origin.count("/c/p/1") == 2
    assert a.stats()["invalidations"]["published"] == 1


def test_redis_killed_under_load_never_stalls_clients(origin, strata, rds):
    a, b = fleet(strata, rds, 2)
    origin.script_versioned("/c/k", headers=[("Cache-Control", "max-age=60")])
    stop = threading.Event()
    worst = [0.0]
    failures = []

    def load(s, i):
        n = 0
        while not stop.is_set():
            t = time.monotonic()
            try:
                r = get(s, f"/c/k?i={i}-{n % 50}", timeout=5)
                if r.status != 200:
                    failures.append(r.status)
            except OSError as e:
                failures.append(repr(e))
            worst[0] = max(worst[0], time.monotonic() - t)
            n += 1

    threads = [threading.Thread(target=load, args=(s, i), daemon=True)
               for i, s in enumerate([a, b, a, b])]
    for t in threads:
        t.start()
    time.sleep(0.3)  # load running against a healthy Redis
    rds.kill()
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down", 3,
               msg="/readyz to say redis is down")
    r = a.admin_get("/readyz")
    assert r.status == 200 and r.json()["status"] == "ready", r.body
    assert a.stats()["l2"]["connected"] is False
    time.sleep(1.0)  # load running with Redis gone
    stop.set()
    for t in threads:
        t.join(10)
    assert not failures, failures[:5]
    # redis.timeout (250 ms) plus a local origin's time, with room for a busy machine.
    assert worst[0] < 1.5, worst[0]
    assert "redis" in a.log() and "down" in a.log()


def test_redis_restarted_comes_back_without_restarting_strata(origin, strata, rds):
    a, b = fleet(strata, rds, 2)
    rds.kill()
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down", 3)
    rds.start()
    for s in (a, b):
        wait_until(lambda s=s: s.admin_get("/readyz").json() ==
                   {"status": "ready", "redis": "up", "bus": "up"}, 10,
                   msg="Redis and the bus back")
    origin.script_versioned("/c/after", headers=[("Cache-Control", "max-age=60")])
    get(a, "/c/after")
    wait_until(lambda: a.stats()["l2"]["writes"] >= 1, 3)
    assert cache_status(get(b, "/c/after")).get("detail") == "l2"
    assert origin.count("/c/after") == 1
    assert "back up after" in a.log()


def test_lost_subscription_replays_what_it_missed(origin, strata, rds):
    a, b = fleet(strata, rds, 2, partition_ttl="60s")
    origin.script_versioned("/c/r", headers=[("Cache-Control", "max-age=60")])
    assert get(b, "/c/r").body == b"/c/r v1\n"
    # B's fill reaches L2 after its answer; one landing after the invalidation would bring
    # v1 back into L2 (a known race between a fill and an invalidation: README).
    wait_until(lambda: b.stats()["l2"]["writes"] >= 1, 3, msg="B's fill to reach L2")
    # Cut every subscriber off, and invalidate while B is reconnecting.
    rds.cmd("CLIENT", "KILL", "TYPE", "pubsub")
    assert admin_invalidate(a, {"key": "/c/r"}).status == 200
    # partition_ttl is 60 s: only the replay from the stream can drop B's copy this soon (the
    # deadline leaves room for B's reconnect backoff on a loaded machine, far below 60 s).
    wait_until(lambda: get(b, "/c/r").body != b"/c/r v1\n", 10, msg="B to replay the stream")
    st = b.stats()
    assert st["bus"]["replayed"] >= 1 and st["bus"]["state"] == "up", st["bus"]
    assert st["bus"]["flushes"] == 0


def test_cut_off_instance_stops_serving_after_partition_ttl(origin, strata, rds):
    (b,) = fleet(strata, rds, 1, partition_ttl="1s")
    origin.script_versioned("/c/q", headers=[("Cache-Control", "max-age=60")])
    assert get(b, "/c/q").body == b"/c/q v1\n"
    assert get(b, "/c/q").body == b"/c/q v1\n"
    rds.kill()
    lost = time.monotonic()
    wait_until(lambda: b.admin_get("/readyz").json().get("bus") == "down", 3)
    # Within partition_ttl it may still answer from L1; after it, never the old copy.
    time.sleep(max(0.0, 1.2 - (time.monotonic() - lost)))
    for _ in range(3):
        assert get(b, "/c/q").body != b"/c/q v1\n"
    assert origin.count("/c/q") >= 2


def test_restart_of_redis_while_cut_off_flushes_l1(origin, strata, rds):
    a, b = fleet(strata, rds, 2, partition_ttl="60s")
    origin.script_versioned("/c/f", headers=[("Cache-Control", "max-age=60")])
    assert get(b, "/c/f").body == b"/c/f v1\n"
    rds.kill()
    rds.start()  # a new run id: the stream and B's place in it are gone
    wait_until(lambda: b.stats()["bus"]["flushes"] >= 1, 10, msg="B to drop its L1")
    assert get(b, "/c/f").body == b"/c/f v2\n"


def test_lock_holder_killed_mid_fetch_others_proceed(origin, strata, rds):
    a, b = fleet(strata, rds, 2, lock_wait="1s")
    gate = threading.Event()
    origin.script_versioned("/c/held", headers=[("Cache-Control", "max-age=60")], gate=gate)
    got = {}

    def ask_a():
        try:
            get(a, "/c/held", timeout=5)
        except OSError:
            pass

    threading.Thread(target=ask_a, daemon=True).start()
    wait_until(lambda: origin.count("/c/held") == 1, 3, msg="A to fetch")
    a.proc.kill()  # dies holding the lock
    a.proc.wait()
    a.stopped = True
    t = time.monotonic()
    gate.set()
    r = get(b, "/c/held", timeout=10)
    got["elapsed"] = time.monotonic() - t
    assert r.status == 200
    assert got["elapsed"] < 5, got
    st = b.stats()["locks"]
    assert st["waits"] == 1 and st["fail_open"] == 1, st


def test_value_of_another_format_version_is_a_miss(origin, strata, rds):
    a, b = fleet(strata, rds, 2)
    origin.script_versioned("/c/v", headers=[("Cache-Control", "max-age=60")])
    get(a, "/c/v")
    wait_until(lambda: a.stats()["l2"]["writes"] >= 1, 3)
    keys = rds.cmd("KEYS", "strata:*:v")
    assert len(keys) == 1, keys
    rds.cmd("SETRANGE", keys[0], 0, b"\x09")  # a format version this build does not know
    r = get(b, "/c/v")
    assert r.body == b"/c/v v2\n" and cache_status(r).fwd == "miss"
    assert b.stats()["l2"]["corrupt"] == 1
    # B's refill lands in L2 after its answer: damage that one, not the value it replaces.
    wait_until(lambda: b.stats()["l2"]["writes"] >= 1, 3, msg="B's refill to reach L2")
    rds.cmd("SETRANGE", rds.cmd("KEYS", "strata:*:v")[0], 40, b"garbage")  # a damaged one
    c = fleet(strata, rds, 1)[0]
    assert get(c, "/c/v").body == b"/c/v v3\n"
    assert c.stats()["l2"]["corrupt"] == 1


def test_unix_socket_url(origin, strata, tmp_path):
    sock = tmp_path / "r.sock"
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", str(sock), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: os.path.exists(sock), 5)

        class U:
            url = f"unix://{sock}"

        (s,) = fleet(strata, U, 1)
        origin.script_versioned("/c/u", headers=[("Cache-Control", "max-age=60")])
        get(s, "/c/u")
        wait_until(lambda: s.stats()["l2"]["writes"] >= 1, 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)


def test_redis_that_stops_answering_costs_at_most_its_timeout(origin, strata, rds):
    """SIGSTOP: the connections stay open and nothing answers. Each request pays at
    most redis.timeout before strata gives up on Redis and serves from the origin,
    and after a few timeouts it stops asking until Redis answers again."""
    (s,) = fleet(strata, rds, 1)
    origin.script_versioned("/c/s", headers=[("Cache-Control", "max-age=60")])
    os.kill(rds.proc.pid, signal.SIGSTOP)
    try:
        worst = 0.0
        for i in range(12):
            t = time.monotonic()
            r = get(s, f"/c/s?i={i}")
            worst = max(worst, time.monotonic() - t)
            assert r.status == 200
        # One timeout (250 ms) per request at worst, and only until strata backs off.
        assert worst < 1.0, worst
        st = s.stats()["l2"]
        assert st["errors"] >= 3 and st["skipped"] >= 1, st
        assert s.admin_get("/readyz").json()["redis"] == "down"
    finally:
        os.kill(rds.proc.pid, signal.SIGCONT)
    wait_until(lambda: s.admin_get("/readyz").json().get("redis") == "up", 10,
               msg="Redis answering again")


def test_prefix_deeper_than_the_indexed_levels_still_cleans_l2(origin, strata, rds):
    """Regression: a prefix with more '/' than the index keeps levels for used to
    name a set that never exists, so L2 kept the values and every instance refilled
    its L1 from them."""
    a, b = fleet(strata, rds, 2)
    deep = "/c/1/2/3/4/5/6/7/8/9/"
    origin.script_versioned(deep + "x", headers=[("Cache-Control", "max-age=60")])
    get(a, deep + "x")
    wait_until(lambda: a.stats()["l2"]["writes"] >= 1, 3)
    assert cache_status(get(b, deep + "x")).get("detail") == "l2"
    assert admin_invalidate(a, {"prefix": deep}).status == 200
    wait_until(lambda: b.stats()["invalidations"]["received"] >= 1, 2)
    assert get(b, deep + "x").body == (deep + "x v2\n").encode()


def index_keys(rds):
    """Every path, prefix and tag index in Redis: {key: (type, members)}."""
    out = {}
    for k in rds.cmd("KEYS", "strata:{[pxt]*}"):
        kind = rds.cmd("TYPE", k)
        out[k] = (kind, rds.cmd("ZRANGE", k, 0, -1) if kind == "zset" else rds.cmd("SMEMBERS", k))
    return out


def test_index_sets_forget_expired_keys(origin, strata, rds):
    """Regression: an index set's TTL is renewed by every fill under it, and its members
    were never removed, so the set of a busy prefix grew with every key ever stored under
    it (the soak's reached 60,000 members; each purge read them all). Now each fill first
    drops the members whose values have expired."""
    short = {"short": {"ttl": "1s", "jitter": "0%"}}
    (a,) = fleet(strata, rds, 1, routes=[cache_route("/c/*", tier="short")], tiers=short)
    for i in range(30):  # 3 s of fills under /c/a/, each value living 1 s
        assert get(a, f"/c/a/{i}").status == 200
        time.sleep(0.1)
    wait_until(lambda: a.stats()["l2"]["writes"] >= 30, 5, msg="30 L2 writes")
    indexes = index_keys(rds)
    biggest = max(len(m) for _, m in indexes.values())
    # The sets of /, /c/ and /c/a/ hold the keys of about the last second (+ what expired
    # since the previous fill), not all 30.
    assert 1 <= biggest <= 15, {k: len(m) for k, (_, m) in indexes.items()}
    assert all(t == "zset" for t, _ in indexes.values()), indexes
    assert [b"/c/a/29" in b"".join(m) for _, m in indexes.values()].count(True) >= 3


def test_plain_set_index_of_an_older_version_still_invalidates(origin, strata, rds):
    """Indexes written as plain sets (before they were sorted sets) are read as they are and
    become sorted sets at the next fill under them: an upgrade loses no invalidation."""
    a, b = fleet(strata, rds, 2)
    for p in ("/c/u/1", "/c/u/2"):
        origin.script_versioned(p, headers=[("Cache-Control", "max-age=60")])
        get(a, p)
    wait_until(lambda: a.stats()["l2"]["writes"] >= 2, 3)
    for k, (_, members) in index_keys(rds).items():  # as an older strata left them
        rds.cmd("DEL", k)
        rds.cmd("SADD", k, *members)
        rds.cmd("PEXPIRE", k, 60000)
    assert {t for t, _ in index_keys(rds).values()} == {"set"}
    assert admin_invalidate(a, {"prefix": "/c/u/"}).status == 200
    wait_until(lambda: not rds.cmd("KEYS", "strata:*:v"), 3, msg="L2 values under /c/u/ gone")
    wait_until(lambda: b.stats()["invalidations"]["received"] >= 1, 2)
    assert get(b, "/c/u/1").body == b"/c/u/1 v2\n"
    wait_until(lambda: "zset" in {t for t, _ in index_keys(rds).values()}, 3,
               msg="the refill's indexes to be sorted sets")
    assert admin_invalidate(b, {"prefix": "/c/u/"}).status == 200
    wait_until(lambda: not rds.cmd("KEYS", "strata:*:v"), 3, msg="the refilled value gone")
