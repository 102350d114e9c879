#!/usr/bin/env python3
"""bench/py/stampede_client.py - N clients fire one GET each at the same URL
at the same moment, and each one's latency is measured.

One thread, non-blocking sockets: all N connections are opened first; then
the N requests (HTTP/1.1, Connection: close) are written back to back, each
stamped with its own send time, and a selector loop reads every answer to
its end (the server's close), stamping the moment the last byte arrives.
Parsing happens after the clock stops. (An earlier version used one thread
per client; with 200 Python threads on one core, waking them and parsing in
each added up to ~80 ms to the slowest answers, for every server alike.)

Prints one JSON object: status counts, latency p50/p90/max/min (ms, from
each request's own send), the spread of the send times, and the cache
headers seen (Cache-Status, X-Cache-Status, X-Varnish shapes).

usage: stampede_client.py URL[,URL...] [CLIENTS] [TIMEOUT_S]

With several URLs (several strata instances on one Redis), client i goes to
URL i mod n, every request with the first URL's Host (one cache key).
"""
import json
import re
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit


def parse(raw):
    """(status, {lower-case header: value}, body length) of one raw answer."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, 0
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, len(body)


def main():
    urls = [urlsplit(u) for u in sys.argv[1].split(",")]
    url = urls[0]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    path = url.path or "/"
    request = (f"GET {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
               "Connection: close\r\n\r\n").encode()

    results = [None] * n
    socks = {}
    for i in range(n):
        to = urls[i % len(urls)]
        try:
            s = socket.create_connection((to.hostname, to.port), timeout=timeout)
        except OSError as e:
            results[i] = {"status": f"connect: {e.__class__.__name__}"}
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks[i] = s

    sel = selectors.DefaultSelector()
    t0 = {}
    bufs = {}
    for i, s in socks.items():
        t0[i] = time.perf_counter()
        try:
            s.sendall(request)
        except OSError as e:
            results[i] = {"status": f"send: {e.__class__.__name__}", "t0": t0[i]}
            s.close()
            continue
        s.setblocking(False)
        bufs[i] = []
        sel.register(s, selectors.EVENT_READ, i)

    t1 = {}
    deadline = time.perf_counter() + timeout
    while sel.get_map() and time.perf_counter() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.perf_counter())):
            i = key.data
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                bufs[i].append(chunk)
                continue
            t1[i] = time.perf_counter()
            sel.unregister(key.fileobj)
            key.fileobj.close()
    for key in list(sel.get_map().values()):  # still open at the deadline
        results[key.data] = {"status": "error: timeout", "t0": t0[key.data]}
        key.fileobj.close()

    for i in t1:
        status, h, nbytes = parse(b"".join(bufs[i]))
        if status is None:
            results[i] = {"status": "error: no HTTP answer", "t0": t0[i]}
            continue
        results[i] = {
            "status": status, "t0": t0[i], "ms": (t1[i] - t0[i]) * 1000, "bytes": nbytes,
            "cs": h.get("cache-status", ""), "xcs": h.get("x-cache-status", ""),
            "xv": h.get("x-varnish", ""), "via": h.get("via", ""),
        }

    status, kinds = {}, {}
    lat, starts = [], []
    for r in results:
        r = r or {"status": "no result"}
        status[str(r["status"])] = status.get(str(r["status"]), 0) + 1
        if "t0" in r:
            starts.append(r["t0"])
        if "ms" not in r:
            continue
        lat.append(r["ms"])
        if r["cs"]:
            k = "Cache-Status: " + re.sub(r"ttl=-?\d+", "ttl=N", r["cs"])
        elif r["xcs"]:
            k = "X-Cache-Status: " + r["xcs"]
        elif "ApacheTrafficServer" in r.get("via", ""):
            m = re.search(r"\[([^\]]*)\]", r["via"])
            k = "Via (ATS): [%s]" % (m.group(1) if m else r["via"])
        elif r["xv"]:
            k = "X-Varnish: %d id(s)" % len(r["xv"].split())
        else:
            k = "(no cache header)"
        kinds[k] = kinds.get(k, 0) + 1
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    print(json.dumps({
        "clients": n, "status": status, "answered": len(lat),
        "p50_ms": pct(0.5), "p90_ms": pct(0.9),
        "max_ms": round(lat[-1], 1) if lat else None, "min_ms": round(lat[0], 1) if lat else None,
        "send_spread_ms": round((max(starts) - min(starts)) * 1000, 1) if starts else None,
        "headers": kinds,
    }))


if __name__ == "__main__":
    main()
