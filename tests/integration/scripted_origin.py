"""A scripted HTTP/1.1 origin for strata's black-box tests.

It runs in the test process (one thread per connection) so tests can inspect
what strata actually sent: every request is recorded (method, target, headers
in wire order and case, body, which TCP connection carried it), requests are
counted per path, and distinct TCP connections are counted.

Endpoints (any method; HEAD answers with headers only):
  /echo               JSON description of the request (the default for unknown paths)
  /status/<code>      that status, small text body
  /delay/<ms>         waits, then 200
  /hang               reads the request, never answers (until the origin stops)
  /chunked?parts=N    chunked response, content from chunked_parts(N)
  /big?bytes=N        N bytes of pattern_bytes() with Content-Length, 64 KiB writes
  /close              no Content-Length, body CLOSE_BODY delimited by close
  /json/<anything>    small JSON {"id": <anything>, "ok": true}
  /garbage            writes "NOT HTTP\\r\\n\\r\\n" and closes
Tests can override a path with origin.script(path, fn): fn(req) returns
(status, [(name, value)...], body_bytes); a header ("X-Interim", "103 Name: value")
sends that interim (1xx) answer before the final one.
"""

import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

PATTERN_BLOCK = bytes(range(256)) * 256  # 64 KiB; period 256 so slices line up


def pattern_bytes(n):
    """The first n bytes of the /big and /close pattern."""
    reps, rest = divmod(n, len(PATTERN_BLOCK))
    return PATTERN_BLOCK * reps + PATTERN_BLOCK[:rest]


def pattern_sha256(n):
    h = hashlib.sha256()
    reps, rest = divmod(n, len(PATTERN_BLOCK))
    for _ in range(reps):
        h.update(PATTERN_BLOCK)
    h.update(PATTERN_BLOCK[:rest])
    return h.hexdigest()


def chunked_parts(n):
    """The chunks /chunked?parts=n sends (each non-empty, distinct sizes)."""
    return [(f"part {i:04d} of {n:04d};" * (i % 7 + 1)).encode() for i in range(n)]


CLOSE_BODY = pattern_bytes(100 * 1024 + 17)
JSON_CT = "application/json"

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
    418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


class _Closed(Exception):
    pass


