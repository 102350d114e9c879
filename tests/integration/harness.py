"""Helpers shared by strata's integration tests: ports, waiting, an HTTP
client for ordinary requests, a raw-socket client for malformed, pipelined and
slow cases, config rendering and the running-strata handle."""

import http.client
import json
import os
import re
import select
import signal
import random
import socket
import subprocess
import time
from dataclasses import dataclass

from scripted_origin import pattern_bytes

HOST = "127.0.0.1"


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_rng = random.Random(os.getpid() ^ int(time.time() * 1000))
_handed_out = set()  # never the same port twice: some (the "down" upstream) stay unbound


def _port_ranges(lo, hi):
    """The port ranges outside the ephemeral range lo-hi, largest first: from 10000
    up when there is room below it (clear of the usual service ports), else from 1024."""
    gaps = [(10000 if lo > 11000 else 1024, lo - 1), (hi + 1, 65535)]
    return sorted((g for g in gaps if g[0] <= g[1]), key=lambda g: g[1] - g[0], reverse=True)


def free_port():
    """A free port OUTSIDE the kernel's ephemeral range: a port from bind(0)
    can be taken by any outgoing connection (the suite's own clients, strata's
    upstream connections) between this check and the server's bind. Each port
    is handed out once per test run: a port meant to stay closed (the "down"
    upstream) must not come back as some server's listener. When the
    ephemeral range leaves no room (e.g. 1024-65535), a port from bind(0)."""
    ranges = _port_ranges(*_ephemeral_range())
    for _ in range(200 if ranges else 0):
        a, b = ranges[0]
        port = _rng.randint(a, b)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise AssertionError("no free port that was not handed out already")


def wait_until(cond, timeout=5.0, interval=0.02, msg=None):
    """Poll cond() until it returns a truthy value; return it, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition may fail while not ready
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{msg or getattr(cond, '__name__', 'condition')}{detail}")
        time.sleep(interval)


# ---- responses ------------------------------------------------------------

@dataclass
class Response:
    status: int
    reason: str
    headers: list  # [(name, value)]
    body: bytes
    version: str = "HTTP/1.1"

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def request(port, method="GET", path="/", body=None, headers=None, timeout=5.0):
    """One request on a new connection (http.client); returns a Response."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data,
                        "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
    finally:
        conn.close()


def get(port, path, headers=None, timeout=5.0):
    return request(port, "GET", path, headers=headers, timeout=timeout)


# ---- raw client -------------------------------------------------------------

class ConnectionClosed(Exception):
    pass


