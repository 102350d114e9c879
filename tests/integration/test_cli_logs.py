"""The -b quick mode and the log formats."""

import json
import signal
import socket
import subprocess

import pytest

from harness import HOST, get, wait_until


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def test_quick_mode_caches_in_front_of_one_backend(strata_bin, origin, tmp_path):
    if not (port_free(8080) and port_free(8081)):
        pytest.skip("-b mode listens on 127.0.0.1:8080/8081, which are taken on this machine")
    log = open(tmp_path / "quick.log", "wb")
    p = subprocess.Popen([strata_bin, "-b", origin.addr], stderr=log)
    try:
        def ready():
            try:
                return get(8081, "/healthz", timeout=0.5).status == 200
            except OSError:
                return False
        wait_until(ready, 10, msg="-b mode up")
        origin.script("/qm", lambda req: (200, [("Content-Type", "text/plain")], b"quick\n"))
        first = get(8080, "/qm")
        second = get(8080, "/qm")
        assert first.body == second.body == b"quick\n"
        assert "fwd=miss" in first.header("Cache-Status")
        assert second.header("Cache-Status").startswith("strata; hit; ttl=")
        assert origin.count("/qm") == 1
        st = json.loads(get(8081, "/stats").body)
        assert st["routes"]["/*"]["strategy"] == "cache-aside"
        assert st["routes"]["/*"]["tier"] == "default"
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        log.close()


def test_json_logs_with_access_lines(strata):
    s = strata(extra='log: { format: json, access: true }\n')
    r = s.get("/echo", headers={"X-Request-Id": "log-test-1"})
    assert r.status == 200
    wait_until(lambda: "log-test-1" in s.log(), 3, msg="access line")
    lines = [l for l in s.log().splitlines() if l.strip()]
    parsed = [json.loads(l) for l in lines]  # every line is one JSON object
    for rec in parsed:
        assert {"ts", "level", "sub", "msg"} <= rec.keys() or rec["sub"] == "access", rec
    access = [rec for rec in parsed if rec["sub"] == "access" and rec.get("req") == "log-test-1"]
    assert len(access) == 1
    a = access[0]
    assert a["method"] == "GET" and a["target"] == "/echo" and a["status"] == 200
    assert a["cache"] == "strata; fwd=bypass"
