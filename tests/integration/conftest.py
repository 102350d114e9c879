"""Fixtures for strata's black-box tests: a scripted origin, a port with
nothing behind it, the real strata binary with a generated YAML config, and
redis-server. Every test gets its own ports; everything is on 127.0.0.1."""

import os
import pathlib
import shutil
import socket
import subprocess

import pytest

from harness import HOST, Strata, free_port, wait_until
from scripted_origin import Origin

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def strata_bin():
    return os.environ.get("STRATA_BIN", str(REPO / "build" / "strata"))


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def down_port():
    """A port with nothing listening on it."""
    return free_port()


@pytest.fixture
def strata(strata_bin, tmp_path, origin, down_port):
    """Factory: strata(routes=..., upstreams=..., limits=..., workers=..., extra=...)
    or strata(config_text=...) starts a server and waits until /healthz is 200.
    At teardown each still-running server gets SIGTERM and must exit 0 within 10 s."""
    started = []

    def start(config_text=None, wrap=None, **kw):
        name = f"strata{len(started)}"
        s = Strata(strata_bin, tmp_path, origin.addr, f"{HOST}:{down_port}", name=name)
        s.wrap = list(wrap or [])
        started.append(s)
        text = config_text(s) if callable(config_text) else config_text
        s.start(text if text is not None else s.render(**kw))
        return s

    yield start

    problems = []
    for s in started:
        if s.proc is None or s.stopped:
            continue
        if s.proc.poll() is not None:
            problems.append(f"{s.config_path}: strata died during the test with "
                            f"{s.proc.returncode}; log tail:\n{s.log()[-2000:]}")
            continue
        try:
            rc = s.terminate()
        except AssertionError as e:
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"strata exited {rc} on SIGTERM; log tail:\n{s.log()[-2000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _redis_ping(port):
    with socket.create_connection((HOST, port), timeout=0.5) as c:
        c.sendall(b"PING\r\n")
        return c.recv(64).startswith(b"+PONG")


@pytest.fixture
def redis(tmp_path):
    """A throwaway redis-server (no persistence); yields an object with .port, .url."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    with open(tmp_path / "redis.log", "wb") as log:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", HOST, "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        def up():
            if proc.poll() is not None:
                raise AssertionError(f"redis-server exited {proc.returncode}")
            try:
                return _redis_ping(port)
            except OSError:
                return False

        wait_until(up, 10, msg="redis-server PING")

        class R:
            pass

        r = R()
        r.port, r.proc, r.url = port, proc, f"redis://{HOST}:{port}/0"
        yield r
    finally:  # also when it never answered PING: no redis-server outlives its test
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
