"""The console's "Download evidence pcap" when the capture file is gone: a clear 410 with
what to do (JSON for the API, the error page for a browser), never a silent failure."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otconduit.console.server import BackgroundServer
from tests.conftest import DATA
from tests.console.conftest import PASSWORDS, Env, make_env
from tests.console.test_browser import CHROMIUM, browser  # noqa: F401 (fixture)

CONDUIT = Path(sys.executable).with_name("conduit")


@pytest.fixture
def gone(tmp_path: Path) -> Iterator[tuple[Env, int]]:
    """A store analysed from a capture that was deleted afterwards, and one of its alerts."""
    pcap = tmp_path / "plant.pcap"
    shutil.copy(DATA / "modbus_all_functions.pcap", pcap)
    db = tmp_path / "conduit.db"
    res = subprocess.run(
        [str(CONDUIT), "analyze", str(pcap), "--db", str(db), "-q"], capture_output=True
    )
    assert res.returncode == 0, res.stderr
    pcap.unlink()
    env = make_env(db, tmp_path)
    c = env.client("viewer")
    alert = c.get("/api/alerts", params={"rule": "comm-restart"}).json()["items"][0]
    c.close()
    yield env, int(alert["id"])
    env.ctx.close()


def test_api_says_the_capture_is_gone(gone: tuple[Env, int]) -> None:
    env, aid = gone
    c = env.client("viewer")
    r = c.get(f"/api/alerts/{aid}/evidence.pcap")
    assert r.status_code == 410
    err = r.json()["error"]
    assert err["code"] == "gone"
    assert "plant.pcap not readable" in err["message"]
    assert f"conduit evidence {aid} --capture-dir DIR" in err["message"]
    page = c.get(f"/api/alerts/{aid}/evidence.pcap", headers={"Accept": "text/html"})
    assert page.status_code == 410 and page.headers["content-type"].startswith("text/html")
    assert "moved or deleted" in page.text and "--capture-dir" in page.text
    assert c.get("/api/alerts/424242/evidence.pcap").status_code == 404
    c.close()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_download_button_shows_the_error(browser: Any, gone: tuple[Env, int]) -> None:  # noqa: F811
    env, aid = gone
    with BackgroundServer(env.app, env.ctx) as srv:
        page = browser.new_page()
        page.goto(srv.url + "/login")
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", PASSWORDS["viewer"])
        page.click("button[type=submit]")
        page.wait_for_url(srv.url + "/")
        page.goto(f"{srv.url}/alerts/{aid}")
        page.click("#evidence")
        page.wait_for_url(f"**/api/alerts/{aid}/evidence.pcap")
        assert "moved or deleted" in page.locator("[role=alert]").inner_text()
        page.close()
