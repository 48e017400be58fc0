"""Schemathesis against the console's OpenAPI schema, logged in as an admin (so every
route is reachable): generated requests never cause a server error, and every response
conforms to the schema (status codes, content types, bodies)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.console.conftest import PASSWORDS, make_env

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

OPERATIONS = [
    ("GET", "/api/overview"),
    ("GET", "/api/assets"),
    ("GET", "/api/assets/{ip}"),
    ("GET", "/api/conversations"),
    ("GET", "/api/operations"),
    ("GET", "/api/alerts"),
    ("GET", "/api/alerts/{alert_id}"),
    ("POST", "/api/alerts/{alert_id}/ack"),
    ("POST", "/api/alerts/{alert_id}/close"),
    ("POST", "/api/alerts/{alert_id}/reopen"),
    ("POST", "/api/alerts/bulk"),
    ("GET", "/api/alerts/{alert_id}/evidence.pcap"),
    ("GET", "/api/violations"),
    ("GET", "/api/map"),
    ("GET", "/api/incidents"),
    ("GET", "/api/incidents/{incident_id}"),
    ("POST", "/api/incidents/{incident_id}"),
    ("GET", "/api/production"),
    ("GET", "/api/audit"),
    ("POST", "/api/policy/check"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("GET", "/api/session"),
    ("POST", "/api/session"),
    ("DELETE", "/api/session"),  # logged out with a throwaway session, see below
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api(analysed_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("schema")
    db = tmp / "conduit.db"
    shutil.copy(analysed_db, db)
    env = make_env(db, tmp)
    # Generated logins must not lock the admin out (per name, nor per client).
    env.ctx.throttle.name_limit = env.ctx.throttle.client_limit = 10**9
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", env.app)
    yield env, schema
    env.ctx.close()


def _session(env: Any) -> dict[str, str]:
    with TestClient(env.app) as c:
        r = c.post("/api/session", json={"username": "admin", "password": PASSWORDS["admin"]})
        return {
            "X-CSRF-Token": r.json()["csrf_token"],
            "Cookie": f"conduit_session={r.cookies['conduit_session']}",
        }


def test_the_list_covers_every_documented_operation(api: Any) -> None:
    _, schema = api
    documented = {
        (method.upper(), path) for path, ops in schema.raw_schema["paths"].items() for method in ops
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_error_and_responses_match_the_schema(api: Any, method: str, path: str) -> None:
    env, schema = api
    op = schema[path][method]
    headers = _session(env)

    @given(case=op.as_strategy())
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Any) -> None:
        # Logging out ends the session: each DELETE gets a fresh one.
        h = _session(env) if method == "DELETE" else headers
        case.call_and_validate(headers=h, checks=CHECKS)

    run()
