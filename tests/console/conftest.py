"""Console fixtures: a store analysed from the project's captures (``conduit analyze``),
a console app over a copy of it, and logged-in clients per role."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from otconduit.cli.main import app as cli
from otconduit.console.app import build_console, create_app
from otconduit.console.context import Console, ConsoleSettings
from otconduit.console.server import BackgroundServer
from tests.conftest import DATA, REPO

POLICY = REPO / "examples" / "plant-policy.yaml"
CAPTURES = [DATA / "modbus_all_functions.pcap", DATA / "enip_cpppo.pcap"]
# Cheap Argon2id parameters so each login costs milliseconds in tests; the console's
# default (argon2-cffi's RFC 9106 low-memory profile) is checked in test_auth.py.
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {"viewer": "viewer-pass-1", "analyst": "analyst-pass-1", "admin": "admin-pass-1"}


@pytest.fixture(scope="session")
def analysed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("console") / "conduit.db"
    res = CliRunner().invoke(
        cli, ["analyze", *map(str, CAPTURES), "--db", str(db), "--policy", str(POLICY), "-q"]
    )
    assert res.exit_code == 0, res.output
    return db


@dataclass
class Env:
    app: FastAPI
    ctx: Console
    db: Path

    def client(self, role: str | None = None) -> TestClient:
        c = TestClient(self.app, base_url="http://testserver")
        if role is not None:
            login(c, role, PASSWORDS[role])
        return c


def login(c: TestClient, name: str, password: str) -> str:
    r = c.post("/api/session", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    c.headers["X-CSRF-Token"] = token
    return token


def make_env(db: Path, tmp: Path, *, policy: Path | None = POLICY, **kw: object) -> Env:
    kw.setdefault("allowed_hosts", ("testserver",))  # TestClient's Host
    settings = ConsoleSettings(db=db, auth_db=tmp / "console.db", policy=policy, **kw)  # type: ignore[arg-type]
    ctx = build_console(settings)
    ctx.auth.hasher = FAST_HASH
    for role, pw in PASSWORDS.items():
        ctx.auth.add_user(role, role, pw)
    return Env(create_app(settings, console=ctx), ctx, db)


@pytest.fixture
def env(analysed_db: Path, tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    e = make_env(db, tmp_path)
    yield e
    e.ctx.close()


@pytest.fixture
def client_for(env: Env) -> Iterator[Callable[[str | None], TestClient]]:
    made: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        c = env.client(role)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def live(analysed_db: Path, tmp_path: Path) -> Iterator[tuple[Env, BackgroundServer]]:
    """The console served on a free 127.0.0.1 port, with fast live-update polling."""
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    e = make_env(db, tmp_path, sse_poll=0.2)
    with BackgroundServer(e.app, e.ctx) as srv:
        yield e, srv