@dataclass
class OriginRequest:
    method: str
    target: str
    version: str
    headers: list  # [(name, value)] in wire order and case
    body: bytes
    conn_id: int
    chunked: bool  # the request body came chunked
    t: float = field(default_factory=time.monotonic)

    @property
    def path(self):
        return urlsplit(self.target).path

    @property
    def query(self):
        return urlsplit(self.target).query

    def header(self, name):
        """First value of header `name` (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_header(self, name):
        return self.header(name) is not None


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buf += data

    def until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise _Closed()
            self._more()

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Origin:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.counts = Counter()  # path (no query) -> requests
        self.requests = []  # OriginRequest, in arrival order
        self.connections = 0  # TCP connections accepted
        self.big_sent = 0  # bytes written by /big so far
        self.scripts = {}
        self.prefix_scripts = []  # [(prefix, fn)]: for paths with no exact script
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        self._socks = set()
        self._threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = f"{host}:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    # ---- inspection -------------------------------------------------------
    def count(self, path):
        with self.lock:
            return self.counts[path]

    def requests_for(self, path):
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def last(self, path=None):
        with self.lock:
            for r in reversed(self.requests):
                if path is None or r.path == path:
                    return r
        return None

    def total(self):
        with self.lock:
            return len(self.requests)

    def script(self, path, fn):
        self.scripts[path] = fn

    def script_prefix(self, prefix, fn):
        """Answer every path under prefix (that has no exact script) with fn(req)."""
        self.prefix_scripts.append((prefix, fn))

    def script_versioned(self, path, headers=(), status=200, delay=0.0, body=None, gate=None):
        """Script `path` so the n-th request to it (counted per path) is answered
        with body b"<path> v<n>\n" (or body(req, n)). headers and status may be
        callables (req, n) -> value. delay seconds, or a threading.Event gate
        (waited for up to 10 s), hold the answer back."""
        def fn(req):
            n = self.count(req.path)
            if gate is not None:
                gate.wait(10)
            if delay:
                self.stopping.wait(delay)
            st = status(req, n) if callable(status) else status
            h = list(headers(req, n) if callable(headers) else headers)
            b = body(req, n) if body is not None else f"{req.path} v{n}\n".encode()
            return st, h, b
        self.script(path, fn)
        return fn

    # ---- lifecycle ----------------------------------------------------------
    def stop(self):
        self.stopping.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)
        self._acceptor.join(timeout=2)

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            cid = next(self._ids)
            with self.lock:
                self.connections += 1
                self._socks.add(s)
            t = threading.Thread(target=self._serve, args=(s, cid), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, s, cid):
        rd = _Reader(s)
        try:
            while not self.stopping.is_set():
                req = self._read_request(rd, s, cid)
                with self.lock:
                    self.counts[req.path] += 1
                    self.requests.append(req)
                if not self._dispatch(s, req):
                    break
        except (_Closed, OSError, ValueError):
            pass
        finally:
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _read_request(self, rd, s, cid):
        head = rd.until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        while lines and lines[0] == "":  # tolerate stray CRLF between requests
            lines.pop(0)
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        lower = {k.lower(): v for k, v in headers}
        te = lower.get("transfer-encoding", "").lower()
        cl = lower.get("content-length")
        has_body = "chunked" in te or (cl is not None and int(cl) > 0)
        if has_body and lower.get("expect", "").lower() == "100-continue":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        chunked = False
        if "chunked" in te:
            chunked = True
            parts = []
            while True:
                size_line = rd.until(b"\r\n").decode("latin-1")
                size = int(size_line.split(";")[0].strip(), 16)
                if size == 0:
                    while rd.until(b"\r\n") != b"":  # trailers
                        pass
                    break
                parts.append(rd.exactly(size))
                if rd.exactly(2) != b"\r\n":
                    raise ValueError("bad chunk framing")
            body = b"".join(parts)
        elif cl is not None:
            body = rd.exactly(int(cl))
        return OriginRequest(method, target, version, headers, body, cid, chunked)

    # ---- responses ----------------------------------------------------------
    @staticmethod
    def _keep_alive(req):
        conn = (req.header("Connection") or "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    def _send(self, s, req, status, headers, body):
        ka = self._keep_alive(req)
        # ("X-Interim", "103 Link: </a.css>; rel=preload") sends an interim answer first.
        for k, v in [h for h in headers if h[0] == "X-Interim"]:
            code, _, line = v.partition(" ")
            head = f"HTTP/1.1 {code} Early Hints\r\n" + (f"{line}\r\n" if line else "") + "\r\n"
            s.sendall(head.encode("latin-1"))
        headers = [h for h in headers if h[0] != "X-Interim"]
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        names = {k.lower() for k, _ in headers}
        no_body_status = status in (204, 304) or 100 <= status < 200
        if "content-length" not in names and "transfer-encoding" not in names and not no_body_status:
            headers = headers + [("Content-Length", str(len(body)))]
        if not ka:
            headers = headers + [("Connection", "close")]
        lines += [f"{k}: {v}" for k, v in headers]
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if req.method != "HEAD" and not no_body_status:
            out += body
        s.sendall(out)
        return ka

    def _misbehave(self, s, raw):
        """Send raw bytes; then "rst" resets, "stall" holds the connection until stop."""
        data, then = raw
        s.sendall(data)
        if then == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif then == "stall":
            self.stopping.wait()
        return False

    def _dispatch(self, s, req):
        """Answer req; return True to keep the connection for another request."""
        path = req.path
        q = parse_qs(req.query)
        fn = self.scripts.get(path)
        if fn is None:
            fn = next((f for p, f in self.prefix_scripts if path.startswith(p)), None)
        if fn is not None:
            status, headers, body = fn(req)
            return self._send(s, req, status, list(headers), body)
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self._send(s, req, code, [("Content-Type", "text/plain")],
                              f"status {code}\n".encode())
        if path.startswith("/delay/"):
            ms = int(path.split("/")[2])
            if self.stopping.wait(ms / 1000.0):
                return False
            return self._send(s, req, 200, [("Content-Type", "text/plain")],
                              f"delayed {ms}\n".encode())
        if path == "/hang":
            self.stopping.wait()
            return False
        if path == "/chunked":
            parts = chunked_parts(int(q.get("parts", ["5"])[0]))
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Transfer-Encoding: chunked\r\nX-Origin: scripted\r\n\r\n")
            s.sendall(head)
            if req.method == "HEAD":
                return self._keep_alive(req)
            for p in parts:
                s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
            s.sendall(b"0\r\n\r\n")
            return self._keep_alive(req)
        if path == "/big":
            n = int(q.get("bytes", ["1048576"])[0])
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Length: {n}\r\n\r\n").encode()
            s.sendall(head)
            if req.method == "HEAD":
                return self._keep_alive(req)
            sent = 0
            while sent < n:
                k = min(len(PATTERN_BLOCK), n - sent)
                s.sendall(PATTERN_BLOCK[:k])
                sent += k
                with self.lock:
                    self.big_sent += k
            return self._keep_alive(req)
        if path == "/close":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            s.sendall(head if req.method == "HEAD" else head + CLOSE_BODY)
            s.shutdown(socket.SHUT_WR)
            return False
        if path == "/garbage":
            s.sendall(b"NOT HTTP\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            return False
        raw = MISBEHAVIOURS.get(path)
        if raw is not None:
            return self._misbehave(s, raw)
        if path.startswith("/json/"):
            body = json.dumps({"id": path[len("/json/"):], "ok": True}).encode()
            return self._send(s, req, 200, [("Content-Type", JSON_CT),
                                            ("X-Origin", "scripted"),
                                            ("ETag", '"v1"')], body)
        return self._send(s, req, 200, [("Content-Type", JSON_CT), ("X-Origin", "scripted")],
                          echo_body(req))


# Origins that misbehave (path -> (bytes sent, then: "rst" | "stall" | "close")).
MISBEHAVIOURS = {
    "/bad/rst-mid-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n"
                          b"Cache-Control: max-age=60\r\n\r\n" + b"a" * 1000, "rst"),
    "/bad/stall-mid-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n"
                            b"Cache-Control: max-age=60\r\n\r\n" + b"a" * 1000, "stall"),
    "/bad/chunk-framing": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                           b"Cache-Control: max-age=60\r\n\r\n5\r\nhello\r\nzz\r\n", "close"),
    "/bad/cl-and-te": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                       b"Cache-Control: max-age=60\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "close"),
    "/bad/two-cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n"
                    b"Cache-Control: max-age=60\r\n\r\nhello!!", "close"),
    "/bad/longer-than-declared": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                  b"Cache-Control: max-age=60\r\n\r\nhelloEXTRA BYTES", "close"),
    "/bad/no-status": (b"HTTP/1.1 \n\r\nuntil close", "close"),
    # A 1xx with a body: no body is a 1xx's, so "6\r\nhel..." is not a response.
    "/bad/interim-body": (b"HTTP/1.1 199 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"6\r\nhello!\r\n0\r\n\r\n", "close"),
    "/bad/huge-headers": (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"h" * (200 * 1024) + b"\r\n"
                          b"Content-Length: 2\r\n\r\nok", "close"),
}


def echo_body(req):
    return json.dumps({
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": [[k, v] for k, v in req.headers],
        "body_len": len(req.body),
        "body_sha256": hashlib.sha256(req.body).hexdigest(),
        "conn": req.conn_id,
    }).encode()
