"""write-behind: a PUT or DELETE is made durable in Redis (AOF on) and answered
202 before the origin sees it; reads on every instance see it at once; the
flusher delivers every acknowledged write, in per-key order, whatever crashes:
a strata killed with SIGKILL, Redis killed and restarted from its AOF, an origin
that fails for a while. The test origin records every write and its
Idempotency-Key."""

import json
import signal
import threading
import time

import pytest

from harness import cache_route, cache_status, request, wait_until
from test_redis_tier import API, TIERS, RedisServer, fleet, get, rds  # noqa: F401  (a fixture)

TOKEN = "wb-secret"


@pytest.fixture
def aof(tmp_path):
    """A redis-server with AOF on, fsync on every write."""
    r = RedisServer(tmp_path, appendfsync="always")
    r.start()
    yield r
    r.stop()


class Store:
    """The origin's side: a key-value resource under /wb/ that records every write
    (method, path, Idempotency-Key, body) and applies each Idempotency-Key once.
    `fail` (a status) makes writes fail until it is set back to None."""

    def __init__(self, origin, prefix="/wb/"):
        self.lock = threading.Lock()
        self.data = {}
        self.writes = []
        self.applied = set()
        self.fail = None
        origin.script_prefix(prefix, self.answer)

    def answer(self, req):
        if req.method == "GET":
            with self.lock:
                body = self.data.get(req.path)
            if body is None:
                return 404, [("Content-Type", "application/json")], b'{"error":"none"}'
            return 200, [("Content-Type", "application/json"),
                         ("Cache-Control", "max-age=60")], body
        key = req.header("Idempotency-Key")
        with self.lock:
            self.writes.append((req.method, req.path, key, req.body))
            if self.fail:
                return self.fail, [("Content-Type", "application/json")], b'{"error":"refused"}'
            if key not in self.applied:
                self.applied.add(key)
                if req.method == "DELETE":
                    self.data.pop(req.path, None)
                else:
                    self.data[req.path] = req.body
        return 204, [], b""

    def delivered(self, path=None):
        with self.lock:
            return [w for w in self.writes if path is None or w[1] == path]

    def value(self, path):
        with self.lock:
            return self.data.get(path)


def wb_route(flush_delay="300ms", **kw):
    opts = {"flush_delay": flush_delay, "max_retries": 8, "claim_after": "2s"}
    opts.update(kw)
    return [cache_route("/wb/*", tier="hot", strategy="write-behind", write_behind=opts)]


def wb_fleet(strata, rds, n=2, redis_timeout="2s", **kw):
    # Redis's timeout is generous here: with appendfsync always on a busy CI disk an fsync can
    # take longer than 250 ms, and a refused write is not what these tests are about.
    return fleet(strata, rds, n, routes=wb_route(**kw), timeout=redis_timeout)


def put(s, path, body, ctype="application/json", timeout=5.0):
    return request(s.port, "PUT", path, body=body, headers=dict(API, **{"Content-Type": ctype}),
                   timeout=timeout)


def delete(s, path):
    return request(s.port, "DELETE", path, headers=API)


