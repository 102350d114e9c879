"""The quick start's scripts/demo.sh: it serves through strata, and SIGTERM or
SIGINT to the script stops both strata and the demo origin."""

import os
import pathlib
import signal
import subprocess

import pytest

from harness import HOST, free_port, get, wait_until

REPO = pathlib.Path(__file__).resolve().parents[2]


def port_open(port):
    import socket
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_demo_serves_and_a_signal_stops_both(tmp_path, sig):
    origin, listen, admin = free_port(), free_port(), free_port()
    env = dict(os.environ, DEMO_ORIGIN=f"{HOST}:{origin}", DEMO_LISTEN=f"{HOST}:{listen}",
               DEMO_ADMIN=f"{HOST}:{admin}")
    log = open(tmp_path / "demo.log", "wb")
    # Its own process group: whatever it leaves behind is stopped at the end.
    p = subprocess.Popen(["bash", str(REPO / "scripts" / "demo.sh")], env=env, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up():
            if p.poll() is not None:
                raise AssertionError(f"demo.sh exited {p.returncode}: "
                                     f"{(tmp_path / 'demo.log').read_text()[-1000:]}")
            try:
                return get(admin, "/healthz", timeout=0.5).status == 200
            except OSError:
                return False
        wait_until(up, 120, msg="demo up")  # it may build strata first
        r = get(listen, "/api/products/1")
        assert r.status == 200 and "fwd=miss" in r.header("Cache-Status")
        p.send_signal(sig)
        p.wait(15)
        wait_until(lambda: not port_open(listen) and not port_open(origin), 10,
                   msg="strata and the demo origin stopped")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        log.close()
