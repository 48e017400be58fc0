"""Times: HTML tables show ``YYYY-MM-DD HH:MM:SS`` in the plant's time zone (named once
per page, the full ISO value on hover); the API answers ISO 8601 UTC in one style (``Z``);
the overview's newest alerts show when they happened, not when they were analysed."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from otconduit.cli.console_cmd import console
from otconduit.console.timefmt import parse, table_time, time_tag, zone_label
from tests.console.conftest import POLICY, Env, make_env

PAGES = ["/", "/assets", "/assets/127.0.5.10", "/conversations", "/operations", "/alerts",
         "/alerts/2", "/violations", "/incidents", "/users", "/audit"]  # fmt: skip
ISO_IN_TEXT = re.compile(r">[^<]*\d{4}-\d\d-\d\dT\d\d:\d\d[^<]*<")
PLUS_ZERO = re.compile(r"\d\d:\d\d(?:\.\d+)?\+00:00")


def test_formatting_helpers() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert table_time("2026-11-25T21:12:28.688109Z", berlin) == "2026-11-25 22:12:28"
    assert table_time("2026-07-01T10:00:00+00:00", berlin) == "2026-07-01 12:00:00"
    assert table_time(1_790_000_000_123_456_789, ZoneInfo("UTC")) == "2026-09-21 14:13:20"
    assert parse("2026-11-25T21:12:28.123456789Z") == parse("2026-11-25T21:12:28.123456Z")
    tag = str(time_tag("2026-07-01T10:00:00+00:00", berlin))
    assert tag == ('<time datetime="2026-07-01T10:00:00Z" title="2026-07-01T10:00:00Z">'
                   "2026-07-01 12:00:00</time>")  # fmt: skip
    assert str(time_tag(None, berlin)) == "" and str(time_tag("soon", berlin)) == "soon"
    winter = datetime(2026, 1, 10, tzinfo=ZoneInfo("UTC"))
    assert zone_label(berlin, winter) == "Europe/Berlin (UTC+01:00)"
    assert zone_label(ZoneInfo("UTC")) == "UTC"


@pytest.fixture
def berlin(env: Env, tmp_path: Path) -> Env:
    """The fixture's store, with the console told the plant runs on Berlin time."""
    (tmp_path / "b").mkdir()
    return make_env(env.db, tmp_path / "b", timezone="Europe/Berlin")


def test_pages_show_plant_time_to_the_second(berlin: Env) -> None:
    c = berlin.client("admin")
    c.post("/api/alerts/2/ack", json={"comment": "seen"})  # history and audit entries
    for path in PAGES:
        html = c.get(path).text
        assert html.count('id="plant-tz"') == 1 and "Europe/Berlin" in html, path
        bad = ISO_IN_TEXT.findall(html)
        assert not bad, (path, bad[:3])  # ISO only in attributes, never as the text
    alert = c.get("/api/alerts/2").json()
    html = c.get("/alerts/2").text
    last = alert["last_seen"]
    local = datetime.fromisoformat(last.replace("Z", "+00:00")).astimezone(
        ZoneInfo("Europe/Berlin")
    )
    shown = local.strftime("%Y-%m-%d %H:%M:%S")
    assert f'<time datetime="{last}" title="{last}">{shown}</time>' in html
    berlin.ctx.close()


def test_api_times_use_one_style(env: Env) -> None:
    c = env.client("admin")
    c.post("/api/alerts/2/ack", json={"comment": "seen"})
    for path in ["/api/alerts", "/api/alerts/2", "/api/overview", "/api/audit", "/api/users",
                 "/api/incidents", "/api/violations", "/api/assets/127.0.5.10",
                 "/api/conversations"]:  # fmt: skip
        text = c.get(path).text
        assert not PLUS_ZERO.search(text), (path, PLUS_ZERO.findall(text)[:3])
    a = c.get("/api/alerts/2").json()
    for value in (a["updated_at"], a["first_seen"], a["last_seen"], a["history"][0]["at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", value), value
    audit = c.get("/api/audit").json()["items"]
    assert audit and all(e["at"].endswith("Z") for e in audit)
    assert c.get("/api/overview").json()["captures"]["last_analysed"].endswith("Z")


def test_newest_alerts_show_event_time(env: Env) -> None:
    c = env.client("viewer")
    newest = c.get("/api/overview").json()["newest_alerts"]
    seen = [a["last_seen"] for a in newest]
    assert seen == sorted(seen, reverse=True)  # by when it happened
    html = c.get("/").text
    section = html[html.index('id="newest"') : html.index("</ul>", html.index('id="newest"'))]
    for a in newest:
        assert f'datetime="{a["last_seen"]}"' in section
        assert a["updated_at"] not in section  # not the analysis (or change) time


def test_zone_defaults_to_the_policy_then_utc(env: Env, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.read_text().replace("timezone: UTC", "timezone: America/Chicago"))
    (tmp_path / "p").mkdir()
    e = make_env(env.db, tmp_path / "p", policy=policy)
    assert str(e.ctx.tz) == "America/Chicago"
    assert "America/Chicago" in e.client("viewer").get("/alerts").text
    e.ctx.close()
    (tmp_path / "q").mkdir()
    e = make_env(env.db, tmp_path / "q", policy=policy, timezone="Asia/Tokyo")
    assert str(e.ctx.tz) == "Asia/Tokyo"  # --timezone wins
    e.ctx.close()
    (tmp_path / "r").mkdir()
    e = make_env(env.db, tmp_path / "r", policy=None)
    assert str(e.ctx.tz) == "UTC"
    e.ctx.close()


def test_unknown_timezone_is_one_line(env: Env, tmp_path: Path) -> None:
    app = typer.Typer(add_completion=False)
    app.command("console")(console)
    r = CliRunner().invoke(app, ["--db", str(env.db), "--auth-db", str(tmp_path / "a.db"),
                                 "--timezone", "Mars/Olympus"])  # fmt: skip
    assert r.exit_code == 2
    assert "unknown time zone 'Mars/Olympus'" in r.output and "Traceback" not in r.output
