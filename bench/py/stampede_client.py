#!/usr/bin/env python3
"""bench/py/stampede_client.py - N clients fire one GET each at the same URL
at the same moment, and each one's latency is measured.

All N connections are opened first; then a barrier releases every thread at
once and each sends its request (HTTP/1.1, Connection: close) and reads the
whole answer. Prints one JSON object: status counts, latency p50/p90/max/min
(ms, from each request's own send), the spread of the send times, and the
cache headers seen (Cache-Status, X-Cache-Status, X-Varnish shapes).

usage: stampede_client.py URL [CLIENTS] [TIMEOUT_S]
"""
import http.client
import json
import re
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    url = urlsplit(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    path = url.path or "/"
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(i):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            conn.connect()
        except OSError as e:
            barrier.wait()
            results[i] = {"status": f"connect: {e.__class__.__name__}"}
            return
        barrier.wait()
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            t1 = time.perf_counter()
            results[i] = {
                "status": resp.status, "t0": t0, "ms": (t1 - t0) * 1000, "bytes": len(body),
                "cs": resp.getheader("Cache-Status", ""), "xcs": resp.getheader("X-Cache-Status", ""),
                "xv": resp.getheader("X-Varnish", ""), "via": resp.getheader("Via", ""),
            }
        except Exception as e:  # noqa: BLE001 - every failure is a result
            results[i] = {"status": f"error: {e.__class__.__name__}: {e}", "t0": t0}
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)

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
