"""Every shipped config in config/examples/ passes `strata --check` (with the environment
variables it names set), so an example cannot drift from the loader."""

import os
import pathlib
import subprocess

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
