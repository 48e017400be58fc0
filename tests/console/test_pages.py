"""The HTML pages: login form with its own CSRF cookie, every page renders for a viewer,
the alert form acknowledges for an analyst and refuses a viewer, logout."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.console.conftest import PASSWORDS, Env

PAGES = ["/", "/assets", "/assets?q=plc&sort=vendor&desc=true", "/assets/127.0.5.10", "/map",
         "/alerts", "/alerts?severity=high&status=open", "/alerts/1", "/incidents",
         "/incidents?include_closed=true", "/violations", "/operations", "/conversations",
         "/conversations?ip=127.0.5.100&peer=127.0.5.10&sort=client", "/operations?conversation=1",
         "/operations?ip=127.0.5.10&operation=write", "/production"]  # fmt: skip


def page_login(c: TestClient, role: str) -> str:
    form = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    r = c.post("/login", data={"username": role, "password": PASSWORDS[role],
                               "csrf_token": token.group(1), "next": "/alerts"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text)
    assert csrf
    return csrf.group(1)


def test_login_form_needs_its_csrf_cookie(env: Env) -> None:
    c = TestClient(env.app)
    r = c.post("/login", data={"username": "viewer", "password": PASSWORDS["viewer"],
                               "csrf_token": "forged"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "expired" in r.text
    assert c.get("/", follow_redirects=False).status_code == 303
    r = c.get("/login?next=//evil.example/")
    assert 'name="next" value="/"' in r.text  # no open redirect


def test_every_page_renders_for_a_viewer(env: Env) -> None:
    c = TestClient(env.app)
    page_login(c, "viewer")
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "<script>" not in r.text  # no inline scripts: the CSP forbids them
    assert c.get("/audit").status_code == 403
    assert "127.0.7.10" in c.get("/assets?q=logix").text


def test_alert_form_acknowledges_for_analysts_only(env: Env) -> None:
    viewer = TestClient(env.app)
    vtoken = page_login(viewer, "viewer")
    r = viewer.post("/alerts/2/status", data={"action": "ack", "csrf_token": vtoken},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    analyst = TestClient(env.app)
    atoken = page_login(analyst, "analyst")
    r = analyst.post("/alerts/2/status", data={"action": "ack", "comment": "on it"},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 403  # no CSRF token in the form
    form = {"action": "ack", "comment": "on it", "csrf_token": atoken}
    r = analyst.post("/alerts/2/status", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts/2"
    page = analyst.get("/alerts/2").text
    assert "acknowledged" in page and "on it" in page
    _, log = env.ctx.auth.audit_log()
    assert log[0]["action"] == "alert.ack" and log[0]["user"] == "analyst"
    admin = TestClient(env.app)
    token = page_login(admin, "admin")
    assert "alert.ack" in admin.get("/audit").text
    assert 'id="recheck"' in admin.get("/violations").text
    assert 'id="recheck"' not in analyst.get("/violations").text
    r = admin.post("/violations/check", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and "policy.check" in admin.get("/audit").text
    # Users page: admins add users; nobody else sees it.
    assert analyst.get("/users").status_code == 403
    form = {"name": "dave", "role": "analyst", "password": "dave-password", "csrf_token": token}
    r = admin.post("/users", data=form, follow_redirects=False)
    assert r.status_code == 303 and "dave" in admin.get("/users").text
    r = admin.post("/users", data={**form, "password": "short"})
    assert r.status_code == 422 and "at least 12" in r.text
    r = analyst.post("/users", data={**form, "name": "eve", "csrf_token": atoken})
    assert r.status_code == 403
    assert env.ctx.auth.authenticate("dave", "dave-password") is not None


def test_logout_needs_the_token_and_ends_the_session(env: Env) -> None:
    c = TestClient(env.app)
    token = page_login(c, "viewer")
    assert c.post("/logout", data={"csrf_token": "nope"}, follow_redirects=False).status_code == 403
    r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/", follow_redirects=False).status_code == 303
