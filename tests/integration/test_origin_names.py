"""upstreams.<name>.servers by host name: resolved before the first request, every address
used, resolved again every resolve_every and after connect failures; a failed resolve keeps
the last good set. Names come from a hosts file of the test's own: strata runs in a mount
namespace where that file is bind-mounted over /etc/hosts, so a test can move a name."""

import shutil
import subprocess

import pytest

from harness import wait_until
from scripted_origin import Origin

BYPASS = [{"match": "/*", "upstream": "api", "strategy": "bypass"}]


@pytest.fixture
def hosts(tmp_path):
    """(path, wrap): a hosts file, and the command that runs strata with it as /etc/hosts."""
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is needed to give strata a hosts file of the test's")
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            f'mount --bind "{path}" /etc/hosts && getent hosts localhost'],
                           capture_output=True, text=True)
    assert probe.returncode == 0, f"cannot bind-mount a hosts file: {probe.stderr}"
    wrap = ["unshare", "-m", "sh", "-c", f'mount --bind "{path}" /etc/hosts && exec "$@"', "sh"]
    return path, wrap


def set_hosts(path, text):
    # In place (same inode): the bind mount shows the new content.
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n" + text)


def servers_of(s, upstream="api"):
    return s.stats()["origin"]["servers"][upstream]


@pytest.fixture
def origins():
    """Origins on 127.0.0.2 and 127.0.0.3, on the same port (a name that moves keeps its port)."""
    started = []

    def make(host, port=0):
        o = Origin(host, port)
        started.append(o)
        return o

    yield make
    for o in started:
        o.stop()


def test_localhost_is_resolved_as_a_name(origin, strata):
    s = strata(upstreams={"api": {"servers": [f"localhost:{origin.port}"]}}, routes=BYPASS)
    assert s.get("/hello").status == 200
    assert origin.count("/hello") == 1
    listed = servers_of(s)
    assert f"127.0.0.1:{origin.port}" in [a["address"] for a in listed]
    assert all(a["server"] == f"localhost:{origin.port}" for a in listed)


def test_name_from_hosts_file_moves_and_a_failed_resolve_keeps_the_last_set(
        strata, hosts, origins):
    path, wrap = hosts
    a = origins("127.0.0.2")
    b = origins("127.0.0.3", a.port)
    set_hosts(path, "127.0.0.2 api.test\n")
    ups = {"api": {"servers": [f"api.test:{a.port}"], "resolve_every": "300ms",
                   "connect_timeout": "300ms"}}
    s = strata(wrap=wrap, upstreams=ups, routes=BYPASS)
    # Resolved before the first request: no failure, no wait.
    assert s.get("/one").status == 200
    assert a.count("/one") == 1 and b.count("/one") == 0
    assert [x["address"] for x in servers_of(s)] == [f"127.0.0.2:{a.port}"]

    set_hosts(path, "127.0.0.3 api.test\n")  # the name moves
    wait_until(lambda: [x["address"] for x in servers_of(s)] == [f"127.0.0.3:{a.port}"], 5,
               interval=0.05, msg="the new address after a re-resolve")
    assert "api.test:%d resolves to 127.0.0.3:%d" % (a.port, a.port) in s.log()
    assert s.get("/two").status == 200
    assert b.count("/two") == 1 and a.count("/two") == 0

    set_hosts(path, "")  # the name goes away: the last good set stays
    wait_until(lambda: "resolving api.test failed" in s.log(), 5, interval=0.05,
               msg="the failed resolve logged")
    assert "keeping the 1 address it had" in s.log()
    for i in range(5):
        assert s.get(f"/three/{i}").status == 200
    assert b.count("/three/4") == 1
    assert [x["address"] for x in servers_of(s)] == [f"127.0.0.3:{a.port}"]


def test_every_address_of_a_name_is_used(strata, hosts, origins):
    path, wrap = hosts
    a = origins("127.0.0.2")
    b = origins("127.0.0.3", a.port)
    set_hosts(path, "127.0.0.2 api.test\n127.0.0.3 api.test\n")
    ups = {"api": {"servers": [f"api.test:{a.port}"], "keepalive": 0}}
    s = strata(wrap=wrap, upstreams=ups, routes=BYPASS, workers=1)
    for i in range(10):
        assert s.get(f"/rr/{i}").status == 200
    assert a.total() == 5 and b.total() == 5, (a.total(), b.total())


def test_a_name_that_does_not_resolve_yet_answers_502_then_serves_once_it_does(
        strata, hosts, origins):
    path, wrap = hosts
    a = origins("127.0.0.2")
    ups = {"api": {"servers": [f"late.test:{a.port}"], "resolve_every": "1h"}}
    s = strata(wrap=wrap, upstreams=ups, routes=BYPASS)
    assert "late.test does not resolve" in s.log()
    r = s.get("/early")
    assert r.status == 502
    assert r.json()["error"] == "the origin's host name does not resolve"
    assert a.total() == 0
    # The failure itself asks for a re-resolve (resolve_every is an hour away).
    set_hosts(path, "127.0.0.2 late.test\n")
    wait_until(lambda: s.get("/late").status == 200, 5, interval=0.1,
               msg="served once the name resolves")
    assert a.count("/late") >= 1


def test_a_name_that_moved_is_resolved_again_after_connect_failures(strata, hosts, origins):
    path, wrap = hosts
    a = origins("127.0.0.2")
    set_hosts(path, "127.0.0.3 api.test\n")  # nothing listens there
    ups = {"api": {"servers": [f"api.test:{a.port}"], "resolve_every": "1h",
                   "connect_timeout": "300ms"}}
    s = strata(wrap=wrap, upstreams=ups, routes=BYPASS)
    assert s.get("/refused").status == 502
    set_hosts(path, "127.0.0.2 api.test\n")
    wait_until(lambda: s.get("/moved").status == 200, 5, interval=0.1,
               msg="the new address picked up after the connect failures")
    assert a.count("/moved") >= 1
