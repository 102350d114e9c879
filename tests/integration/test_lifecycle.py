"""Process lifecycle: SIGHUP reload (good, unparsable, invalid and missing files; a
request in flight across it), graceful SIGTERM with a request in flight, the drain
deadline, the idle timeout, SIGKILL under load and a restart on the same ports, and
the CLI (--check, --version)."""

import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import (HOST, RawConn, Strata, assert_still_serving, cache_config, cache_route,
                     default_upstreams, free_port, get, req_bytes, wait_until)

ORIGIN_ONLY = [{"match": "/*", "upstream": "origin", "strategy": "bypass"}]


def test_reload_moves_prefix_to_other_upstream(origin, strata):
    s = strata(routes=[{"match": "/new/*", "upstream": "down", "strategy": "bypass"}]
               + ORIGIN_ONLY)
    assert s.get("/new/x").status == 502
    s.reload(s.render(routes=[{"match": "/new/*", "upstream": "origin", "strategy": "bypass"}]
                      + ORIGIN_ONLY))
    wait_until(lambda: s.get("/new/x").status == 200, 5, msg="reloaded route to serve 200")
    for _ in range(6):  # new connections land on either worker: all must have the new config
        assert s.get("/new/x").status == 200
    assert origin.count("/new/x") >= 7
    assert s.alive()


def test_reload_adds_route(origin, strata):
    api = [{"match": "/api/*", "upstream": "origin", "strategy": "bypass"}]
    s = strata(routes=api)
    assert s.get("/other/y").status == 404
    s.reload(s.render(routes=api + [{"match": "/other/*", "upstream": "origin",
                                     "strategy": "bypass"}]))
    wait_until(lambda: s.get("/other/y").status == 200, 5, msg="new route to serve 200")
    assert origin.count("/other/y") >= 1


def test_reload_with_bad_config_keeps_old_one(origin, strata):
    s = strata()
    good = s.render()
    assert good.splitlines()[1].startswith("workers: ")
    lines = good.splitlines()
    lines[1] = "workers: 2: 3"  # YAML syntax error on line 2
    bad = "\n".join(lines).replace('"/*"', '"/nope/*"') + "\n"
    s.reload(bad)
    where = re.compile(re.escape(s.config_path) + r":2\b")
    wait_until(lambda: where.search(s.log()), 5, msg=f"log to mention {s.config_path}:2")
    assert s.alive(), "strata exited on a bad reload"
    assert_still_serving(s)  # the old catch-all route still serves
    # and a later good reload still takes effect
    s.reload(s.render(routes=[{"match": "/echo", "upstream": "down", "strategy": "bypass"}]
                      + ORIGIN_ONLY))
    wait_until(lambda: s.get("/echo").status == 502, 5, msg="good reload after a bad one")