def admin(s, method, path, body=None, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return request(s.admin_port, method, path, body=body, headers=headers)


def test_put_is_acknowledged_seen_everywhere_at_once_and_flushed_later(origin, strata, aof):
    a, b = wb_fleet(strata, aof, flush_delay="1s")
    store = Store(origin)
    assert get(b, "/wb/item").status == 404  # B holds the origin's 404 in L1
    t0 = time.monotonic()
    r = put(a, "/wb/item", b'{"v":1}')
    assert r.status == 202, r.body
    wid = r.header("Strata-Write-Id")
    assert wid and len(wid) == 32
    assert r.json() == {"write_id": wid, "status": "queued"}
    # Every instance reads the write at once (B as soon as the bus tells it to drop its
    # copy, well under a second), before the origin has it.
    for s in (a, b):
        g = wait_until(lambda s=s: (lambda g: g.status == 200 and g)(get(s, "/wb/item")), 1,
                       msg=f"the new body on {s.port}")
        assert g.body == b'{"v":1}' and g.header("Content-Type") == "application/json"
    assert store.delivered() == []
    # After flush_delay the origin gets it, once, with the write id as Idempotency-Key.
    wait_until(lambda: store.delivered(), 10, msg="the flush")
    assert time.monotonic() - t0 >= 0.9
    assert store.delivered() == [("PUT", "/wb/item", wid, b'{"v":1}')]
    wait_until(lambda: a.stats()["write_behind"]["flushed"] + b.stats()["write_behind"]["flushed"] == 1, 5, msg="flushed counted (" + json.dumps([a.stats()["write_behind"], b.stats()["write_behind"]]) + ")")
    st = a.stats()["write_behind"]
    assert st["queued"] == 1 and st["dead"] == 0
    # Flushed: an ordinary entry now, still served from the cache.
    for s in (a, b):
        g = get(s, "/wb/item")
        assert g.body == b'{"v":1}' and cache_status(g).fresh_hit, (s.port, g.header("Cache-Status"))
    # The value is no longer dirty in Redis: it has a TTL again.
    assert len(aof.cmd("KEYS", "strata:{*}:w")) == 0


def test_fifty_puts_to_one_key_coalesce_and_the_last_wins(origin, strata, aof):
    (a,) = wb_fleet(strata, aof, n=1, flush_delay="1s")
    store = Store(origin)
    for i in range(50):
        assert put(a, "/wb/hot", b'{"v":%d}' % i).status == 202
    assert get(a, "/wb/hot").body == b'{"v":49}'
    wait_until(lambda: store.value("/wb/hot") == b'{"v":49}', 10, msg="the last value")
    wait_until(lambda: a.stats()["write_behind"]["pending"] == 0, 5, msg="queue drained")
    n = len(store.delivered("/wb/hot"))
    assert 1 <= n <= 10, n
    st = a.stats()["write_behind"]
    assert st["coalesced"] + st["flushed"] == 50 and st["coalesced"] >= 40, st


def test_a_backlog_of_thousands_drains_under_a_tight_redis_timeout(origin, strata, rds):
    # 8,000 writes over 40 keys held back by flush_delay, then flushed at once: recording
    # thousands of outcomes in one burst outlasted redis.timeout (25 ms), failed, and was sent
    # again, over and over; nothing got through. Recording is bounded, so it drains.
    (a,) = wb_fleet(strata, rds, n=1, flush_delay="6s", redis_timeout="25ms")
    store = Store(origin)

    def writer(t):
        for i in range(1000):
            key = f"/wb/b{t}-{i % 5}"
            for _ in range(100):  # a client that honours the 503's Retry-After, sooner
                if put(a, key, b"%d " % i + b"x" * 1000).status == 202:
                    break
            else:
                raise AssertionError("refused 100 times")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    queued = a.stats()["write_behind"]["queued"]
    assert queued >= 8000
    wait_until(lambda: a.admin_get("/write-behind").json()["pending"] == 0, 30, interval=0.2,
               msg="the backlog drained")
    for t in range(8):
        for k in range(5):
            assert store.value(f"/wb/b{t}-{k}") == b"%d " % (995 + k) + b"x" * 1000
    # Each write in the streams (a write refused because Redis answered late may still be
    # there: the client's retry added another) is accounted for exactly once.
    added = 0
    for p in range(16):
        info = rds.cmd("XINFO", "STREAM", f"strata:{{wb{p}}}:q")
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in zip(info[::2], info[1::2])}
        added += fields["entries-added"]
    assert added >= queued
    st = a.stats()["write_behind"]
    assert st["flushed"] + st["coalesced"] == added and st["dead"] == 0, (st, added)


