"""The console's REST API: login, roles, CSRF, paging, filters, alert lifecycle + audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from otconduit.store import Store, views
from tests.console.conftest import PASSWORDS, Env

Client = Callable[[str | None], TestClient]
READ_ROUTES = [
    "/api/overview",
    "/api/assets",
    "/api/assets/127.0.5.10",
    "/api/conversations",
    "/api/operations",
    "/api/alerts",
    "/api/alerts/1",
    "/api/alerts/1/evidence.pcap",
    "/api/violations",
    "/api/map",
    "/api/incidents",
    "/api/production",
    "/api/session",
    "/api/events",
    "/api/audit",
    "/api/users",
]


def _stored_violations(env: Env) -> int:
    with Store(env.db, readonly=True) as st:
        return int(st.conn.execute("SELECT count(*) FROM violations").fetchone()[0])


def _alert_id(c: TestClient, rule: str = "process-write") -> int:
    items = c.get("/api/alerts", params={"rule": rule}).json()["items"]
    assert items, f"the fixture captures raise {rule}"
    return int(items[0]["id"])


@pytest.mark.parametrize("path", READ_ROUTES)
def test_every_route_needs_a_login(client_for: Client, path: str) -> None:
    r = client_for(None).get(path)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(client_for: Client) -> None:
    c = client_for(None)
    r = c.post("/api/session", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    body = r.json()
    assert body["user"] == "viewer" and body["role"] == "viewer" and body["csrf_token"]
    assert c.get("/api/session").json()["user"] == "viewer"
    r = c.delete("/api/session", headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 204
    assert c.get("/api/overview").status_code == 401


def test_secure_cookie_under_tls(analysed_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.console.conftest import make_env

    e = make_env(analysed_db, tmp_path, cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    with TestClient(e.app, base_url="https://testserver") as c:
        r = c.post("/api/session", json={"username": "admin", "password": PASSWORDS["admin"]})
        assert "secure" in r.headers["set-cookie"].lower()
        assert "max-age=31536000" in r.headers["strict-transport-security"]
    e.ctx.close()


def test_wrong_password_is_refused_audited_and_throttled(env: Env, client_for: Client) -> None:
    c = client_for(None)
    for _ in range(5):
        r = c.post("/api/session", json={"username": "analyst", "password": "nope-nope"})
        assert r.status_code == 401
    r = c.post("/api/session", json={"username": "analyst", "password": PASSWORDS["analyst"]})
    assert r.status_code == 429  # even the right password, until the window passes
    assert c.post("/api/session", json={"username": "ghost", "password": "x"}).status_code == 401
    _, log = env.ctx.auth.audit_log()
    failed = [e for e in log if e["action"] == "login" and e["outcome"] == "failed"]
    assert len(failed) == 6 and {e["user"] for e in failed} == {"analyst", "ghost"}


def test_viewer_cannot_ack_or_close(client_for: Client) -> None:
    c = client_for("viewer")
    aid = _alert_id(c)
    for verb in ("ack", "close", "reopen"):
        r = c.post(f"/api/alerts/{aid}/{verb}", json={"comment": "x"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
    assert c.get(f"/api/alerts/{aid}").json()["status"] == "open"
    assert c.get("/api/audit").status_code == 403
    assert c.get("/api/users").status_code == 403


def test_state_changes_need_the_csrf_token(client_for: Client) -> None:
    c = client_for("analyst")
    aid = _alert_id(c)
    token = c.headers.pop("X-CSRF-Token")
    r = c.post(f"/api/alerts/{aid}/ack", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = c.post(f"/api/alerts/{aid}/ack", json={}, headers={"X-CSRF-Token": token[:-1] + "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    # The right token from another site is still refused (Origin / Sec-Fetch-Site).
    r = c.post(
        f"/api/alerts/{aid}/ack",
        json={},
        headers={"X-CSRF-Token": token, "Origin": "http://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = c.post(
        f"/api/alerts/{aid}/ack",
        json={},
        headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
    assert c.get(f"/api/alerts/{aid}").json()["status"] == "open"
    r = c.post(
        f"/api/alerts/{aid}/ack",
        json={},
        headers={"X-CSRF-Token": token, "Origin": "http://testserver"},
    )
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"


def test_ack_close_reopen_write_history_and_audit(env: Env, client_for: Client) -> None:
    c = client_for("analyst")
    aid = _alert_id(c)
    r = c.post(f"/api/alerts/{aid}/ack", json={"comment": "called the line supervisor"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "acknowledged"
    assert body["history"][-1]["user"] == "analyst"
    assert body["history"][-1]["comment"] == "called the line supervisor"
    assert c.post(f"/api/alerts/{aid}/close", json={"comment": "planned change"}).status_code == 200
    r = c.post(f"/api/alerts/{aid}/ack", json={})
    assert r.status_code == 409 and "closed" in r.json()["error"]["message"]
    assert c.post(f"/api/alerts/{aid}/reopen").status_code == 200  # body is optional
    _, log = env.ctx.auth.audit_log()
    acts = [(e["action"], e["outcome"], e["user"]) for e in log if e["target"] == f"alert:{aid}"]
    assert acts[::-1] == [
        ("alert.ack", "ok", "analyst"),
        ("alert.close", "ok", "analyst"),
        ("alert.ack", "refused", "analyst"),
        ("alert.reopen", "ok", "analyst"),
    ]
    ack = next(e for e in log if e["action"] == "alert.ack" and e["outcome"] == "ok")
    assert ack["detail"] == {"comment": "called the line supervisor"} and ack["at"]
    # The store keeps the same history (the CLI's `conduit alert show` sees it too).
    with Store(env.db, readonly=True) as st:
        rows = st.conn.execute(
            "SELECT user, to_status FROM alert_history WHERE alert_id = ? ORDER BY id", (aid,)
        ).fetchall()
    assert rows == [("analyst", "acknowledged"), ("analyst", "closed"), ("analyst", "open")]
    assert c.post("/api/alerts/999999/ack", json={}).status_code == 404


def test_admin_reads_the_audit_log_and_adds_users(client_for: Client) -> None:
    c = client_for("admin")
    r = c.post("/api/users", json={"name": "op1", "role": "viewer", "password": "op1-password"})
    assert r.status_code == 201 and r.json()["role"] == "viewer"
    assert (
        c.post(
            "/api/users", json={"name": "op1", "role": "viewer", "password": "op1-password"}
        ).status_code
        == 409
    )
    names = [u["name"] for u in c.get("/api/users").json()]
    assert "op1" in names
    log = c.get("/api/audit").json()
    assert log["items"][0]["action"] == "user.add" and log["items"][0]["user"] == "admin"
    assert client_for("analyst").get("/api/audit").status_code == 403


def test_assets_page_through_everything_once(client_for: Client, env: Env) -> None:
    c = client_for("viewer")
    full = c.get("/api/assets", params={"limit": 500}).json()
    with Store(env.db, readonly=True) as st:
        expect = {a["ip"] for a in views.assets(st)}
    assert full["total"] == len(expect) and {a["ip"] for a in full["items"]} == expect
    seen: list[str] = []
    for offset in range(0, full["total"], 2):
        page = c.get("/api/assets", params={"limit": 2, "offset": offset}).json()
        assert page["total"] == full["total"] and len(page["items"]) <= 2
        seen += [a["ip"] for a in page["items"]]
    assert seen == [a["ip"] for a in full["items"]]
    # Numeric address order: 127.0.5.10 before 127.0.5.100, 127.0.7.10 last.
    assert seen == sorted(seen, key=lambda ip: tuple(int(x) for x in ip.split(".")))
    rev = c.get("/api/assets", params={"limit": 500, "sort": "ip", "desc": True}).json()
    assert [a["ip"] for a in rev["items"]] == seen[::-1]


def test_assets_search_and_filters(client_for: Client) -> None:
    c = client_for("viewer")
    hit = c.get("/api/assets", params={"q": "logix"}).json()
    assert [a["ip"] for a in hit["items"]] == ["127.0.7.10"]  # CIP identity product name
    assert c.get("/api/assets", params={"q": "conveyor"}).json()["items"][0]["ip"] == "127.0.5.10"
    plc = c.get("/api/assets", params={"role": "plc"}).json()
    assert {a["ip"] for a in plc["items"]} == {"127.0.7.10"}
    enip = c.get("/api/assets", params={"protocol": "enip"}).json()
    assert {a["ip"] for a in enip["items"]} == {"127.0.0.1", "127.0.7.10"}
    lv2 = c.get("/api/assets", params={"level": 2}).json()
    assert lv2["items"] and all(a["level"] == 2 for a in lv2["items"])
    assert c.get("/api/assets", params={"q": "%"}).json()["total"] == 0  # LIKE is escaped
    r = c.get("/api/assets", params={"sort": "nonsense"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_asset_detail(client_for: Client) -> None:
    d = client_for("viewer").get("/api/assets/127.0.7.10").json()
    a = d["asset"]
    assert a["vendor"] == "Rockwell Automation/Allen-Bradley"
    assert a["mac_vendor"] == "XEROX CORPORATION"
    assert a["roles"] == ["plc"] and "enip/server" in a["protocols"]
    assert a["identity"]["product_name"]["source"] == "cip_identity"
    assert (a["zone"], a["level"], a["level_source"]) == (None, 1.0, "inferred")
    assert d["conversations"] and all(
        "127.0.7.10" in (cv["client_ip"], cv["server_ip"]) for cv in d["conversations"]
    )
    assert d["operations"]["items"] and d["operations"]["total"] > 0
    assert d["alerts_total"] >= 1 and d["alerts"][0]["dst_ip"] == "127.0.7.10"
    assert d["violations"] and d["incidents"]
    assert client_for("viewer").get("/api/assets/10.9.9.9").status_code == 404


def test_operations_cursor_walks_every_operation_once_newest_first(
    env: Env, client_for: Client
) -> None:
    c = client_for("viewer")
    with Store(env.db, readonly=True) as st:
        every = list(views.operations(st))
    first = c.get("/api/operations", params={"limit": 7}).json()
    assert first["total"] == len(every)
    got, page = [], first
    while True:
        got += page["items"]
        if page["next"] is None:
            break
        page = c.get("/api/operations", params={"limit": 7, "cursor": page["next"]}).json()
        assert page["total"] is None
    assert len(got) == len(every) and len({o["id"] for o in got}) == len(every)
    ts = [o["ts"] for o in got]
    assert ts == sorted(ts, reverse=True)
    key = lambda o: (o["ts"], o["src_ip"], o["dst_ip"], o["function"], o["frame"])  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, every))
    writes = c.get("/api/operations", params={"operation": "write", "limit": 500}).json()
    assert writes["items"] and all(o["operation"] == "write" for o in writes["items"])
    assert len(writes["items"]) == sum(1 for o in every if o["operation"] == "write")
    fc5 = c.get("/api/operations", params={"function": "5", "limit": 500}).json()["items"]
    assert fc5 and all(o["function_code"] == 5 for o in fc5)
    src = c.get("/api/operations", params={"src_ip": "127.0.5.101", "limit": 500}).json()["items"]
    assert src and all(o["src_ip"] == "127.0.5.101" for o in src)
    assert c.get("/api/operations", params={"cursor": "garbage"}).status_code == 422


def test_alert_filters(client_for: Client) -> None:
    c = client_for("viewer")
    every = c.get("/api/alerts", params={"limit": 500}).json()
    assert every["total"] == len(every["items"]) > 3
    high = c.get("/api/alerts", params={"severity": "high"}).json()["items"]
    assert high and all(a["severity"] in ("high", "critical") for a in high)
    rule = c.get("/api/alerts", params={"rule": "policy-breach"}).json()["items"]
    assert rule and {a["rule"] for a in rule} == {"policy-breach"}
    asset = c.get("/api/alerts", params={"asset": "127.0.7.10"}).json()["items"]
    assert asset and all("127.0.7.10" in (a["src_ip"], a["dst_ip"]) for a in asset)
    t = c.get("/api/alerts", params={"technique": "t0855"}).json()["items"]
    assert t and all("T0855" in a["techniques"] for a in t)
    assert c.get("/api/alerts", params={"status": "closed"}).json()["total"] == 0
    page = c.get("/api/alerts", params={"limit": 2, "offset": 2}).json()
    assert [a["id"] for a in page["items"]] == [a["id"] for a in every["items"][2:4]]
    assert c.get("/api/alerts", params={"severity": "huge"}).status_code == 422


def test_alert_detail_has_evidence_attack_and_runbook(client_for: Client) -> None:
    c = client_for("viewer")
    aid = _alert_id(c)
    a = c.get(f"/api/alerts/{aid}").json()
    assert a["has_evidence"] and a["evidence"][0]["frames"]
    ops = a["operations"]
    assert ops and ops[0]["function"] in ("WRITE_SINGLE_COIL", "Write Tag Fragmented")
    refs = {t["id"]: t for t in a["technique_refs"]}
    assert refs["T0855"]["name"] == "Unauthorized Command Message"
    assert refs["T0855"]["url"].startswith("https://attack.mitre.org/techniques/T0855")
    rb = a["runbook"]
    assert rb["category"] == "process-write" and rb["it_steps"] and rb["ot_steps"] and rb["do_not"]
    pcap = c.get(f"/api/alerts/{aid}/evidence.pcap")
    assert pcap.status_code == 200
    assert pcap.headers["content-type"] == "application/vnd.tcpdump.pcap"
    assert pcap.content[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")  # nanosecond pcap
    assert "attachment" in pcap.headers["content-disposition"]


def test_conversations_and_violations(client_for: Client, env: Env) -> None:
    c = client_for("viewer")
    convs = c.get("/api/conversations", params={"limit": 500}).json()
    assert convs["total"] == len(convs["items"]) > 0
    flagged = [cv for cv in convs["items"] if cv["verdict"] == "violation"]
    assert flagged and all(cv["violations"] for cv in flagged)
    pair = c.get("/api/conversations", params={"ip": "127.0.0.1", "peer": "127.0.7.10"}).json()
    assert pair["total"] >= 1 and all(
        {cv["client_ip"], cv["server_ip"]} == {"127.0.0.1", "127.0.7.10"} for cv in pair["items"]
    )
    modbus = c.get("/api/conversations", params={"protocol": "modbus"}).json()["items"]
    assert modbus and {cv["server_port"] for cv in modbus} == {502}
    v = c.get("/api/violations", params={"limit": 500}).json()
    assert v["total"] == _stored_violations(env) > 0
    assert {x["policy"] for x in v["items"]} == {"conduit-lab"}
    nc = c.get("/api/violations", params={"rule": "no-conduit"}).json()["items"]
    assert nc and {x["rule"] for x in nc} == {"no-conduit"}


def test_incidents_group_alerts_per_device_within_the_window(client_for: Client) -> None:
    c = client_for("viewer")
    inc = c.get("/api/incidents").json()
    (plc,) = [i for i in inc["items"] if "127.0.5.10" in i["assets"]]
    n = c.get("/api/alerts", params={"asset": "127.0.5.10", "limit": 500}).json()["total"]
    assert plc["alerts"] == n > 1  # every alert on the PLC, in one timeline
    # The PLC's clients are in it (an alert links its source), the other device is not.
    assert "127.0.5.100" in plc["assets"] and "127.0.7.10" not in plc["assets"]
    ts = [e["ts"] for e in plc["timeline"]]
    assert ts == sorted(ts) and plc["severity"] == "high"
    assert c.get("/api/incidents", params={"window": 0.0001}).status_code == 200


def test_grouping_chains_events_per_device_within_the_window() -> None:
    from otconduit.console.incidents import Event, group_events

    s = 1_000_000_000

    def ev(t: int, asset: str, cell: str | None, kind: str = "alert", peer: str | None = None
           ) -> Event:  # fmt: skip
        return Event(kind, t * s, t * s, 2, f"{kind}@{t}", asset, cell, {"t": t}, peer)

    events = [
        ev(0, "10.0.0.1", None),
        ev(10, "10.0.0.1", "press"),  # 10 s after the first: outside a 5 s window
        ev(12, "10.0.0.1", "press", "machine"),  # same device, 2 s later: joins
        ev(13, "10.0.0.2", "press", "machine"),  # same cell, other device: its own
        ev(15, "10.0.0.2", None, peer="10.0.0.1"),  # 10.0.0.1 -> 10.0.0.2 links them
        ev(5000, "10.0.0.2", "press"),  # much later: its own incident
    ]
    groups = sorted(sorted(e.ref["t"] for e in g) for g in group_events(events, 5 * s))
    assert groups == [[0], [10, 12, 13, 15], [5000]]
    without_link = [e for e in events if e.ref["t"] != 15]
    groups = sorted(sorted(e.ref["t"] for e in g) for g in group_events(without_link, 5 * s))
    assert groups == [[0], [10, 12], [13], [5000]]  # a shared cell links nothing
    groups = sorted(sorted(e.ref["t"] for e in g) for g in group_events(events, 20 * s))
    assert groups == [[0, 10, 12, 13, 15], [5000]]


def test_production_is_honest_without_gateway_data(client_for: Client) -> None:
    p = client_for("viewer").get("/api/production").json()
    assert p["available"] is False and "no gateway data yet" in p["message"]


def test_overview_counts(client_for: Client, env: Env) -> None:
    o = client_for("viewer").get("/api/overview").json()
    assert o["assets"]["total"] == 6
    assert o["alerts"]["by_status"]["open"] == sum(o["alerts"]["not_closed_by_severity"].values())
    assert o["policy"] == "conduit-lab"
    assert sum(o["violations"].values()) == _stored_violations(env) > 0
    assert o["operations"] > 0 and o["newest_alerts"]
