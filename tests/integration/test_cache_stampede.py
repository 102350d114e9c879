"""Stampede protection: concurrent misses on one key share one origin fetch
(single-flight), across worker threads."""

import http.client
import threading

import pytest

from harness import HOST, cache_config, cache_route, cache_status, settle_stats, wait_until

TIERS = {"hot": {"ttl": "2s", "jitter": "0%", "stale_while_revalidate": "2s",
                 "stale_if_error": "10s"}}


def start(strata):
    return strata(config_text=lambda s: cache_config(
        s, [cache_route("/c/*", tier="hot")], TIERS, workers=2, upstream_timeout="5s"))


def stampede(s, path, n):
    """n threads, one connection each, send GET path at once. Returns (results,
    errors) once every request has been written; call join() to collect."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []
    sent = threading.Semaphore(0)

    def one(i):
        conn = http.client.HTTPConnection(HOST, s.port, timeout=15)
        try:
            conn.connect()
            barrier.wait(10)
            conn.request("GET", path)
            sent.release()
            r = conn.getresponse()
            results[i] = (r.status, r.getheader("Cache-Status"), r.read(),
                          r.getheader("X-Request-Id"))
        except Exception as e:  # noqa: BLE001
            errors.append(f"client {i}: {e!r}")
            sent.release()
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        assert sent.acquire(timeout=15), "clients could not send their requests"

    def join():
        for t in threads:
            t.join(20)
        assert not any(t.is_alive() for t in threads), "some clients never got an answer"
        return results, errors

    return join


def release_when_all_arrived(s, gate, n):
    """Open the origin's gate once strata has read all n requests (or after 15 s: a
    deadline a loaded machine cannot miss by accident)."""
    try:
        wait_until(lambda: s.stats()["requests"] >= n, 15, msg=f"strata to read {n} requests")
    finally:
        gate.set()


def test_200_clients_one_origin_fetch(origin, strata):
    s = start(strata)
    gate = threading.Event()
    # ~500 ms origin, held until strata has received all 200 requests so every
    # client surely arrives while the single fetch is in flight.
    origin.script_versioned("/c/hot", headers=[("Cache-Control", "max-age=60")],
                            delay=0.5, gate=gate)
    join = stampede(s, "/c/hot", 200)
    release_when_all_arrived(s, gate, 200)
    results, errors = join()
    assert not errors, errors[:5]
    assert origin.count("/c/hot") == 1, f"origin saw {origin.count('/c/hot')} requests"
    statuses = [r[0] for r in results]
    assert statuses == [200] * 200, sorted(set(statuses))
    bodies = {r[2] for r in results}
    assert bodies == {b"/c/hot v1\n"}, list(bodies)[:3]
    collapsed = [r[1] for r in results if "collapsed" in (r[1] or "")]
    assert len(collapsed) == 199, \
        f"{len(collapsed)} answers carry 'collapsed'; Cache-Status values: " \
        f"{sorted({r[1] for r in results})}"
    leader = [r[1] for r in results if "collapsed" not in (r[1] or "")]
    assert cache_status_fwd_miss(leader[0]), leader
    settle_stats(s, {"cache.collapsed": 199, ("routes", "/c/*", "collapsed"): 199,
                     "cache.misses": lambda st: st["cache"]["misses"] >= 1})
    # Afterwards: a plain hit.
    r = s.get("/c/hot")
    assert "hit" in cache_status(r), cache_status(r)
    assert origin.count("/c/hot") == 1


def cache_status_fwd_miss(v):
    return v is not None and "fwd=miss" in v


UNCACHEABLE = {
    "no-store": [("Cache-Control", "no-store")],
    "private": [("Cache-Control", "private, max-age=60")],
    "set-cookie": [("Cache-Control", "max-age=60"), ("Set-Cookie", "sid=x")],
}


@pytest.mark.parametrize("kind", list(UNCACHEABLE))
def test_uncacheable_answer_under_stampede_each_gets_its_own(origin, strata, kind):
    """Waiters on an answer that turns out uncacheable must not be handed the
    leader's response: the body names the request id the origin saw, which must
    be the id strata returned to that client."""
    s = start(strata)
    gate = threading.Event()
    path = f"/c/uncacheable-{kind}"
    origin.script_versioned(path, headers=UNCACHEABLE[kind], delay=0.3, gate=gate,
                            body=lambda req, n: (req.header("X-Request-Id") or "none").encode())
    n = 50
    join = stampede(s, path, n)
    release_when_all_arrived(s, gate, n)
    results, errors = join()
    assert not errors, errors[:5]
    assert [r[0] for r in results] == [200] * n, sorted({r[0] for r in results})
    foreign = [(r[3], r[2], r[1]) for r in results if r[2] != (r[3] or "").encode()]
    assert not foreign, f"{len(foreign)} of {n} clients got another request's answer " \
                        f"(origin saw {origin.count(path)} requests), e.g. " \
                        f"(own id, body, Cache-Status) = {foreign[:2]}"
    assert 1 <= origin.count(path) <= n
    # Nothing stored: the next request goes to the origin again.
    before = origin.count(path)
    r = s.get(path)
    assert r.status == 200
    assert origin.count(path) == before + 1, cache_status(r)


def test_distinct_keys_are_not_collapsed(origin, strata):
    s = start(strata)
    gate = threading.Event()
    for i in range(4):
        origin.script_versioned(f"/c/k{i}", headers=[("Cache-Control", "max-age=60")],
                                gate=gate)
    joins = [stampede(s, f"/c/k{i}", 10) for i in range(4)]
    release_when_all_arrived(s, gate, 40)
    for i, join in enumerate(joins):
        results, errors = join()
        assert not errors, errors[:5]
        assert {r[2] for r in results} == {f"/c/k{i} v1\n".encode()}
        assert origin.count(f"/c/k{i}") == 1
    settle_stats(s, {"cache.collapsed": 36})