def test_put_delete_put_reach_the_origin_in_order(origin, strata, aof):
    (a,) = wb_fleet(strata, aof, n=1, flush_delay="0ms")
    store = Store(origin)
    assert put(a, "/wb/seq", b"one").status == 202
    assert delete(a, "/wb/seq").status == 202
    assert get(a, "/wb/seq").status == 404  # the tombstone reads as 404
    assert put(a, "/wb/seq", b"three").status == 202
    assert get(a, "/wb/seq").body == b"three"
    wait_until(lambda: store.value("/wb/seq") == b"three", 10, msg="the last PUT at the origin")
    wait_until(lambda: a.stats()["write_behind"]["pending"] == 0, 5, msg="queue drained")
    methods = [w[0] for w in store.delivered("/wb/seq")]
    # Whatever was coalesced, what was sent is in order and ends with the last PUT.
    assert methods[-1] == "PUT" and store.delivered("/wb/seq")[-1][3] == b"three", methods
    bodies = [w[3] for w in store.delivered("/wb/seq")]
    assert bodies == sorted(bodies, key=[b"one", b"", b"three"].index)


def test_delete_is_flushed_and_reads_404(origin, strata, aof):
    a, b = wb_fleet(strata, aof, flush_delay="0ms")
    store = Store(origin)
    store.data["/wb/gone"] = b"here"
    assert get(b, "/wb/gone").body == b"here"
    assert delete(a, "/wb/gone").status == 202
    assert get(a, "/wb/gone").status == 404
    wait_until(lambda: get(b, "/wb/gone").status == 404, 1, msg="B to drop its copy (the bus)")
    wait_until(lambda: store.value("/wb/gone") is None and store.delivered(), 10,
               msg="the DELETE at the origin")
    assert store.delivered()[0][0] == "DELETE"


def test_origin_failing_during_500_writes_delivers_all_after_it_recovers(origin, strata, aof):
    (a,) = wb_fleet(strata, aof, n=1, flush_delay="0ms", max_retries=100)
    store = Store(origin)
    store.fail = 503
    ids = {}
    for i in range(500):
        r = put(a, f"/wb/d{i}", b"v%d" % i)
        assert r.status == 202
        ids[f"/wb/d{i}"] = r.header("Strata-Write-Id")
    wait_until(lambda: a.stats()["write_behind"]["retries"] > 0, 10, msg="retries")
    store.fail = None
    wait_until(lambda: len(store.data) == 500, 60, interval=0.2, msg="all 500 at the origin")
    assert all(store.value(p) == b"v%d" % int(p[5:]) for p in ids)
    assert {w[2] for w in store.delivered() if w[2] in ids.values()} == set(ids.values())
    wait_until(lambda: a.stats()["write_behind"]["pending"] == 0, 5, msg="queue drained")
    assert a.stats()["write_behind"]["dead"] == 0


def test_origin_that_times_out_or_is_unreachable_gets_the_write_later(origin, strata, aof,
                                                                     down_port):
    """An origin that does not answer in time, or a server that cannot be reached, is a
    failed attempt like a 503: retried after a backoff, not a write stuck in flight."""
    store = Store(origin, prefix="/not-this/")  # answered through slow_then_store below
    hang = {"n": 2}

    def slow_then_store(req):
        if req.method == "PUT" and hang["n"] > 0:
            hang["n"] -= 1
            origin.stopping.wait(1.5)  # longer than the upstream timeout (300 ms)
        return store.answer(req)

    origin.script_prefix("/wb/", slow_then_store)
    (a,) = fleet(strata, aof, 1, routes=wb_route(flush_delay="0ms", max_retries=20),
                 upstream_timeout="300ms", timeout="2s")
    assert put(a, "/wb/slow", b"v1").status == 202
    wait_until(lambda: store.value("/wb/slow") == b"v1", 15, interval=0.1,
               msg="delivered after the timed-out attempts")
    wait_until(lambda: a.stats()["write_behind"]["pending"] == 0, 5, msg="queue drained")
    assert a.stats()["write_behind"]["retries"] >= 2


