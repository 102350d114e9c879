#!/usr/bin/env python3
"""bench/py/slow_origin.py - a slow origin for the stampede benchmark.

Every GET (except the two below) sleeps DELAY ms, then answers a 1 KiB JSON
body with `Cache-Control: max-age=3600`, and counts the request per path.
  GET /count?path=/cold/x  -> {"path": "/cold/x", "count": N}
  GET /count               -> {"<path>": N, ...} for every counted path
  GET /health              -> 200 "ok" (Cache-Control: no-store, not counted)

ThreadingHTTPServer: one thread per connection, HTTP/1.1 keep-alive, so a
proxy's pooled upstream connections work, and concurrent requests all wait
DELAY in parallel (a stampede that reaches the origin shows up as N requests).

usage: slow_origin.py PORT [DELAY_MS]   (listens on 127.0.0.1 only)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNTS = {}
LOCK = threading.Lock()
DELAY = 0.2


def body_1k():
    head = '{"id":42,"name":"strata-bench","kind":"item","price":1999,"tags":["a","b","c"],"pad":"'
    tail = '"}'
    return (head + "x" * (1024 - len(head) - len(tail)) + tail).encode()


BODY = body_1k()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, ctype, cache_control):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache_control)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/health":
            self.reply(200, b"ok", "text/plain", "no-store")
            return
        if url.path == "/count":
            q = parse_qs(url.query)
            with LOCK:
                if "path" in q:
                    p = q["path"][0]
                    out = {"path": p, "count": COUNTS.get(p, 0)}
                else:
                    out = dict(COUNTS)
            self.reply(200, json.dumps(out).encode(), "application/json", "no-store")
            return
        with LOCK:
            COUNTS[url.path] = COUNTS.get(url.path, 0) + 1
        time.sleep(DELAY)
        self.reply(200, BODY, "application/json", "max-age=3600")

    def log_message(self, fmt, *args):  # quiet: the proxies' checks are not news
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    global DELAY
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        DELAY = int(sys.argv[2]) / 1000.0
    srv = Server(("127.0.0.1", port), Handler)
    print(f"slow origin on 127.0.0.1:{port}, {DELAY * 1000:.0f} ms per request", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
