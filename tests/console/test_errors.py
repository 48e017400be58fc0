"""Every API error has one JSON shape: {"error": {"status", "code", "message"[, "detail"]}}."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.console.conftest import Env, login


def assert_error_shape(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) in ({"status", "code", "message"}, {"status", "code", "message", "detail"})
    assert err["status"] == status
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"] and "\n" not in err["message"]
    if "detail" in err:
        assert all(set(d) == {"loc", "message", "type"} for d in err["detail"])
    return err


def test_every_kind_of_error_has_the_shape(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    anon = TestClient(env.app)
    viewer = TestClient(env.app)
    login(viewer, "viewer", "viewer-pass-1")
    analyst = TestClient(env.app)
    login(analyst, "analyst", "analyst-pass-1")
    cases = [
        (anon.get("/api/assets"), 401, "unauthorized"),
        (
            anon.post("/api/session", json={"username": "admin", "password": "wrong"}),
            401,
            "unauthorized",
        ),
        (anon.post("/api/session", json={"username": ""}), 422, "validation_error"),
        (
            anon.post(
                "/api/session", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
            "validation_error",
        ),
        (viewer.post("/api/alerts/1/ack", json={}), 403, "forbidden"),
        (viewer.get("/api/audit"), 403, "forbidden"),
        (
            analyst.post("/api/alerts/1/ack", json={}, headers={"X-CSRF-Token": "no"}),
            403,
            "csrf_failed",
        ),
        (
            analyst.post("/api/alerts/1/ack", json={}, headers={"Origin": "http://elsewhere"}),
            403,
            "csrf_failed",
        ),
        (viewer.get("/api/nowhere"), 404, "not_found"),
        (anon.get("/api/nowhere"), 404, "not_found"),
        (viewer.get("/api/alerts/424242"), 404, "not_found"),
        (viewer.get("/api/alerts/424242/evidence.pcap"), 404, "not_found"),
        (viewer.get("/api/assets/192.0.2.77"), 404, "not_found"),
        (viewer.put("/api/alerts"), 405, "method_not_allowed"),
        (viewer.get("/api/alerts", params={"limit": 0}), 422, "validation_error"),
        (viewer.get("/api/alerts/notanumber"), 422, "validation_error"),
        (viewer.get("/api/operations", params={"cursor": "1.2"}), 422, "validation_error"),
        (analyst.post("/api/alerts/1/ack", json={"comment": 5}), 422, "validation_error"),
    ]
    aid = analyst.get("/api/alerts", params={"rule": "process-write"}).json()["items"][0]["id"]
    assert analyst.post(f"/api/alerts/{aid}/close", json={}).status_code == 200
    cases.append((analyst.post(f"/api/alerts/{aid}/ack", json={}), 409, "conflict"))
    for _ in range(5):
        anon.post("/api/session", json={"username": "viewer", "password": "wrong-again"})
    cases.append(
        (
            anon.post("/api/session", json={"username": "viewer", "password": "x"}),
            429,
            "too_many_requests",
        )
    )
    for r, status, code in cases:
        err = assert_error_shape(r, status)
        assert err["code"] == code, (r.request.method, r.request.url, err)

    # An unexpected exception: a 500 in the same shape, without internals in the message.
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("otconduit.console.api.overview", boom)
    crash = TestClient(env.app, raise_server_exceptions=False)
    login(crash, "admin", "admin-pass-1")
    err = assert_error_shape(crash.get("/api/overview"), 500)
    assert err["code"] == "internal_error" and "secret" not in err["message"]


def test_pages_redirect_to_login_and_show_errors_as_html(env: Env) -> None:
    anon = TestClient(env.app)
    r = anon.get("/assets?q=plc", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/assets%3Fq%3Dplc"
    viewer = TestClient(env.app)
    login(viewer, "viewer", "viewer-pass-1")
    r = viewer.get("/alerts/424242")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no alert with id 424242" in r.text


def test_schema_documents_the_error_shape(env: Env) -> None:
    schema = TestClient(env.app).get("/api/openapi.json").json()
    assert "ErrorResponse" in schema["components"]["schemas"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if path == "/api/session" and method == "post":
                continue
            assert "401" in op["responses"], (method, path)