def test_kill_9_of_the_instance_that_took_1000_writes_loses_none(origin, strata, aof):
    # A long flush_delay: A holds every write unflushed when it dies.
    a, b = wb_fleet(strata, aof, flush_delay="3s", claim_after="1s")
    store = Store(origin)
    acked = set()
    for i in range(1000):
        r = put(a, f"/wb/k{i}", b"v%d" % i)
        assert r.status == 202
        acked.add(f"/wb/k{i}")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    a.stopped = True
    wait_until(lambda: len(store.data) == 1000, 60, interval=0.2,
               msg="B to deliver all 1000 of A's writes")
    assert set(store.data) == acked
    assert len({w[1] for w in store.delivered()}) == 1000
    for i in (0, 500, 999):
        assert get(b, f"/wb/k{i}").body == b"v%d" % i


def test_an_instance_that_stops_hands_its_writes_over_at_once(origin, strata, aof):
    # claim_after 60 s: only the hand-over at SIGTERM can explain a delivery within seconds.
    a, b = wb_fleet(strata, aof, flush_delay="2s", claim_after="60s")
    store = Store(origin)
    wait_until(lambda: a.admin_get("/write-behind").json()["partitions"][0]["owner"], 5,
               msg="partitions owned")
    for i in range(100):
        assert put(a, f"/wb/h{i}", b"v%d" % i).status == 202
    t0 = time.monotonic()
    assert a.terminate() == 0
    wait_until(lambda: len(store.data) == 100, 20, interval=0.1, msg="B to deliver A's writes")
    assert time.monotonic() - t0 < 20
    owners = {p["owner"] for p in b.admin_get("/write-behind").json()["partitions"]}
    assert len(owners) == 1 and None not in owners


def test_redis_killed_and_restarted_from_its_aof_loses_nothing_acknowledged(origin, strata, aof):
    (a,) = wb_fleet(strata, aof, n=1, flush_delay="2s")
    store = Store(origin)
    acked, stop = set(), threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            try:
                r = put(a, f"/wb/r{i}", b"v%d" % i, timeout=2.0)
                if r.status == 202:
                    acked.add(f"/wb/r{i}")
                else:
                    assert r.status == 503, (r.status, r.body)
            except OSError:
                pass
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_until(lambda: len(acked) >= 100, 10, msg="writes before the crash")
    aof.kill()  # SIGKILL mid-run: only what was fsynced survives
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down", 5, msg="down")
    aof.start()  # the same port and AOF
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "up", 10, msg="back")
    n = len(acked)
    wait_until(lambda: len(acked) >= n + 100, 10, msg="writes after the restart")
    stop.set()
    t.join()
    wait_until(lambda: acked <= set(store.data), 60, interval=0.2,
               msg="every acknowledged write at the origin")


def test_redis_down_writes_get_503_never_202(origin, strata, rds):
    (a,) = wb_fleet(strata, rds, n=1)
    Store(origin)
    rds.kill()
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down", 5, msg="down")
    for i in range(20):
        r = put(a, f"/wb/x{i}", b"v")
        assert r.status == 503, r.status
        assert r.header("Retry-After") == "1"
    assert a.stats()["write_behind"]["queued"] == 0
    assert a.stats()["write_behind"]["refused"] == 20


def test_redis_that_stops_answering_gets_503_within_its_timeout(origin, strata, rds):
    (a,) = wb_fleet(strata, rds, n=1, redis_timeout="250ms")
    Store(origin)
    rds.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = put(a, "/wb/slow", b"v")
        assert r.status == 503 and time.monotonic() - t0 < 2.0
    finally:
        rds.proc.send_signal(signal.SIGCONT)


