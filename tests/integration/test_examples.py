"""Every shipped config in config/examples/ passes `strata --check` (with the environment
variables it names set), so an example cannot drift from the loader."""

import os
import pathlib
import subprocess

from test_redis_tier import rds  # noqa: F401  (a fixture)

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "config" / "examples").glob("*.yaml"))


def test_there_are_examples_for_the_common_shapes():
    names = {p.name for p in EXAMPLES}
    assert {"catalog.yaml", "profiles.yaml", "cart.yaml", "fleet.yaml", "strata.yaml"} <= names


def test_every_example_passes_check(strata_bin):
    env = dict(os.environ, STRATA_ADMIN_TOKEN="example-token")
    env.pop("STRATA_REDIS_URL", None)
    for path in EXAMPLES:
        r = subprocess.run([strata_bin, "--check", "-c", str(path)], capture_output=True,
                           text=True, env=env, timeout=30)
        assert r.returncode == 0, f"{path.name}: {r.stdout}{r.stderr}"


def test_grafana_dashboard_asks_only_for_metrics_strata_exports(strata, rds):
    """Every series the shipped dashboard queries exists in /metrics (with Redis, so that
    the Redis, bus and write-behind families are there too)."""
    import json
    import re

    from test_redis_tier import fleet

    (s,) = fleet(strata, rds, 1)
    text = s.admin_get("/metrics").body.decode()
    exported = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            exported.add(name)
            if kind == "histogram":
                exported |= {name + "_bucket", name + "_sum", name + "_count"}
    board = json.loads((EXAMPLES[0].parents[2] / "packaging" / "grafana-dashboard.json").read_text())
    asked = {m for p in board["panels"] for t in p["targets"]
             for m in re.findall(r"\bstrata_[a-z0-9_]+", t["expr"])}
    assert asked, "the dashboard queries nothing"
    assert asked <= exported, sorted(asked - exported)


def test_prometheus_example_is_valid():
    import shutil
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is installed by scripts/install-deps.sh test"
    path = EXAMPLES[0].parents[2] / "packaging" / "prometheus.yml"
    r = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
