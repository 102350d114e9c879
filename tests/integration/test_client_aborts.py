"""Clients that vanish mid-answer: a reset in the middle of a large cached hit
(the entry is pinned while the socket cannot take it all) while the entry is
invalidated and replaced underneath, and a reset in the middle of a miss that
is still streaming from the origin. strata must stay up, free what the dead
connections held (the memory tier's byte count drops back), keep its origin
pool usable and serve the same objects correctly afterwards."""

import socket
import struct
import threading

from harness import (HOST, admin_invalidate, assert_still_serving, cache_config, cache_route,
                     req_bytes, wait_until)
from scripted_origin import pattern_bytes

BIG = 768 * 1024  # larger than the socket buffers: a hit cannot be written at once


def reset_after(port, path, read_bytes):
    """GET path, read read_bytes of the answer, then close with a TCP reset."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(req_bytes("GET", path, host=f"{HOST}:{port}"))  # the key s.get() uses
        got = 0
        while got < read_bytes:
            chunk = s.recv(min(65536, read_bytes - got))
            if not chunk:
                break
            got += len(chunk)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()
    return got


def l1(s):
    return s.stats()["l1"]


def test_resets_during_large_hits_while_the_entry_is_replaced(origin, strata):
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/big")], {"hot": {"ttl": "10m"}}, max_object="2MiB"))
    path = f"/big?bytes={BIG}"
    first = s.get(path)
    assert first.status == 200 and first.body == pattern_bytes(BIG)
    assert wait_until(lambda: l1(s)["entries"] == 1, msg="entry not stored")
    errors = []

    def client(i):
        try:
            reset_after(s.port, path, 1000 + i * 997)
        except OSError as e:  # strata may close first; that is fine
            if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
                errors.append(repr(e))

    for round_ in range(5):
        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        # Drop and refill the entry while those hits are in flight.
        admin_invalidate(s, {"key": "/big"})
        assert s.get(path).status == 200
        for t in threads:
            t.join(10)
            assert not t.is_alive(), "a client thread hung"
        assert s.alive(), f"strata died in round {round_}; log tail:\n{s.log()[-3000:]}"
    assert not errors, errors
    # Every pinned copy is released: one entry of one object's size remains.
    assert wait_until(lambda: l1(s)["entries"] == 1 and l1(s)["bytes"] < 2 * BIG,
                      msg=f"memory tier did not settle: {l1(s)}")
    r = s.get(path)
    assert r.status == 200 and r.body == pattern_bytes(BIG)
    assert_still_serving(s)


def test_reset_during_a_streaming_miss_leaves_the_pool_usable(origin, strata):
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/big")], {"hot": {"ttl": "10m"}}, max_object="1MiB"))
    # 8 MiB: over max_object, so it streams through uncached from the origin.
    path = "/big?bytes=8388608"
    for i in range(10):
        reset_after(s.port, path, 200_000 + i * 10_000)
        assert s.alive(), f"strata died after reset {i}; log tail:\n{s.log()[-3000:]}"
    # The origin connections behind the dead clients are not reused half-read:
    # a cached object and a small pass-through both come back whole.
    r = s.get("/big?bytes=5000")
    assert r.status == 200 and r.body == pattern_bytes(5000)
    r = s.get("/big?bytes=5000")
    assert r.status == 200 and r.body == pattern_bytes(5000)
    assert_still_serving(s)
    assert l1(s)["entries"] == 1