def test_origin_4xx_is_a_dead_letter_dropped_everywhere_and_retry_works(origin, strata, aof):
    def text(s):
        from harness import cache_config
        cfg = cache_config(s, wb_route(flush_delay="0ms"), TIERS, admin_token=TOKEN)
        return cfg + f'redis: {{ url: "{aof.url}", timeout: "2s" }}\n'

    a, b = strata(config_text=text), strata(config_text=text)
    for s in (a, b):
        wait_until(lambda s=s: s.admin_get("/readyz").json().get("bus") == "up", 10)
        wait_until(lambda s=s: s.admin_get("/readyz").json().get("redis") == "up", 10)
    store = Store(origin)
    store.fail = 422
    r = put(a, "/wb/bad", b'{"v":"bad"}')
    assert r.status == 202
    wid = r.header("Strata-Write-Id")
    assert get(b, "/wb/bad").body == b'{"v":"bad"}'
    wait_until(lambda: a.stats()["write_behind"]["dead"] == 1, 10, msg="the dead letter")
    # The cached value is gone on every instance: reads go to the origin again.
    for s in (a, b):
        wait_until(lambda s=s: get(s, "/wb/bad").status == 404, 5, msg=f"dropped on {s.port}")
    status = a.admin_get("/write-behind").json()
    assert status["dead"] == 1 and status["pending"] == 0
    assert status["dead_letters"][0]["id"] == wid
    assert status["dead_letters"][0]["status"] == "422"
    assert len(status["partitions"]) == 16
    assert "write-behind" in a.log() and "dead letter" in a.log()
    # The retry endpoint needs the token, and queues the write again.
    assert admin(a, "POST", "/write-behind/retry", body=b"{}", token=None).status == 401
    store.fail = None
    r = admin(a, "POST", "/write-behind/retry", body=json.dumps({"id": wid}).encode())
    assert r.status == 200 and r.json() == {"retried": 1}, r.body
    wait_until(lambda: store.value("/wb/bad") == b'{"v":"bad"}', 10, msg="delivered on retry")
    assert a.admin_get("/write-behind").json()["dead"] == 0


def test_write_larger_than_max_object_is_413(origin, strata, rds):
    def text(s):
        from harness import cache_config
        return (cache_config(s, wb_route(), TIERS)
                + f'redis: {{ url: "{rds.url}", timeout: "250ms", max_object: 1KiB }}\n')

    a = strata(config_text=text)
    Store(origin)
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "up", 10, msg="Redis up")
    assert put(a, "/wb/big", b"x" * 2048).status == 413
    assert put(a, "/wb/small", b"x" * 512).status == 202
    # Too big is the client's error whatever Redis's state: 413, not 503, while it is down too.
    rds.kill()
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down", 5, msg="down")
    assert put(a, "/wb/big", b"x" * 2048).status == 413
    assert put(a, "/wb/small", b"x" * 512).status == 503


def test_post_is_forwarded_and_ordered_patch_is_queued(origin, strata, rds):
    (a,) = fleet(strata, rds, 1, routes=wb_route(flush_delay="0ms", ordered=True))
    store = Store(origin)
    r = request(a.port, "POST", "/wb/p", body=b"x", headers=API)
    assert r.status == 204 and store.delivered() == [("POST", "/wb/p", None, b"x")]
    r = request(a.port, "PATCH", "/wb/p", body=b"y", headers=API)
    assert r.status == 202
    wait_until(lambda: len(store.delivered()) == 2, 10, msg="the PATCH flushed")
    assert store.delivered()[1][0] == "PATCH" and store.delivered()[1][2] == r.header(
        "Strata-Write-Id")


def test_check_fails_a_write_behind_route_without_redis(strata_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "wb.yaml"
    cfg.write_text('listen: "127.0.0.1:18080"\nadmin: { listen: "127.0.0.1:18081" }\n'
                   'tiers:\n  hot: { ttl: 60s }\n'
                   'upstreams:\n  o: { servers: ["127.0.0.1:9"] }\n'
                   'routes:\n  - match: "/c/*"\n    upstream: o\n'
                   '    strategy: write-behind\n    tier: hot\n')
    p = subprocess.run([strata_bin, "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{cfg}:10:15: strategy write-behind needs redis" in p.stderr + p.stdout
