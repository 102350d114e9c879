#!/usr/bin/env python3
"""A small JSON product API to put strata in front of (the README quick start).

GET  /api/products            list (Cache-Control: max-age=30)
GET  /api/products/{id}       one product (max-age=60, ETag, Surrogate-Key)
PUT  /api/products/{id}       replace one (JSON body)
POST /api/products            create one (201 + Location)
DELETE /api/products/{id}
GET  /api/slow                answers after 500 ms, to show caching
GET  /healthz
Every answer carries X-Origin-Hits, a per-path counter, so a cached answer
is easy to tell from a fresh one.
"""
import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
hits = {}
products = {
    str(i): {"id": str(i), "name": name, "price_cents": price}
    for i, (name, price) in enumerate(
        [("teapot", 2500), ("kettle", 4200), ("mug", 900), ("whisk", 750)], start=1)
}
next_id = len(products) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-origin/1.0"

    def log_message(self, fmt, *args):  # quiet: strata logs the traffic
        pass

    def count(self):
        with lock:
            hits[self.path] = hits.get(self.path, 0) + 1
            return hits[self.path]

    def send_json(self, status, obj, cache=None, extra=None):
        body = (json.dumps(obj, indent=None) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Origin-Hits", str(self.count()))
        if cache:
            self.send_header("Cache-Control", cache)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def product_id(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        return parts[2] if len(parts) == 3 and parts[:2] == ["api", "products"] else None

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/healthz":
            return self.send_json(200, {"status": "ok"}, cache="no-store")
        if path == "/api/slow":
            time.sleep(0.5)
            return self.send_json(200, {"slow": True, "at": time.time()}, cache="max-age=10")
        if path == "/api/products":
            with lock:
                items = list(products.values())
            return self.send_json(200, {"products": items}, cache="max-age=30",
                                  extra={"Surrogate-Key": "products"})
        pid = self.product_id()
        with lock:
            item = products.get(pid) if pid else None
        if item is None:
            return self.send_json(404, {"error": "not found"}, cache="max-age=5")
        etag = '"%s"' % hashlib.sha1(json.dumps(item).encode()).hexdigest()[:16]
        return self.send_json(200, item, cache="max-age=60",
                              extra={"ETag": etag, "Surrogate-Key": "products product-" + pid})

    do_HEAD = do_GET

    def do_PUT(self):
        pid = self.product_id()
        try:
            item = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "body is not JSON"})
        if pid is None or not isinstance(item, dict):
            return self.send_json(400, {"error": "PUT /api/products/{id} with a JSON object"})
        item["id"] = pid
        with lock:
            products[pid] = item
        return self.send_json(200, item)

    def do_POST(self):
        global next_id
        if self.path.split("?")[0] != "/api/products":
            return self.send_json(405, {"error": "POST /api/products only"})
        try:
            item = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "body is not JSON"})
        with lock:
            pid = str(next_id)
            next_id += 1
            item["id"] = pid
            products[pid] = item
        return self.send_json(201, item, extra={"Location": "/api/products/" + pid})

    def do_DELETE(self):
        pid = self.product_id()
        with lock:
            found = products.pop(pid, None) if pid else None
        if found is None:
            return self.send_json(404, {"error": "not found"})
        return self.send_json(200, {"deleted": pid})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT (default %(default)s)")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    print(f"demo origin on http://{args.listen}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
