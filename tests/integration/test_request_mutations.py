"""Mutated requests against the real server: a thousand mutations of valid requests (cache
hits and misses, HEAD, conditional, bodies by Content-Length and chunked,
pipelined, absolute-form, HTTP/1.0) broken in seeded random ways (bytes
flipped, inserted, deleted, duplicated, truncated, CRLF turned into LF, huge
numbers, control characters in names and values). Each goes on its own
connection, which is then half-closed. Whatever strata does, it must answer
with well-formed HTTP responses only, close the connection within the
deadline (never hang on a client that has said everything), stay alive, and
keep serving normal requests and correct cached answers. The admin listener
gets the same treatment with its own requests (/stats, /metrics, health,
POST /invalidate with JSON bodies, chunked and pipelined). Under ASan + UBSan
in CI this also catches memory errors on every parse path the mutations reach.
"""

import os
import random
import socket
import time
from collections import Counter

from harness import HOST, assert_still_serving, cache_config, cache_route

ROUNDS = 100  # each round mutates every seed once

SEEDS = [
    b"GET /c/item/1 HTTP/1.1\r\nHost: strata.test\r\nAccept: application/json\r\n\r\n",
    b"HEAD /c/item/2?b=2&a=1 HTTP/1.1\r\nHost: strata.test\r\n\r\n",
    b'GET /c/item/1 HTTP/1.1\r\nHost: strata.test\r\nIf-None-Match: "x", W/"y"\r\n'
    b"Cache-Control: max-stale=5, min-fresh=1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: strata.test\r\nContent-Length: 11\r\n\r\nhello world",
    b"PUT /c/item/3 HTTP/1.1\r\nHost: strata.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    b"GET /c/item/1 HTTP/1.1\r\nHost: strata.test\r\n\r\n"
    b"GET /json/a HTTP/1.1\r\nHost: strata.test\r\n\r\n",
    b"GET http://strata.test/c/item/4 HTTP/1.1\r\nHost: strata.test\r\n\r\n",
    b"GET /c/item/5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"DELETE /c/item/1 HTTP/1.1\r\nHost: strata.test\r\nContent-Length: 0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: strata.test\r\nExpect: 100-continue\r\n"
    b"Content-Length: 4\r\n\r\nbody",
]

TOKENS = [b"\r\n", b"\n", b"\r", b"\x00", b":", b" ", b"\t", b"\x7f", b"\xff", b"%",
          b"99999999999999999999", b"-1", b"0x10", b",", b";", b"chunked", b"\r\n\r\n",
          b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"Host: x\r\n",
          b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Upgrade: h2c\r\n",
          b"/../", b"?", b"#", b"*", b"HTTP/1.1", b"HTTP/9.9"]


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a byte
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a token
            b[i:i] = rng.choice(TOKENS)
        elif op == 2 and b:  # delete a range
            del b[i:i + rng.randint(1, 8)]
        elif op == 3 and b:  # duplicate a range
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 40)]
        elif op == 4:  # truncate
            del b[i:]
        elif op == 5:  # bare LF line endings
            b = bytearray(bytes(b).replace(b"\r\n", b"\n"))
        elif op == 6:  # a long run of one byte
            b[i:i] = bytes([rng.randrange(256)]) * rng.choice([100, 5000, 40000])
        else:  # replace a number with a huge or negative one
            for n in (b"11", b"4", b"5", b"0", b"1"):
                k = bytes(b).find(n)
                if k >= 0:
                    b[k:k + len(n)] = rng.choice([b"18446744073709551616", b"-5", b"1e3", b" 4"])
                    break
    return bytes(b)


