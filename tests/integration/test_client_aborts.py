"""Clients that vanish mid-answer: a reset in the middle of a large cached hit
(the entry is pinned while the socket cannot take it all) while the entry is
invalidated and replaced underneath, and a reset in the middle of a miss that
is still streaming from the origin. strata must stay up, free what the dead
connections held (the memory tier's byte count drops back), keep its origin
pool usable and serve the same objects correctly afterwards."""

import http.client
import socket
import time
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


def reset_when(port, path, cond, errors):
    """GET path, wait until cond() holds, then reset the connection unread. Runs
    in a thread: what goes wrong is appended to errors for the test to assert on."""
    try:
        s = socket.create_connection((HOST, port), timeout=5)
    except OSError as e:
        errors.append(repr(e))
        return
    try:
        s.sendall(req_bytes("GET", path, host=f"{HOST}:{port}"))
        wait_until(cond, timeout=5, msg="condition for leaving never held")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except Exception as e:  # noqa: BLE001 - reported on the test's thread
        errors.append(repr(e))
    finally:
        s.close()


def test_waiters_that_leave_while_parked_on_a_stampede(origin, strata):
    """Half of the clients collapsed behind one slow origin fetch reset before
    it answers; the rest get the answer, and the leaver's slots are freed."""
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/delay/*")], {"hot": {"ttl": "10m"}}))
    path = "/delay/600"
    results, errors = [], []

    def stay():
        try:
            results.append(s.get(path, timeout=10))
        except Exception as e:  # noqa: BLE001 - reported on the test's thread
            errors.append(repr(e))

    # Leavers go once the origin holds the one fetch: they are parked behind it.
    leavers = [threading.Thread(target=reset_when,
                                args=(s.port, path, lambda: origin.count(path) >= 1, errors))
               for _ in range(20)]
    stayers = [threading.Thread(target=stay) for _ in range(20)]
    for t in leavers + stayers:
        t.start()
    for t in leavers + stayers:
        t.join(15)
        assert not t.is_alive(), "a client thread hung"
    assert s.alive(), f"strata died; log tail:\n{s.log()[-3000:]}"
    assert not errors, errors
    assert len(results) == 20 and all(r.status == 200 for r in results), \
        [r.status for r in results]
    assert origin.count(path) == 1
    assert_still_serving(s)


def test_reset_during_request_body_upload(origin, strata):
    """A client that dies half-way through a streamed request body."""
    s = strata()
    for i in range(10):
        c = socket.create_connection((HOST, s.port), timeout=5)
        c.sendall(req_bytes("POST", "/echo", [("Content-Length", str(1 << 20))]))
        c.sendall(b"x" * (100_000 + i * 1000))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    assert wait_until(lambda: s.stats()["connections"]["open"] == 0,
                      msg="connections of reset clients not closed")
    assert s.alive()
    assert_still_serving(s)


def test_origin_that_dies_mid_body_under_collapsed_waiters(strata, origin):
    """The leader's origin answer breaks off half-way: every collapsed waiter
    gets an answer (an error or its own fetch), none hangs, nothing is stored."""
    lst = socket.socket()
    lst.bind((HOST, 0))
    lst.listen(64)
    port = lst.getsockname()[1]
    stop = threading.Event()
    # strata's origin requests while 20 clients wait on the first: 1 if they collapsed
    seen_first = []
    arrived = []
    holder = {}

    def clients_waiting():
        return holder["s"].stats()["connections"]["open"] >= 20

    def broken_origin():
        lst.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lst.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    arrived.append(time.monotonic())
                    if len(arrived) == 1:  # the leader: hold it until all 20 wait behind it
                        wait_until(clients_waiting, 5, msg="20 clients at strata")
                        seen_first.append(holder["s"].stats()["origin"]["requests"])
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n"
                                 b"Cache-Control: max-age=60\r\n\r\n" + b"y" * 1000)
                except OSError:
                    pass

    th = threading.Thread(target=broken_origin, daemon=True)
    th.start()
    try:
        ups = {"origin": {"servers": [origin.addr]},
               "broken": {"servers": [f"{HOST}:{port}"], "connect_timeout": "500ms",
                          "timeout": "2s"}}
        s = strata(config_text=lambda s: cache_config(
            s, [cache_route("/b/*", upstream="broken")], {"hot": {"ttl": "10m"}}, upstreams=ups))
        holder["s"] = s
        results = []

        def client():
            try:
                r = s.get("/b/x", timeout=15)
                results.append((r.status, len(r.body)))
            except (http.client.IncompleteRead, http.client.RemoteDisconnected,
                    ConnectionResetError) as e:  # a cut-off answer: the honest signal
                results.append(("cut", repr(e)[:80]))
            except Exception as e:  # noqa: BLE001 - a timeout or anything else: a failure
                results.append(("error", repr(e)[:120]))

        threads = [threading.Thread(target=client) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
            assert not t.is_alive(), "a client hung behind a broken origin answer"
        assert s.alive(), f"strata died; log tail:\n{s.log()[-3000:]}"
        assert len(results) == 20
        assert not [r for r in results if r[0] == "error"], results
        assert seen_first == [1], f"the stampede did not collapse: {seen_first}"
        # Nobody got a short body presented as complete.
        assert all(r[0] == "cut" or r[0] >= 500 or r[1] == 10000 for r in results), results
        assert s.stats()["l1"]["entries"] == 0, "a truncated answer was stored"
        assert_still_serving(s)
    finally:
        stop.set()
        th.join(5)
        lst.close()
