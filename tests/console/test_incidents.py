"""Incidents: grouped per device and time window, numbered INC-1, INC-2, ... in the order
they began (kept in the store, so a reload or a new console shows the same numbers), with
an owner and a status (open / investigating / resolved) that analysts set -- every change
in the incident's history and in the audit log."""

from __future__ import annotations

import re
from pathlib import Path

from otconduit.store import Store
from tests.console.conftest import Env, make_env
from tests.console.test_pages import page_login

PLC, OTHER = "127.0.5.10", "127.0.7.10"


def _incidents(env: Env, **params: object) -> list[dict[str, object]]:
    r = env.client("viewer").get("/api/incidents", params={"include_closed": True, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


def _add_alert(db: Path, dst: str, src: str, first_ns: int, title: str = "late alert") -> int:
    """An alert written as detection would (enough columns for the console)."""
    with Store(db) as st:
        c = st.conn
        cur = c.execute(
            "INSERT INTO alerts (rule, title, category, severity, techniques, src_ip, dst_ip, "
            "summary, first_seen, last_seen, count, status, created_at, updated_at) "
            "VALUES ('process-write', ?, 'impair-process-control', 3, '[]', ?, ?, 's', ?, ?, 1, "
            "'open', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            (title, src, dst, first_ns, first_ns),
        )
        c.execute("UPDATE alert_changes SET n = n + 1")
        c.commit()
        assert cur.lastrowid is not None
        return cur.lastrowid


def test_numbers_are_sequential_in_time_order_and_stable(env: Env, tmp_path: Path) -> None:
    items = _incidents(env)
    numbers = sorted(int(str(i["id"]).removeprefix("INC-")) for i in items)
    assert numbers == list(range(1, len(items) + 1)) and len(items) >= 2  # no jumps
    by_start = sorted(items, key=lambda i: str(i["first_seen"]))
    assert [i["id"] for i in by_start] == [f"INC-{n}" for n in numbers]
    assert all(i["status"] == "open" and i["owner"] is None for i in items)
    plc = next(i for i in items if PLC in i["assets"])  # type: ignore[operator]
    # A new console on the same store (a restart): the same numbers.
    (tmp_path / "again").mkdir()
    again = make_env(env.db, tmp_path / "again")
    assert {i["id"]: i["assets"] for i in _incidents(again)} == {
        i["id"]: i["assets"] for i in items
    }
    # A later alert on a new device is the next number; an earlier one on the PLC, within
    # the window, joins the PLC's incident, which keeps its number.
    first = min(int(e) for e in _first_ns(env.db))
    _add_alert(env.db, "127.0.9.9", "127.0.9.8", first + 10**13)
    _add_alert(env.db, PLC, "127.0.5.100", first - 60 * 10**9, "earlier write")
    after = {str(i["id"]): i for i in _incidents(again)}
    assert f"INC-{len(items) + 1}" in after
    assert after[f"INC-{len(items) + 1}"]["assets"] == ["127.0.9.8", "127.0.9.9"]
    grown = after[str(plc["id"])]
    assert grown["alerts"] == int(str(plc["alerts"])) + 1
    assert grown["timeline"][0]["title"] == "earlier write"  # type: ignore[index]
    again.ctx.close()


def _first_ns(db: Path) -> list[int]:
    with Store(db, readonly=True) as st:
        return [r[0] for r in st.conn.execute("SELECT first_seen FROM alerts")]


def test_devices_not_cells_group_events(env: Env) -> None:
    items = _incidents(env)
    plc = next(i for i in items if PLC in i["assets"])  # type: ignore[operator]
    other = next(i for i in items if OTHER in i["assets"])  # type: ignore[operator]
    assert plc["id"] != other["id"]
    assert OTHER not in plc["assets"]  # type: ignore[operator]


def test_owner_and_status_are_set_by_analysts_and_audited(env: Env) -> None:
    inc = _incidents(env)[0]
    iid = str(inc["id"])
    analyst = env.client("analyst")
    r = analyst.post(f"/api/incidents/{iid}", json={"owner": "analyst", "status": "investigating",
                                                    "comment": "taking it"})  # fmt: skip
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["owner"], d["status"]) == ("analyst", "investigating")
    h = [(x["field"], x["old"], x["new"], x["user"], x["comment"]) for x in d["history"]]
    assert h == [("owner", None, "analyst", "analyst", "taking it"),
                 ("status", "open", "investigating", "analyst", "taking it")]  # fmt: skip
    assert all(x["at"].endswith("Z") for x in d["history"])
    _, log = env.ctx.auth.audit_log(limit=50)
    mine = [(e["action"], e["target"], e["detail"]) for e in log if e["action"].startswith("inc")]
    assert ("incident.status", f"incident:{iid}",
            {"from": "open", "to": "investigating", "comment": "taking it"}) in mine  # fmt: skip
    assert any(a == "incident.owner" and dt["to"] == "analyst" for a, _, dt in mine)
    # The same number, owner and status after a reload.
    got = env.client("viewer").get(f"/api/incidents/{iid.removeprefix('INC-')}").json()
    assert (got["id"], got["owner"], got["status"]) == (iid, "analyst", "investigating")
    # Resolved incidents leave the default list.
    analyst.post(f"/api/incidents/{iid}", json={"status": "resolved"})
    assert iid not in {i["id"] for i in env.client("viewer").get("/api/incidents").json()["items"]}
    assert iid in {str(i["id"]) for i in _incidents(env)}


def test_incident_changes_are_refused_properly(env: Env) -> None:
    iid = str(_incidents(env)[0]["id"])
    assert env.client("viewer").post(f"/api/incidents/{iid}", json={"owner": "viewer"}
                                     ).status_code == 403  # fmt: skip
    a = env.client("analyst")
    assert a.post(f"/api/incidents/{iid}", json={"owner": "nobody-here"}).status_code == 422
    assert a.post(f"/api/incidents/{iid}", json={"status": "done"}).status_code == 422
    assert a.post("/api/incidents/INC-999", json={"status": "resolved"}).status_code == 404
    assert a.get("/api/incidents/banana").status_code == 404
    del a.headers["X-CSRF-Token"]
    assert a.post(f"/api/incidents/{iid}", json={"status": "resolved"}).status_code == 403
    assert env.client("viewer").get(f"/api/incidents/{iid}").json()["status"] == "open"


def test_incident_form_on_the_page(env: Env) -> None:
    c = env.client()
    token = page_login(c, "analyst")
    page = c.get("/incidents").text
    ids = re.findall(r'<section class="incident" id="(INC-\d+)"', page)
    assert ids and f'action="/incidents/{ids[0]}"' in page
    r = c.post(f"/incidents/{ids[0]}", data={"owner": "admin", "status": "investigating",
                                              "csrf_token": token, "back": "?"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith(f"#{ids[0]}")
    page = c.get("/incidents").text
    section = page[page.index(f'id="{ids[0]}"') :]
    section = section[: section.index("</section>")]
    assert 'data-status="investigating"' in section and ">admin</b>" in section
    assert "owner — → admin" in section and "status open → investigating" in section
    viewer = env.client()
    vtoken = page_login(viewer, "viewer")
    assert 'class="owner"' not in viewer.get("/incidents").text
    r = viewer.post(f"/incidents/{ids[0]}", data={"status": "resolved", "csrf_token": vtoken},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
