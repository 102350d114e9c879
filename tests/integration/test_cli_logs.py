"""The -b quick mode and the log formats."""

import json
import pathlib
import re
import signal
import socket
import subprocess

from harness import request, HOST, assert_still_serving, free_port, get, wait_until


def run(strata_bin, *args):
    return subprocess.run([strata_bin, *args], capture_output=True, text=True, timeout=10)


def test_quick_mode_caches_in_front_of_one_backend(strata_bin, origin, tmp_path):
    port, admin = free_port(), free_port()
    log = open(tmp_path / "quick.log", "wb")
    p = subprocess.Popen([strata_bin, "-b", origin.addr, "-l", f"{HOST}:{port}",
                          "-a", f"{HOST}:{admin}"], stderr=log)
    try:
        def ready():
            if p.poll() is not None:
                raise AssertionError(f"strata -b exited {p.returncode}")
            try:
                return get(admin, "/healthz", timeout=0.5).status == 200
            except OSError:
                return False
        wait_until(ready, 10, msg="-b mode up")
        origin.script("/qm", lambda req: (200, [("Content-Type", "text/plain")], b"quick\n"))
        first = get(port, "/qm")
        second = get(port, "/qm")
        assert first.body == second.body == b"quick\n"
        assert "fwd=miss" in first.header("Cache-Status")
        assert second.header("Cache-Status").startswith("strata; hit; ttl=")
        assert origin.count("/qm") == 1
        st = json.loads(get(admin, "/stats").body)
        assert st["routes"]["/*"]["strategy"] == "cache-aside"
        assert st["routes"]["/*"]["tier"] == "default"
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(10) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()


def test_help_and_version(strata_bin):
    for flag in ("-h", "--help"):
        r = run(strata_bin, flag)
        assert r.returncode == 0 and "usage: strata" in r.stdout and "--takeover" in r.stdout
    for flag in ("-V", "--version"):
        r = run(strata_bin, flag)
        assert r.returncode == 0
        lines = r.stdout.splitlines()
        assert re.fullmatch(r"strata \d+\.\d+\.\d+", lines[0]), lines
        assert lines[1].startswith("build: jemalloc ")
        for lib in ("libuv 1.", "llhttp 8.", "hiredis 0.14", "xxhash 0.8", "libyaml 0."):
            assert lib in lines[2], lines[2]


def test_quick_mode_address_errors(strata_bin):
    r = run(strata_bin, "-b", "127.0.0.1:9", "-l", "nowhere", "--check")
    assert r.returncode == 1 and "-l: bad address 'nowhere'" in r.stderr
    r = run(strata_bin, "-b", "127.0.0.1:9", "-a", "0.0.0.0:18081", "--check")
    assert r.returncode == 1 and "not a loopback address" in r.stderr
    r = run(strata_bin, "-c", "x.yaml", "-l", "127.0.0.1:1")
    assert r.returncode == 2 and "usage" in r.stderr


def test_second_strata_on_the_same_listen_address_fails(strata_bin, origin, strata, tmp_path):
    s = strata()
    cfg = tmp_path / "second.yaml"
    admin2 = free_port()
    cfg.write_text(pathlib.Path(s.config_path).read_text().replace(f":{s.admin_port}", f":{admin2}"))
    r = subprocess.run([strata_bin, "-c", str(cfg)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 1, (r.returncode, r.stderr[-500:])
    assert "Address already in use" in r.stderr and "--takeover" in r.stderr
    # With --takeover it shares the port (a restart without downtime), and stops cleanly.
    # Its log goes to a file: a pipe nobody drains could stall it, and the file can be shown.
    log = tmp_path / "takeover.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([strata_bin, "-c", str(cfg), "--takeover"], stderr=f)

    def listening():
        if p.poll() is not None:
            raise AssertionError(f"strata --takeover exited {p.returncode}: {log.read_text()}")
        if "listening on" not in log.read_text():
            return False
        try:  # and its loops are running (signals sent earlier are a startup race, not a stop)
            return request(admin2, "GET", "/healthz", timeout=0.5).status == 200
        except OSError:
            return False

    try:
        wait_until(listening, 10, msg="--takeover listening")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"--takeover did not stop on SIGTERM; log:\n{log.read_text()}")
    assert rc == 0, log.read_text()
    assert_still_serving(s)


def test_json_logs_with_access_lines(strata):
    s = strata(extra='log: { format: json, access: true }\n')
    r = s.get("/echo", headers={"X-Request-Id": "log-test-1"})
    assert r.status == 200
    wait_until(lambda: "log-test-1" in s.log(), 3, msg="access line")
    lines = [l for l in s.log().splitlines() if l.strip()]
    parsed = [json.loads(l) for l in lines]  # every line is one JSON object
    for rec in parsed:
        assert {"ts", "level", "sub", "msg"} <= rec.keys(), rec  # access lines too
    access = [rec for rec in parsed if rec["sub"] == "access" and rec.get("req") == "log-test-1"]
    assert len(access) == 1
    a = access[0]
    assert a["method"] == "GET" and a["target"] == "/echo" and a["status"] == 200
    assert a["cache"] == "strata; fwd=bypass"
    assert a["msg"] == "GET /echo 200"
    assert {"client", "bytes", "ms"} <= a.keys()


def test_log_file_is_reopened_on_sigusr1_for_logrotate(strata, tmp_path):
    path = tmp_path / "strata.log"
    s = strata(extra=f'log: {{ format: text, access: true, file: "{path}" }}\n')
    assert "listening on" in path.read_text()
    assert "listening on" not in s.log()  # nothing on stderr
    assert s.get("/echo", headers={"X-Request-Id": "before-rotate"}).status == 200
    wait_until(lambda: "before-rotate" in path.read_text(), 3, msg="access line in the file")
    rotated = tmp_path / "strata.log.1"
    path.rename(rotated)  # what logrotate does, then it sends SIGUSR1
    assert s.get("/echo", headers={"X-Request-Id": "moved"}).status == 200
    wait_until(lambda: "moved" in rotated.read_text(), 3, msg="still the old file until told")
    s.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: path.exists() and "log file reopened" in path.read_text(), 3,
               msg="a new file after SIGUSR1")
    assert s.get("/echo", headers={"X-Request-Id": "after-rotate"}).status == 200
    wait_until(lambda: "after-rotate" in path.read_text(), 3, msg="access line in the new file")
    assert "after-rotate" not in rotated.read_text()


def test_log_file_that_cannot_be_opened(strata_bin, tmp_path, strata):
    bad = tmp_path / "no" / "such" / "dir" / "strata.log"
    cfg = tmp_path / "bad-log.yaml"
    cfg.write_text('listen: "127.0.0.1:%d"\nadmin: { listen: "127.0.0.1:%d" }\n'
                   'log: { file: "%s" }\nupstreams: { o: { servers: ["127.0.0.1:9"] } }\n'
                   'routes: [ { match: "/*", upstream: o, strategy: bypass } ]\n'
                   % (free_port(), free_port(), bad))
    r = subprocess.run([strata_bin, "-c", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert f"log.file {bad}: No such file or directory" in r.stderr
    # On a reload the running config (and its log) stays.
    s = strata()
    s.reload(s.render(extra=f'log: {{ file: "{bad}" }}\n'))
    wait_until(lambda: "reload of" in s.log() and "failed" in s.log(), 5, msg="refused reload")
    assert f"log.file {bad}" in s.log()
    assert s.get("/echo").status == 200
