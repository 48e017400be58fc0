"""Console hardening (issue [10], security findings 4, 6, 7 and the console's part of 9):
bounded caches, no connection strings or driver errors in responses, no 500 from a huge
page offset, a private auth database, a Host-header allow-list, a password policy."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from otconduit.console.authdb import AuthDB
from otconduit.console.bounded import BoundedLRU
from otconduit.console.hosts import HostPolicy
from otconduit.console.loginguard import TABLE_MAX, LoginGuard
from otconduit.console.server import BackgroundServer
from tests.console.conftest import PASSWORDS, Env, login, make_env
from tests.console.test_pages import PAGES

# -- 4. bounded caches ------------------------------------------------------------------


def test_incident_windows_do_not_grow_the_cache(env: Env) -> None:
    c = env.client("viewer")
    before = c.get("/api/incidents").json()
    for i in range(150):  # every distinct window once made an entry that never left
        assert c.get("/api/incidents", params={"window": 60 + i / 7}).status_code == 200
    assert len(env.ctx.cache) <= env.ctx.cache.maxsize <= 64
    assert c.get("/api/incidents").json() == before  # evicted results are made again
    c.close()


def test_the_login_tables_are_bounded() -> None:
    guard = LoginGuard()
    try:
        for i in range(TABLE_MAX + 500):
            guard.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"name{i}")
        by_name, by_client = guard.sizes()
        assert by_name <= TABLE_MAX and by_client <= TABLE_MAX
    finally:
        guard.close()


def test_bounded_lru_drops_the_least_recently_used() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)


# -- 6. no secrets in messages ----------------------------------------------------------

SECRET = "s3cretpw"
DSNS = [
    f"postgresql://u:{SECRET}@127.0.0.1:1/x",  # well-formed, nothing listening
    f"postgresql://u:{SECRET}@[bad/x",  # malformed: libpq quotes it back
    f"host=127.0.0.1 port=1 password={SECRET} dbname",  # malformed key=value
]


@pytest.mark.parametrize("dsn", DSNS)
def test_a_broken_historian_dsn_never_reaches_a_client(
    analysed_db: Path, tmp_path: Path, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    e = make_env(analysed_db, tmp_path, historian=dsn)
    c = e.client("admin")
    caplog.set_level(logging.WARNING, logger="otconduit.console")
    try:
        p = c.get("/api/production").json()
        assert p["available"] is False and "historian unavailable" in p["message"]
        for path in ["/api/production", "/api/overview", "/api/incidents",
                     "/api/assets/127.0.5.10", "/production", "/", "/incidents",
                     "/assets/127.0.5.10"]:  # fmt: skip
            r = c.get(path)
            assert r.status_code == 200, path
            assert SECRET not in r.text and "postgresql://" not in r.text, path
        assert "historian unavailable" in caplog.text  # the details go to the log...
        assert SECRET not in caplog.text  # ...without the password
    finally:
        c.close()
        e.ctx.close()


# -- 7. page offsets --------------------------------------------------------------------

BAD_OFFSETS = [str(2**63), str(2**64 + 7), "-1", str(-(2**63) - 1), "abc", "1e3", ""]
PAGED = ["/assets", "/conversations", "/alerts", "/violations", "/audit"]


def test_no_page_fails_on_a_huge_or_garbage_offset(env: Env) -> None:
    c = TestClient(env.app, raise_server_exceptions=False)
    login(c, "admin", PASSWORDS["admin"])
    for path in [*PAGES, *PAGED, "/users", "/map"]:
        sep = "&" if "?" in path else "?"
        for off in BAD_OFFSETS:
            r = c.get(f"{path}{sep}offset={off}")
            assert r.status_code < 500, (path, off, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), (path, off)
    for path in PAGED:  # an integer out of range is clamped: the page still shows
        assert c.get(f"{path}?offset={2**63}").status_code == 200, path
        assert c.get(f"{path}?offset=-5").status_code == 200, path
    for conv in (str(2**63), "-1", "x"):
        r = c.get(f"/operations?conversation={conv}")
        assert 400 <= r.status_code < 500, conv
    c.close()


# -- 9. auth database mode, Host allow-list, password policy ----------------------------


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_the_auth_database_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.console.db"
        db = AuthDB(fresh)
        db.add_user("someone", "viewer", "a long pass phrase")
        db.close()
        for p in tmp_path.glob("fresh.console.db*"):
            assert _mode(p) == 0o600, p
        loose = tmp_path / "loose.console.db"
        AuthDB(loose).close()
        loose.chmod(0o644)  # made by an older Conduit
        AuthDB(loose).close()
        assert _mode(loose) == 0o600
    finally:
        os.umask(old)


def test_user_add_creates_a_private_auth_database(tmp_path: Path) -> None:
    from tests.console.test_cli import app

    db = tmp_path / "plant.db"
    r = CliRunner().invoke(
        app,
        ["user", "add", "alice", "--password-stdin", "--db", str(db)],
        input="correct horse battery\n",
    )
    assert r.exit_code == 0, r.output
    assert _mode(tmp_path / "plant.console.db") == 0o600


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", "x"],
)
def test_other_host_names_are_refused(env: Env, host: str) -> None:
    c = TestClient(env.app, headers={"host": host})
    for r in (
        c.get("/login"),
        c.post("/api/session", json={"username": "admin", "password": PASSWORDS["admin"]}),
        c.get("/api/overview"),
        c.get("/static/console.css"),
    ):
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "host_not_allowed"
        assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.8.9.10:1", "[::1]:8080", "testserver"]
)
def test_loopback_and_configured_names_are_served(env: Env, host: str) -> None:
    c = TestClient(env.app, headers={"host": host})
    r = c.post("/api/session", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert r.status_code == 200, host


def test_the_allow_list_over_real_http(live: tuple[Env, BackgroundServer]) -> None:
    import httpx

    _, srv = live
    with httpx.Client(base_url=srv.url, timeout=5) as c:
        assert c.get("/login").status_code == 200  # Host: 127.0.0.1:port
        r = c.get("/login", headers={"Host": "rebind.attacker.example"})
        assert r.status_code == 400


def test_host_policy() -> None:
    wild = HostPolicy("0.0.0.0")  # every interface: any address literal, listed names only
    assert wild.allows("10.1.2.3:8080") and wild.allows("[fe80::1]")
    assert not wild.allows("console.plant.example")
    named = HostPolicy("10.0.0.5", ["console.plant.example", "10.9.0.0/16"])
    assert named.allows("Console.Plant.Example.:443") and named.allows("10.9.4.4")
    assert named.allows("10.0.0.5") and not named.allows("10.0.0.6")
    assert not named.allows("evil.example") and HostPolicy("::1", ["*"]).allows("evil.example")
    with pytest.raises(ValueError):
        HostPolicy("127.0.0.1", ["http://x/y"])


def test_console_refuses_a_bad_allowed_host(tmp_path: Path) -> None:
    from tests.console.test_cli import app

    r = CliRunner().invoke(app, ["console", "--allowed-host", "a b", "--db", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--allowed-host" in r.output


WEAK = [
    ("op2", "short-pw", "at least 12"),
    ("op2", "Password1234!", "too common"),
    ("op2", "qwertyuiop12", "too common"),
    ("op2", "123456789012", "too common"),
    ("op2", "passwordpassword", "too common"),
    ("op2", "abcabcabcabc", "too common"),
    ("longoperator", "LongOperator", "user name"),
    ("longoperator", "longoperator2024", "user name"),
]


@pytest.mark.parametrize(("name", "password", "why"), WEAK)
def test_weak_passwords_are_refused(env: Env, name: str, password: str, why: str) -> None:
    c = env.client("admin")
    r = c.post("/api/users", json={"name": name, "role": "viewer", "password": password})
    assert r.status_code == 422 and why in r.text, r.text
    c.close()


def test_the_policy_holds_for_the_api_and_the_cli(env: Env, tmp_path: Path) -> None:
    c = env.client("admin")
    r = c.post(
        "/api/users", json={"name": "op3", "role": "viewer", "password": "tram lines at dusk"}
    )
    assert r.status_code == 201
    c.close()
    from tests.console.test_cli import app

    r = CliRunner().invoke(
        app,
        ["user", "add", "bob", "--password-stdin", "--auth-db", str(tmp_path / "u.db")],
        input="Welcome2024!\n",
    )
    assert r.exit_code == 2 and "too common" in r.output
