"""GET /dashboard on the admin listener: one self-contained page (compiled into the binary)
that polls /stats. The test drives traffic, opens the page in headless Chromium and checks
what the page shows after its first polls: the route names, hit ratios that match /stats,
a chart drawn; and it keeps a phone-width screenshot (STRATA_TEST_ARTIFACTS, else the
test's temporary directory)."""

import html.parser
import os
import pathlib
import shutil
import subprocess

import pytest

from harness import cache_config, cache_route

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def chromium():
    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("chromium is needed (Debian package chromium: scripts/install-deps.sh test)")
    return exe


class Dom(html.parser.HTMLParser):
    """The attributes of the elements the page marks for tests (data-*)."""

    def __init__(self):
        super().__init__()
        self.body, self.routes, self.charts, self.advice = {}, {}, [], {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "tr" and "data-route" in a:
            self.routes[a["data-route"]] = float(a["data-hit-ratio"])
        if tag == "tr" and "data-advisor" in a:
            self.advice[a["data-advisor"]] = a["data-suggestion"]
        if tag == "canvas":
            self.charts.append(int(a.get("data-points", "0")))


def test_the_page_is_self_contained(strata):
    s = strata()
    r = s.admin_get("/dashboard")
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")
    page = r.body.decode()
    assert "<script" in page and "/stats" in page
    # Nothing from elsewhere: no CDN, no external fetch.
    for ref in ("http://", "https://", "src=", "<link"):
        assert ref not in page, ref


def test_dashboard_shows_routes_hit_ratios_and_a_chart(origin, strata, tmp_path):
    routes = [cache_route("/c/*", tier="hot", name="catalog"),
              cache_route("/p/*", tier="hot", name="profiles"),
              cache_route("/f/*", tier="hot", name="feed")]
    s = strata(config_text=lambda s: cache_config(s, routes, {"hot": {"ttl": "1m"}}))
    origin.script_versioned("/c/x", headers=[("Cache-Control", "max-age=60")])
    origin.script_versioned("/p/y", headers=[("Cache-Control", "max-age=60")])
    for _ in range(10):  # catalog: 1 miss, 9 hits
        assert s.get("/c/x").status == 200
    for _ in range(4):  # profiles: 1 miss, 3 hits
        assert s.get("/p/y").status == 200
    for _ in range(120):  # feed: enough requests for the advisor to speak
        assert s.get("/f/z").status == 200
    stats = s.stats()["routes"]
    url = f"http://127.0.0.1:{s.admin_port}/dashboard"
    dump = subprocess.run([chromium()] + CHROMIUM + ["--virtual-time-budget=5000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = Dom()
    dom.feed(dump.stdout)
    assert int(dom.body.get("data-polls", "0")) >= 2, "the page did not poll /stats twice"
    assert {"catalog", "profiles"} <= dom.routes.keys(), dom.routes
    for name in ("catalog", "profiles"):
        assert abs(dom.routes[name] - stats[name]["hit_ratio"]) < 1e-9, (name, dom.routes, stats)
    assert abs(dom.routes["catalog"] - 0.9) < 1e-9 and abs(dom.routes["profiles"] - 0.75) < 1e-9
    assert dom.charts and max(dom.charts) >= 1, "no chart drawn"
    # The advisor's row per tiered route, with the suggestion /stats gives.
    assert dom.advice == {"catalog": "", "profiles": "", "feed": "keep hot: no tier is longer"}, \
        dom.advice
    assert stats["feed"]["advisor"]["suggestion"] == dom.advice["feed"]
    # The phone-width view, kept for a look.
    out = pathlib.Path(os.environ.get("STRATA_TEST_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "dashboard-phone.png"
    r = subprocess.run([chromium()] + CHROMIUM + ["--virtual-time-budget=5000",
                                                  "--window-size=390,1600", f"--screenshot={shot}",
                                                  url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10000
