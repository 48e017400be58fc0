"""The alerts list puts what needs a person first (severity, then newest), sorts on
request, and lets an analyst acknowledge many alerts at once -- each one recorded in its
own history and in the audit log, exactly as when acknowledged one by one."""

from __future__ import annotations

import re
from itertools import pairwise

from otconduit.detect.rules import Severity
from tests.console.conftest import Env
from tests.console.test_pages import page_login

RANK = {s.label: int(s) for s in Severity}


def _order(items: list[dict[str, object]]) -> list[tuple[int, str]]:
    return [(-RANK[str(a["severity"])], str(a["last_seen"])) for a in items]


def test_default_sort_is_severity_then_newest(env: Env) -> None:
    c = env.client("viewer")
    items = c.get("/api/alerts", params={"limit": 500}).json()["items"]
    sevs = [RANK[a["severity"]] for a in items]
    assert sevs == sorted(sevs, reverse=True) and len(set(sevs)) > 1
    for a, b in pairwise(items):
        if a["severity"] == b["severity"]:
            assert a["last_seen"] >= b["last_seen"]
    # The page lists the same rows in the same order.
    html = c.get("/alerts").text
    ids = [int(x) for x in re.findall(r'<tr data-alert="(\d+)"', html)]
    assert ids == [a["id"] for a in items][: len(ids)]


def test_sort_controls(env: Env) -> None:
    c = env.client("viewer")

    def ids(sort: str) -> list[int]:
        r = c.get("/api/alerts", params={"sort": sort, "limit": 500})
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    by_count = c.get("/api/alerts", params={"sort": "count", "limit": 500}).json()["items"]
    counts = [a["count"] for a in by_count]
    assert counts == sorted(counts, reverse=True) and counts[0] > 1
    rules = [a["rule"] for a in c.get("/api/alerts", params={"sort": "rule"}).json()["items"]]
    assert rules == sorted(rules)
    newest = c.get("/api/alerts", params={"sort": "newest"}).json()["items"]
    assert [a["last_seen"] for a in newest] == sorted((a["last_seen"] for a in newest),
                                                       reverse=True)  # fmt: skip
    assert ids("severity") != ids("newest")
    assert c.get("/api/alerts", params={"sort": "bogus"}).status_code == 422
    html = c.get("/alerts", params={"sort": "count"}).text
    page_ids = [int(x) for x in re.findall(r'<tr data-alert="(\d+)"', html)]
    assert page_ids == [a["id"] for a in by_count][: len(page_ids)]
    sorts = html[html.index('id="sorts"') :]
    for label in ("severity", "time", "count", "rule"):
        assert f">{label}</a>" in sorts


def test_bulk_acknowledge_via_api(env: Env) -> None:
    c = env.client("analyst")
    items = c.get("/api/alerts", params={"status": "open", "limit": 3}).json()["items"]
    ids = [a["id"] for a in items]
    r = c.post("/api/alerts/bulk", json={"ids": [*ids, 999999], "comment": "shift handover"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] == ids and body["status"] == "acknowledged"
    assert [x["id"] for x in body["refused"]] == [999999]
    for aid in ids:
        a = c.get(f"/api/alerts/{aid}").json()
        assert a["status"] == "acknowledged"
        (h,) = a["history"]
        assert (h["user"], h["from_status"], h["to_status"], h["comment"]) == (
            "analyst", "open", "acknowledged", "shift handover")  # fmt: skip
    _, log = env.ctx.auth.audit_log(limit=100)
    acks = {e["target"] for e in log if e["action"] == "alert.ack" and e["outcome"] == "ok"}
    assert {f"alert:{i}" for i in ids} <= acks
    # Again: already acknowledged, so refused and left alone.
    again = c.post("/api/alerts/bulk", json={"ids": ids}).json()
    assert again["changed"] == [] and len(again["refused"]) == len(ids)


def test_bulk_acknowledge_is_for_analysts_with_csrf(env: Env) -> None:
    v = env.client("viewer")
    r = v.post("/api/alerts/bulk", json={"ids": [1]})
    assert r.status_code == 403
    a = env.client("analyst")
    del a.headers["X-CSRF-Token"]
    assert a.post("/api/alerts/bulk", json={"ids": [1]}).status_code == 403
    assert env.client("viewer").get("/api/alerts/1").json()["status"] == "open"


def test_bulk_acknowledge_via_the_page(env: Env) -> None:
    c = env.client()
    token = page_login(c, "analyst")
    page = c.get("/alerts", params={"severity": "high"}).text
    assert 'id="bulk-ack"' in page and 'name="ids"' in page
    back = re.search(r'name="back" value="([^"]*)"', page)
    assert back is not None
    ids = re.findall(r'name="ids" value="(\d+)"', page)[:2]
    r = c.post("/alerts/bulk", data={"ids": ids, "action": "ack", "csrf_token": token,
                                     "back": back.group(1).replace("&amp;", "&")},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert r.headers["location"].startswith("/alerts?severity=high")
    assert "changed=2" in r.headers["location"]
    shown = c.get(r.headers["location"]).text
    assert 'id="bulk-result"' in shown and "2 alerts changed" in shown
    for aid in ids:
        a = c.get(f"/api/alerts/{aid}").json()
        assert a["status"] == "acknowledged" and a["history"][0]["user"] == "analyst"
    # Without the form's CSRF token nothing changes.
    r = c.post("/alerts/bulk", data={"ids": ["1"], "csrf_token": "forged"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 403


def test_viewer_gets_no_bulk_form(env: Env) -> None:
    c = env.client()
    token = page_login(c, "viewer")
    page = c.get("/alerts").text
    assert 'id="bulk"' not in page and 'name="ids"' not in page
    r = c.post("/alerts/bulk", data={"ids": ["1"], "csrf_token": token},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
