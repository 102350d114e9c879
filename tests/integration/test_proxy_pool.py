"""The upstream pool's retry of a dead pooled connection, and max_connections."""

import socket
import threading

from harness import HOST, RawConn, assert_still_serving, get, wait_until


class DroppingOrigin:
    """Answers the first request on each connection (keep-alive), then reads the
    next request on that connection and closes without answering, as an origin
    does when it closes an idle connection just as a request arrives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.addr = f"{HOST}:{self.sock.getsockname()[1]}"
        self.answered = []  # (connection number, request line)
        self.dropped = []
        self.lock = threading.Lock()
        self.conns = 0
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    @staticmethod
    def _read_request(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                need = int(line.split(b":")[1]) - len(rest)
                while need > 0:
                    chunk = s.recv(need)
                    if not chunk:
                        return None
                    need -= len(chunk)
        return head.split(b"\r\n")[0].decode()

    def _serve(self, s, n):
        with s:
            line = self._read_request(s)
            if line is None:
                return
            with self.lock:
                self.answered.append((n, line))
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            line = self._read_request(s)
            if line is not None:
                with self.lock:
                    self.dropped.append((n, line))

    def close(self):
        self.stop = True
        self.sock.close()


def start_with(strata, addr, **kw):
    def cfg(s):
        return s.render(upstreams={"drop": {"servers": [addr], "connect_timeout": "500ms",
                                            "timeout": "2s", "keepalive": 8}},
                        routes=[{"match": "/*", "upstream": "drop", "strategy": "bypass"}],
                        workers=1, **kw)
    return strata(config_text=cfg)


def test_idempotent_request_retried_once_on_a_dead_pooled_connection(strata):
    o = DroppingOrigin()
    try:
        s = start_with(strata, o.addr)
        assert get(s.port, "/first").status == 200
        r = get(s.port, "/second")  # goes out on the pooled connection, which dies
        assert r.status == 200, (r.status, r.body)
        assert len(o.dropped) == 1 and o.dropped[0][1].startswith("GET /second")
        assert [line.split()[1] for _, line in o.answered] == ["/first", "/second"]
        assert o.answered[1][0] != o.dropped[0][0], "the retry must use a new connection"
        st = s.stats()
        assert st["origin"]["retries"] == 1
        assert st["origin"]["errors"] == 0
    finally:
        o.close()


def test_post_is_not_retried(strata):
    o = DroppingOrigin()
    try:
        s = start_with(strata, o.addr)
        assert get(s.port, "/first").status == 200
        with RawConn(s.port) as c:
            c.send(b"POST /write HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
            r = c.read_final()
        assert r.status == 502
        assert len(o.answered) == 1, "a POST must not be sent twice"
        assert s.stats()["origin"]["retries"] == 0
    finally:
        o.close()


def test_max_connections_rejects_extra_clients(strata):
    s = strata(limits={"max_connections": 2}, workers=1)
    held = [socket.create_connection((HOST, s.port)) for _ in range(2)]
    wait_until(lambda: s.stats()["connections"]["open"] == 2, 3, msg="two open connections")
    extra = socket.create_connection((HOST, s.port))
    extra.settimeout(3)
    assert extra.recv(1) == b"", "the connection over max_connections must be closed"
    extra.close()
    st = s.stats()
    assert st["connections"]["rejected"] == 1
    for h in held:
        h.close()
    wait_until(lambda: s.stats()["connections"]["open"] == 0, 3, msg="connections closed")
    assert_still_serving(s)


def test_retry_budget_holds_under_an_origin_that_drops_every_reused_connection(strata):
    # Every pooled connection dies under its second request: without a budget each client
    # request after the first would be sent twice. The budget (10% of requests, plus 3 per
    # worker per 10 s) keeps the origin's load near the clients'.
    o = DroppingOrigin()
    try:
        s = start_with(strata, o.addr)
        n = 100
        statuses = [get(s.port, f"/b{i}").status for i in range(n)]
        sent = len(o.answered) + len(o.dropped)
        assert sent <= n * 1.1 + 3, (sent, statuses.count(200))
        st = s.stats()["origin"]
        # Every dead pooled connection was either retried within the budget or not retried.
        assert st["retries"] + st["retries_denied"] == len(o.dropped), (st, len(o.dropped))
        assert st["retries"] <= n * 0.1 + 3 and st["retries_denied"] >= n // 4, st
        # A retry not sent is the client's error at once, not a hang: 502 for a dead connection.
        assert set(statuses) <= {200, 502}, statuses
        assert statuses.count(502) == st["retries_denied"], statuses
        assert s.alive()
    finally:
        o.close()