def exchange(port, data, deadline_s=8.0):
    """Send data, half-close, read to EOF. Returns the bytes strata sent, or
    raises AssertionError if the connection is still open at the deadline."""
    s = socket.create_connection((HOST, port), timeout=2)
    out = b""
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # strata closed (or reset) early: fine, read what it said
        end = time.monotonic() + deadline_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {deadline_s}s for {data[:300]!r}")
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                continue
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def check_responses(raw, sent):
    """Every response in raw starts with a valid status line; framing is
    followed where a length is given. Returns the statuses."""
    statuses = []
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\r\n\r\n", pos)
        assert end >= 0, f"truncated response head {raw[pos:pos + 200]!r} for {sent[:300]!r}"
        head = raw[pos:end].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0] in ("HTTP/1.1", "HTTP/1.0") and len(parts) >= 2, \
            f"bad status line {lines[0]!r} for {sent[:300]!r}"
        status = int(parts[1])
        assert 100 <= status <= 599, f"status {status} for {sent[:300]!r}"
        statuses.append(status)
        pos = end + 4
        length = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name and name == name.strip(), f"bad header line {line!r}"
            if name.lower() == "content-length":
                length = int(value.strip())
            if name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if 100 <= status < 200 or status in (204, 304):
            continue
        if chunked:
            while True:
                eol = raw.find(b"\r\n", pos)
                assert eol >= 0, f"truncated chunk size for {sent[:300]!r}"
                size = int(raw[pos:eol].split(b";")[0], 16)
                pos = eol + 2 + size + 2
                if size == 0:
                    break
            continue
        if length is not None:
            pos += length  # a HEAD answer has no body: a following head check catches it
            assert pos <= len(raw), f"body shorter than its Content-Length for {sent[:300]!r}"
            continue
        break  # body delimited by close
    return statuses


def run_mutations(s, port, seeds, seed_offset, every_10_rounds=None):
    """ROUNDS rounds, each mutating every seed once and sending it to port;
    strata must stay alive throughout. Returns the statuses seen."""
    rng = random.Random(int(os.environ.get("STRATA_MUTATION_SEED", "20261127")) + seed_offset)
    cases = 0
    seen = Counter()
    for round_ in range(ROUNDS):
        for seed in seeds:
            data = mutate(rng, seed)
            raw = exchange(port, data)
            if not data.lstrip(b"\r\n").startswith(b"HEAD"):
                seen.update(check_responses(raw, data))
            elif raw:
                assert raw.startswith(b"HTTP/1."), f"bad answer {raw[:100]!r} to {data[:300]!r}"
            cases += 1
        assert s.alive(), f"strata died after {cases} cases; log tail:\n{s.log()[-3000:]}"
        if every_10_rounds and round_ % 10 == 9:
            every_10_rounds()
    assert cases == ROUNDS * len(seeds)
    return seen


def test_mutated_requests_get_http_answers_and_the_server_keeps_serving(origin, strata):
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/c/*")], {"hot": {"ttl": "10m"}},
        limits={"header_timeout": "3s", "max_header_bytes": "16KiB", "max_body": "64KiB"}))
    # A cached entry for the mutations to hit.
    assert s.get("/c/item/1").status == 200
    seen = run_mutations(s, s.port, SEEDS, 0, lambda: assert_still_serving(s))
    # The mutations reached both sides: requests that still made sense were
    # served, broken ones were refused.
    assert sum(v for k, v in seen.items() if 200 <= k < 300) >= 30, seen
    assert sum(v for k, v in seen.items() if 400 <= k < 500) >= 30, seen

    assert_still_serving(s)
    # Whatever the mutations stored or invalidated, each key still answers
    # with its own object (the origin echoes the request that filled it).
    for path in ("/c/item/1", "/c/item/2", "/c/item/3"):
        r = s.get(path)
        assert r.status == 200 and r.json()["path"] == path, (path, r.status, r.body[:200])


ADMIN_SEEDS = [
    b"GET /stats HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\n\r\n",
    b'POST /invalidate HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n'
    b'Content-Length: 18\r\n\r\n{"prefix":"/c/1"}\n',
    b'POST /invalidate HTTP/1.1\r\nHost: a\r\nContent-Length: 29\r\n\r\n{"tag" : "t\\"x\\\\y\\/z", "a":1}',
    b'POST /invalidate HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'10\r\n{"key":"/c/item/\r\n3\r\n1"}\r\n0\r\n\r\n',
]


def test_mutated_admin_requests_get_http_answers_and_admin_keeps_serving(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route("/c/*")], {"hot": {"ttl": "10m"}}))
    assert s.get("/c/item/1").status == 200
    seen = run_mutations(s, s.admin_port, ADMIN_SEEDS, 1)
    assert sum(v for k, v in seen.items() if 200 <= k < 300) >= 25, seen
    assert sum(v for k, v in seen.items() if 400 <= k < 500) >= 100, seen
    assert s.admin_get("/healthz").status == 200
    assert s.stats()["l1"]["entries"] <= 1
    assert_still_serving(s)