class RawConn:
    """A raw TCP client: send bytes, read responses with a deadline."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def readable(self, timeout=0.0):
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def _fill(self, deadline):
        """Read more into buf; False on EOF/reset. Raises TimeoutError at deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline reached while reading response")
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise TimeoutError("deadline reached while reading response")
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _until(self, sep, deadline):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if not self._fill(deadline):
                raise ConnectionClosed(f"connection closed; got {self.buf[:200]!r}")

    def _exactly(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionClosed(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, timeout=5.0, head_request=False):
        """Read one response (an interim 1xx is returned as its own Response)."""
        deadline = time.monotonic() + timeout
        try:
            head = self._until(b"\r\n\r\n", deadline).decode("latin-1")
        except ConnectionClosed:
            raise ConnectionClosed(f"connection closed before a response head; got {self.buf[:200]!r}")
        lines = head.split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        status = int(status)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        resp = Response(status, reason[0] if reason else "", headers, b"", version)
        if head_request or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            parts = []
            while True:
                size = int(self._until(b"\r\n", deadline).split(b";")[0].strip(), 16)
                if size == 0:
                    while self._until(b"\r\n", deadline) != b"":
                        pass
                    break
                parts.append(self._exactly(size, deadline))
                if self._exactly(2, deadline) != b"\r\n":
                    raise AssertionError("bad chunk framing from strata")
            resp.body = b"".join(parts)
        elif cl is not None:
            resp.body = self._exactly(int(cl), deadline)
        else:
            while self._fill(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def read_final(self, timeout=5.0, head_request=False):
        """Read responses, skipping interim 1xx ones; return the final one."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.read_response(max(0.01, deadline - time.monotonic()), head_request)
            if r.status >= 200:
                return r

    def is_closed(self, timeout=3.0):
        """True if the peer closes (EOF or reset) within timeout with no further data."""
        deadline = time.monotonic() + timeout
        while True:
            if self.buf:
                return False
            try:
                if not self._fill(deadline):
                    return True
            except TimeoutError:
                return False


def req_bytes(method, path, headers=(), body=b"", host="strata.test"):
    """Serialise a request; headers is a list of (name, value)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


# ---- config ------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_.%-]+$")


def yval(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k}: {yval(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yval(x) for x in v) + "]"
    s = str(v)
    return s if _PLAIN.match(s) and s not in ("true", "false", "null", "yes", "no") else json.dumps(s)


DEFAULT_LIMITS = {"max_header_bytes": "8KiB", "max_body": "2MiB",
                  "header_timeout": "1s", "idle_timeout": "5s"}


def default_upstreams(origin_addr, down_addr):
    return {
        "origin": {"servers": [origin_addr], "connect_timeout": "500ms",
                   "timeout": "1s", "keepalive": 8},
        "down": {"servers": [down_addr], "connect_timeout": "500ms", "timeout": "1s"},
    }


DEFAULT_ROUTES = [
    {"match": "/down/*", "upstream": "down", "strategy": "bypass"},
    {"match": "/*", "upstream": "origin", "strategy": "bypass"},
]


def render_config(port, admin_port, upstreams, routes, limits=None, workers=2, extra=""):
    out = [f'listen: "{HOST}:{port}"',
           f"workers: {workers}",
           f'admin: {{ listen: "{HOST}:{admin_port}" }}']
    lim = dict(DEFAULT_LIMITS)
    lim.update(limits or {})
    out.append(f"limits: {yval(lim)}")
    if extra:
        out.append(extra.rstrip("\n"))
    out.append("upstreams:")
    for name, u in upstreams.items():
        out.append(f"  {name}: {yval(u)}")
    out.append("routes:")
    for r in routes:
        out.append(f"  - {yval(r)}")
    return "\n".join(out) + "\n"


# ---- the running server -------------------------------------------------------

class Strata:
    def __init__(self, binary, workdir, origin_addr, down_addr, name="strata"):
        self.binary = binary
        self.workdir = workdir
        self.origin_addr = origin_addr
        self.down_addr = down_addr
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = str(workdir / f"{name}.yaml")
        self.err_path = str(workdir / f"{name}.stderr")
        self.out_path = str(workdir / f"{name}.stdout")
        self.proc = None
        self.stopped = False
        self.wrap = []  # a command strata runs under (it must exec strata: same pid)

    def render(self, routes=None, upstreams=None, limits=None, workers=2, extra=""):
        return render_config(self.port, self.admin_port,
                             upstreams or default_upstreams(self.origin_addr, self.down_addr),
                             routes if routes is not None else DEFAULT_ROUTES,
                             limits, workers, extra)

    def start(self, config_text, ready_timeout=10.0):
        with open(self.config_path, "w") as f:
            f.write(config_text)
        if not os.path.exists(self.binary):
            raise AssertionError(f"strata binary not found at {self.binary} "
                                 "(build with `meson setup build && ninja -C build`)")
        # The child keeps its own copies of the log descriptors; ours close here.
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.wrap + [self.binary, "-c", self.config_path],
                                         stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"strata exited early with {self.proc.returncode}; "
                                     f"log:\n{self.log()[-3000:]}")
            try:
                return self.admin_get("/healthz", timeout=0.5).status == 200
            except OSError:
                return False

        deadline = time.monotonic() + ready_timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"strata not healthy within {ready_timeout}s; "
                                     f"log:\n{self.log()[-3000:]}")
            time.sleep(0.02)
        return self

    def log(self):
        text = ""
        for p in (self.err_path, self.out_path):
            try:
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def reload(self, config_text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(config_text)
        os.replace(tmp, self.config_path)
        self.proc.send_signal(signal.SIGHUP)

    def admin_get(self, path, timeout=2.0):
        return request(self.admin_port, "GET", path, timeout=timeout)

    def stats(self):
        r = self.admin_get("/stats")
        assert r.status == 200, f"/stats answered {r.status}"
        return r.json()

    def get(self, path, headers=None, timeout=5.0):
        return get(self.port, path, headers=headers, timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal and wait; returns the exit code (kills -9 and fails after timeout)."""
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"strata did not exit within {timeout}s of signal {sig}; "
                                 f"log tail:\n{self.log()[-3000:]}")


def assert_still_serving(s, path="/echo"):
    """A normal GET on a NEW connection still succeeds after an error case."""
    r = s.get(f"{path}?still=serving")
    assert r.status == 200, f"follow-up GET {path} answered {r.status}: {r.body[:200]!r}"
    assert r.json()["path"] == path
    assert s.alive(), "strata died"


# ---- cache helpers -------------------------------------------------------------

def script_blob(origin):
    """/m?bytes=N: N pattern bytes with Content-Length, head and body in one write
    (the built-in /big writes them separately, which Nagle + delayed ACK slow down)."""
    def fn(req):
        n = int(dict(kv.split("=", 1) for kv in req.query.split("&") if "=" in kv)["bytes"])
        return 200, [("Content-Type", "application/octet-stream")], pattern_bytes(n)
    origin.script("/m", fn)



def cache_route(match="/c/*", tier="hot", upstream="origin", **kw):
    """A cache-aside route dict; extra keys (ttl_source, invalidates, key, ...) via kw."""
    r = {"match": match, "upstream": upstream, "strategy": "cache-aside", "tier": tier}
    r.update(kw)
    return r


def cache_config(s, routes, tiers, memory="256MiB", max_object="1MiB", upstreams=None,
                 workers=2, limits=None, admin_token=None, upstream_timeout=None):
    """Config text for strata `s` with a `cache:` block and `tiers:`; a bypass
    catch-all route is appended. upstream_timeout overrides the origin's read timeout."""
    ups = upstreams or default_upstreams(s.origin_addr, s.down_addr)
    if upstream_timeout:
        ups = {k: dict(v, timeout=upstream_timeout) for k, v in ups.items()}
    extra = [f"cache: {{ memory: {memory}, max_object: {max_object} }}", "tiers:"]
    extra += [f"  {name}: {yval(t)}" for name, t in tiers.items()]
    text = render_config(s.port, s.admin_port, ups,
                         list(routes) + [{"match": "/*", "upstream": "origin",
                                          "strategy": "bypass"}],
                         limits, workers, "\n".join(extra))
    if admin_token is not None:
        text = text.replace(f'admin: {{ listen: "{HOST}:{s.admin_port}" }}',
                            f'admin: {{ listen: "{HOST}:{s.admin_port}", '
                            f'token: {json.dumps(admin_token)} }}')
    return text


class CacheStatus:
    """The `strata` member of a Cache-Status header (RFC 9211), parsed."""

    def __init__(self, raw):
        self.raw = raw
        self.params = {}
        if raw is None:
            return
        for member in raw.split(","):
            parts = [p.strip() for p in member.split(";")]
            if parts[0] != "strata":
                continue
            for p in parts[1:]:
                k, eq, v = p.partition("=")
                self.params[k.strip()] = v.strip().strip('"') if eq else True

    def __contains__(self, name):
        return name in self.params

    def get(self, name):
        return self.params.get(name)

    @property
    def fresh_hit(self):
        return "hit" in self and (self.ttl or 0) >= 0 and self.get("detail") in (None, "l2")

    @property
    def ttl(self):
        v = self.params.get("ttl")
        return int(v) if v not in (None, True) else None

    @property
    def fwd(self):
        return self.params.get("fwd")

    def __repr__(self):
        return f"Cache-Status({self.raw!r})"


def cache_status(resp):
    return CacheStatus(resp.header("Cache-Status"))


def dig(d, path):
    """d["a"]["b"] for path "a.b" or ("a", "b") (a tuple when a key holds dots or slashes)."""
    for part in (path.split(".") if isinstance(path, str) else path):
        d = d[part]
    return d


def settle_stats(s, expect, timeout=2.0):
    """Wait until every stats path in expect equals its value, e.g.
    {"cache.hits": 3, ("routes", "/c/*", "hits"): 3}; a value may be a predicate
    on the whole stats dict. Returns the stats, or fails listing the mismatches."""
    last = {}

    def ok():
        nonlocal last
        last = s.stats()
        return all((v(last) if callable(v) else dig(last, k) == v) for k, v in expect.items())

    try:
        wait_until(ok, timeout, msg="stats to settle")
    except AssertionError:
        bad = {}
        for k, v in expect.items():
            if callable(v):
                if not v(last):
                    bad[k] = "predicate false"
            else:
                try:
                    got = dig(last, k)
                except (KeyError, TypeError):
                    got = "<missing>"
                if got != v:
                    bad[k] = f"want {v!r}, got {got!r}"
        raise AssertionError(f"/stats mismatch: {bad}; stats: "
                             f"{json.dumps({k: last.get(k) for k in ('cache', 'tiers', 'routes', 'l1', 'invalidations')})}")
    return last


def admin_invalidate(s, body, token=None, timeout=2.0):
    """POST /invalidate on the admin port; body is a dict (sent as JSON) or raw bytes."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return request(s.admin_port, "POST", "/invalidate", body=data, headers=headers,
                   timeout=timeout)
