"""Chaos: many clients at once, each doing seeded-random things (cache hits and
misses, slow and fast origin answers, stale entries with revalidation and
stale-while-revalidate, HEAD, conditional GETs, POSTs with bodies, pipelined
requests, large cached bodies), and leaving at random moments: mid-request,
mid-body, mid-answer, with a reset or a plain close. Meanwhile entries are
invalidated, /stats and /metrics are read and the config is reloaded. strata must stay up, every answer a
client reads in full must be well-formed and belong to the path it asked for,
and afterwards every connection is closed and normal requests are served.
Under ASan + UBSan in CI this shakes out lifetime bugs on the abort paths."""

import os
import random
import socket
import struct
import threading
import time

from harness import (HOST, RawConn, admin_invalidate, assert_still_serving, cache_config,
                     cache_route, req_bytes, wait_until)

CLIENTS = 16
OPS_PER_CLIENT = 60

TIERS = {"hot": {"ttl": "10m"},
         "short": {"ttl": "1s", "jitter": "0%", "stale_while_revalidate": "2s"}}


def config(s):
    return cache_config(s, [cache_route("/c/*"), cache_route("/big"), cache_route("/delay/*"),
                            cache_route("/s/*", tier="short")], TIERS, max_object="2MiB")


def requests_for(rng, port):
    """One operation: the bytes to send and what it is."""
    host = f"{HOST}:{port}"
    k = rng.randrange(20)
    choice = rng.randrange(9)
    if choice == 0:
        return req_bytes("GET", f"/c/{k}", host=host), f"/c/{k}"
    if choice == 1:
        return req_bytes("GET", f"/s/{k}", host=host), f"/s/{k}"
    if choice == 2:
        return req_bytes("GET", f"/delay/{rng.choice([50, 150, 300])}", host=host), "/delay/"
    if choice == 3:
        return req_bytes("GET", f"/big?bytes={rng.choice([200000, 900000])}", host=host), "/big"
    if choice == 4:
        return req_bytes("HEAD", f"/c/{k}", host=host), f"/c/{k}"
    if choice == 5:
        return req_bytes("GET", f"/c/{k}", [("If-None-Match", '"nope", *')], host=host), f"/c/{k}"
    if choice == 6:
        body = b"z" * rng.choice([10, 5000, 300000])
        return req_bytes("POST", f"/c/{k}", [("Content-Length", str(len(body)))], body,
                         host=host), f"/c/{k}"
    if choice == 7:
        return (req_bytes("GET", f"/c/{k}", host=host) + req_bytes("GET", f"/c/{k + 1}", host=host)
                + req_bytes("GET", "/delay/50", host=host)), "pipelined"
    return req_bytes("GET", f"/json/{k}", host=host), f"/json/{k}"


def leave(sock, rng):
    if rng.random() < 0.5:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def client(port, seed, failures):
    rng = random.Random(seed)
    for _ in range(OPS_PER_CLIENT):
        data, what = requests_for(rng, port)
        how = rng.randrange(4)
        try:
            if how == 0:  # leave half-way through the request
                s = socket.create_connection((HOST, port), timeout=5)
                s.sendall(data[:rng.randrange(1, len(data))])
                leave(s, rng)
            elif how == 1:  # leave after reading part of the answer
                s = socket.create_connection((HOST, port), timeout=5)
                s.sendall(data)
                want = rng.choice([1, 100, 5000, 100000])
                got = 0
                s.settimeout(0.3)  # a short answer may be all there is on a kept-alive connection
                try:
                    while got < want:
                        chunk = s.recv(min(65536, want - got))
                        if not chunk:
                            break
                        got += len(chunk)
                except socket.timeout:
                    pass
                leave(s, rng)
            else:  # read the whole answer(s) and check them
                with RawConn(port, timeout=10) as c:
                    c.send(data)
                    n = 3 if what == "pipelined" else 1
                    for _ in range(n):
                        r = c.read_final(timeout=10, head_request=data.startswith(b"HEAD"))
                        if not (200 <= r.status < 600):
                            failures.append(f"{what}: status {r.status}")
                        if r.status == 200 and what.startswith(("/c/", "/s/", "/json/")) \
                                and r.body and not data.startswith((b"HEAD", b"POST")):
                            got = r.json().get("path") or ("/json/" + str(r.json().get("id")))
                            if got != what:
                                failures.append(f"asked {what}, got an answer for {got}")
        except (OSError, TimeoutError) as e:
            failures.append(f"{what} (how {how}): {e!r}")
        except Exception as e:  # a malformed answer
            failures.append(f"{what} (how {how}): {type(e).__name__}: {e}")


def test_chaos_clients_leaving_at_random_moments(origin, strata):
    s = strata(config_text=config)
    failures = []
    base = int(os.environ.get("STRATA_CHAOS_SEED", "1000"))
    threads = [threading.Thread(target=client, args=(s.port, base + i, failures))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    # Invalidations and reloads while the clients run.
    deadline = time.monotonic() + 60
    i = 0
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        i += 1
        admin_invalidate(s, {"prefix": "/c/1"})
        assert s.admin_get("/stats").status == 200  # counters read while workers write them
        assert s.admin_get("/metrics").status == 200
        if i % 5 == 0:
            s.reload(config(s))
        alive = [t for t in threads if t.is_alive()]
        if alive:
            alive[0].join(0.2)  # paces the invalidations; returns early when it finishes
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a chaos client hung"
    assert s.alive(), f"strata died; log tail:\n{s.log()[-4000:]}"
    assert not failures, failures[:20]
    assert wait_until(lambda: s.stats()["connections"]["open"] == 0, timeout=15,
                      msg=f"connections left open: {s.stats()['connections']}")
    assert_still_serving(s)
    for path in ("/c/3", "/s/4"):
        r = s.get(path)
        assert r.status == 200 and r.json()["path"] == path