def test_sigterm_finishes_in_flight_request_and_exits_0(origin, strata, down_port):
    ups = default_upstreams(origin.addr, f"127.0.0.1:{down_port}")
    ups["origin"]["timeout"] = "5s"
    s = strata(upstreams=ups)
    result = {}

    def slow():
        try:
            result["r"] = get(s.port, "/delay/1500", timeout=10)
        except Exception as e:  # noqa: BLE001 - reported below
            result["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: origin.count("/delay/1500") == 1, 3, msg="request to reach the origin")
    s.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert "e" not in result, f"in-flight request failed: {result.get('e')!r}"
    assert result["r"].status == 200
    assert result["r"].body == b"delayed 1500\n"
    s.stopped = True  # no second signal from the fixture: this one must suffice
    try:
        rc = s.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        s.proc.wait()
        raise AssertionError("strata did not exit within 10 s of SIGTERM")
    assert rc == 0, f"exit code {rc}; log tail:\n{s.log()[-2000:]}"


def test_killed_mid_traffic_restarts_on_the_same_ports(origin, strata, tmp_path):
    """SIGKILL while clients are mid-answer (large cached hits and slow misses):
    a new process with the same config binds the same ports at once, answers
    from a cold cache and fills it again."""
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/big"), cache_route("/delay/*")], {"hot": {"ttl": "10m"}},
        max_object="2MiB"))
    big = "/big?bytes=1000000"
    assert s.get(big).status == 200
    stop = threading.Event()

    def load(path):
        while not stop.is_set():
            try:
                get(s.port, path, timeout=5)
            except Exception:  # noqa: BLE001 - the server is killed under it
                pass

    threads = [threading.Thread(target=load, args=(p,)) for p in (big, big, "/delay/300")]
    for t in threads:
        t.start()
    wait_until(lambda: origin.count("/delay/300") >= 1, 5, msg="load to reach the origin")
    s.proc.kill()
    s.proc.wait(timeout=10)
    s.stopped = True
    stop.set()
    for t in threads:
        t.join(10)
    s2 = Strata(s.binary, tmp_path, origin.addr, s.down_addr, name="restarted")
    s2.port, s2.admin_port = s.port, s.admin_port
    text = pathlib.Path(s.config_path).read_text()
    try:
        s2.start(text)
        r = s2.get(big)
        assert r.status == 200 and len(r.body) == 1000000
        assert "fwd=miss" in (r.header("Cache-Status") or ""), "a killed process left a cache behind?"
        r = s2.get(big)
        assert "hit" in (r.header("Cache-Status") or "")
        assert_still_serving(s2)
    finally:
        assert s2.terminate() == 0


def test_sigterm_under_load_drains_and_exits_0(origin, strata):
    """SIGTERM while clients keep sending (slow misses, hits, large hits):
    strata stops accepting, finishes what is in flight and exits 0 in time;
    no answer it starts is cut short or an error."""
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/c/*"), cache_route("/big")], {"hot": {"ttl": "10m"}},
        max_object="2MiB"))
    stop = threading.Event()
    bad = []
    refused = []

    def fetch(path):
        """One GET with Connection: close, read to the end: (bytes received, error or None)."""
        data, err = b"", None
        try:
            with socket.create_connection((HOST, s.port), timeout=10) as c:
                c.sendall(req_bytes("GET", path, [("Connection", "close")]))
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as e:
            err = e
        return data, err

    def complete(data):
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        return sep and head.startswith(b"HTTP/1.1 200 ") and m and len(body) == int(m.group(1))

    def load(path):
        while not stop.is_set():
            data, err = fetch(path)
            if not data:
                # Expected once draining: refused, or a queued connection closed or reset
                # before a byte of any answer.
                refused.append(type(err).__name__ if err else "closed")
                continue
            if not complete(data):
                bad.append((path, repr(err)[:80], data[:60]))  # an answer cut short

    paths = ["/delay/200", "/c/a", "/big?bytes=500000", "/delay/50", "/c/b", "/c/c"]
    threads = [threading.Thread(target=load, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    wait_until(lambda: origin.count("/delay/200") >= 2, 5, msg="load to reach the origin")
    try:
        rc = s.terminate(sig=signal.SIGTERM, timeout=12)  # fails if not exited in time
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert rc == 0, f"exit code {rc}; log tail:\n{s.log()[-3000:]}"
    assert not any(t.is_alive() for t in threads), "a load thread hung"
    assert not bad, bad[:10]


def test_sigint_exits_0(strata):
    s = strata()
    assert s.terminate(sig=signal.SIGINT) == 0


# ---- CLI ---------------------------------------------------------------------

CHECK_BASE = """\
listen: "127.0.0.1:{port}"
workers: 1
admin:
  listen: "127.0.0.1:{admin}"
upstreams:
  origin:
    servers: ["127.0.0.1:9"]
    connect_timeout: 500ms
    timeout: 1s
routes:
  - match: "/*"
    upstream: origin
    strategy: bypass
"""


def run_cli(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=10)


def write_check_config(tmp_path, text):
    p = tmp_path / "check.yaml"
    p.write_text(text.format(port=free_port(), admin=free_port()))
    return str(p)


def test_check_good_config(strata_bin, tmp_path):
    path = write_check_config(tmp_path, CHECK_BASE)
    p = run_cli(strata_bin, "--check", "-c", path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok" in (p.stdout + p.stderr).split(), f"no 'ok' printed: {p.stdout!r} {p.stderr!r}"


def _lines(text):
    return text.splitlines(keepends=True)


@pytest.mark.parametrize("case", ["unknown-key", "bad-unit", "undefined-upstream", "syntax"])
def test_check_bad_config_reports_file_line_col(strata_bin, tmp_path, case):
    lines = _lines(CHECK_BASE)
    if case == "unknown-key":
        lines.insert(9, "    colour: blue\n")  # becomes line 10
        want = 10
    elif case == "bad-unit":
        lines[7] = "    connect_timeout: 5parsecs\n"
        want = 8
    elif case == "undefined-upstream":
        lines[11] = "    upstream: nowhere\n"
        want = 12
    else:
        lines[1] = "workers: 1: 2\n"
        want = 2
    path = write_check_config(tmp_path, "".join(lines))
    p = run_cli(strata_bin, "--check", "-c", path)
    out = p.stdout + p.stderr
    assert p.returncode == 1, f"exit {p.returncode}; output: {out!r}"
    diag = re.findall(rf"^{re.escape(path)}:(\d+):(\d+): \S.*$", out, re.M)
    assert diag, f"no FILE:LINE:COL: message lines in {out!r}"
    assert want in [int(line) for line, _ in diag], f"want line {want}; output: {out!r}"


def test_version(strata_bin):
    p = run_cli(strata_bin, "--version")
    assert p.returncode == 0
    assert re.search(r"\d+\.\d+\.\d+", p.stdout + p.stderr), repr(p.stdout + p.stderr)


def test_reload_warns_only_about_changed_restart_keys(origin, strata):
    s = strata(workers=2)
    text = s.render(workers=2)
    s.reload(text.replace("/down/*", "/gone/*"))  # a route change only: applied, no warning
    wait_until(lambda: s.log().count("reloaded") == 1, 5, msg="first reload")
    assert "until a restart" not in s.log()
    s.reload(text.replace("workers: 2", "workers: 3"))
    wait_until(lambda: s.log().count("reloaded") == 2, 5, msg="second reload")
    lines = [l for l in s.log().splitlines() if "until a restart" in l]
    assert len(lines) == 1, lines
    assert "workers: 2 keep running until a restart (new: 3)" in lines[0]


def test_redis_that_is_not_there_does_not_stop_strata(origin, strata, down_port):
    s = strata(extra=f'redis: {{ url: "redis://127.0.0.1:{down_port}/0" }}\n')
    wait_until(lambda: "cannot connect" in s.log(), 5, msg="the redis warning")
    assert s.get("/echo").status == 200
    assert s.admin_get("/readyz").json() == {"status": "ready", "redis": "down", "bus": "down"}


def test_redis_tier_with_a_password_and_a_database(origin, strata, tmp_path):
    import shutil
    import subprocess
    from harness import free_port
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port",
                             str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass",
                             "s3cret", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        ok = strata(extra=f'redis: {{ url: "redis://:s3cret@127.0.0.1:{port}/3" }}\n')
        wait_until(lambda: ok.admin_get("/readyz").json().get("bus") == "up", 5)
        bad = strata(extra=f'redis: {{ url: "redis://:wrong@127.0.0.1:{port}/3" }}\n')
        wait_until(lambda: "cannot connect" in bad.log(), 5, msg="the AUTH failure logged")
        assert bad.admin_get("/readyz").json()["redis"] == "down"
        assert bad.get("/echo").status == 200
    finally:
        proc.terminate()
        proc.wait(5)


def test_reload_with_a_config_that_parses_but_is_invalid_keeps_the_old_one(origin, strata):
    s = strata()
    bad = s.render(routes=[{"match": "/*", "upstream": "nowhere", "strategy": "bypass"}])
    s.reload(bad)
    wait_until(lambda: "reload of" in s.log() and "failed" in s.log(), 5, msg="reload failure")
    assert "unknown upstream" in s.log() or "nowhere" in s.log(), s.log()[-2000:]
    assert_still_serving(s)


def test_reload_with_the_file_gone_keeps_the_old_one(origin, strata):
    s = strata()
    pathlib.Path(s.config_path).unlink()
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload of" in s.log() and "failed" in s.log(), 5, msg="reload failure")
    assert s.config_path in s.log()
    assert_still_serving(s)


def test_request_in_flight_during_a_reload_finishes_on_the_old_config(origin, strata):
    s = strata(workers=1)
    result = {}

    def slow():
        result["r"] = s.get("/delay/800", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: origin.count("/delay/800") == 1, 5, msg="request at the origin")
    # The new config sends everything to the dead upstream: the old request must not care.
    s.reload(s.render(routes=[{"match": "/*", "upstream": "down", "strategy": "bypass"}]))
    wait_until(lambda: "reloaded" in s.log(), 5, msg="reload")
    t.join(10)
    assert result["r"].status == 200, result["r"].status
    assert s.get("/echo").status == 502  # new requests use the new config


def test_drain_deadline_cuts_what_is_still_running_and_exits_0(origin, strata):
    s = strata(config_text=lambda s: s.render(upstreams={
        "origin": {"servers": [s.origin_addr], "timeout": "30s"},
        "down": {"servers": [s.down_addr]}}))
    result = {}

    def hanging():
        try:
            result["r"] = s.get("/hang", timeout=20)
        except Exception as e:  # noqa: BLE001 - the cut is what is expected
            result["e"] = e

    t = threading.Thread(target=hanging)
    t.start()
    wait_until(lambda: origin.count("/hang") == 1, 5, msg="request at the origin")
    t0 = time.monotonic()
    rc = s.terminate(sig=signal.SIGTERM, timeout=15)
    took = time.monotonic() - t0
    t.join(5)
    assert rc == 0
    assert 9 <= took <= 14, f"drain took {took:.1f}s, the deadline is 10 s"
    assert "e" in result, "the hanging request was answered?"
    assert "drain deadline passed" in s.log()


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(origin, strata):
    s = strata(limits={"idle_timeout": "1s"})
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/echo"))
        assert c.read_response().status == 200
        assert c.is_closed(5), "an idle keep-alive connection stayed open past idle_timeout"
    assert_still_serving(s)
