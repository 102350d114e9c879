#!/usr/bin/env python3
"""The soak's origin: soak_origin.py PORT WRITES_LOG. GET /c/* answers a small body that
may be cached for a second; PUT and DELETE /wb/KEY append "KEY VALUE" to WRITES_LOG (so
a restarted origin still knows what it was sent) before answering 200; anything else
answers a small JSON body."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/c/"):
            self.answer(200, b"c" * 512, [("Cache-Control", "max-age=1")])
        else:
            self.answer(200, b'{"ok":true}\n', [("Content-Type", "application/json")])

    def write(self, value):
        if self.path.startswith("/wb/"):
            with open(sys.argv[2], "a") as f:
                f.write(f"{self.path[4:]} {value}\n")
        self.answer(200, b"")

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.write(self.rfile.read(n).decode())

    def do_DELETE(self):
        self.write("")


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
