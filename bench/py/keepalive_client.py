#!/usr/bin/env python3
"""bench/py/keepalive_client.py - the deterministic client of `run.sh instr`:
one keep-alive connection (http.client), FILL requests (the first fills the
cache, the rest are warm-up hits), then N more requests, all `GET PATH`.
Every answer must be 200 with a body; prints one JSON line with the counts
and the cache headers of the last answer. Identical requests for every
server, so the instruction counts are comparable.

usage: keepalive_client.py URL FILL N
"""
import http.client
import json
import sys
from urllib.parse import urlsplit


def main():
    url = urlsplit(sys.argv[1])
    fill, n = int(sys.argv[2]), int(sys.argv[3])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    bad, last = 0, None
    for _ in range(fill + n):
        conn.request("GET", url.path or "/")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or not body:
            bad += 1
        last = r
    conn.close()
    hdr = {k: last.getheader(k) for k in ("Cache-Status", "X-Cache-Status") if last and last.getheader(k)}
    print(json.dumps({"requests": fill + n, "bad": bad, "last_headers": hdr}))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
