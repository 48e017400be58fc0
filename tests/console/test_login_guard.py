"""Login throttling and the cost of logins (issue [10], security findings 1 and 2).

1. A user name is normalised once (stripped, case-folded) for both the look-up and the
   failure count, so spelling variants share one count; failures are also capped per
   client across names; and one client's failures lock a name for that client only.
2. Password checks (Argon2id, 64 MiB each) run a few at a time in a pool of their own:
   a flood of bad logins neither stalls the API nor takes gigabytes of memory.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from otconduit.console.server import BackgroundServer
from tests.console.conftest import PASSWORDS, Env

Client = Callable[[str | None], TestClient]


def _login(c: TestClient | httpx.Client, name: str, password: str) -> int:
    return c.post("/api/session", json={"username": name, "password": password}).status_code


def _from(env: Env, addr: str) -> TestClient:
    return TestClient(env.app, client=(addr, 40000))


def test_spelling_variants_of_a_name_share_one_failure_count(env: Env) -> None:
    c = _from(env, "192.0.2.10")
    variants = ["analyst", " analyst", "analyst ", "\tanalyst", "ANALYST", "Analyst\n"]
    got = [_login(c, v, "not-the-password") for v in variants]
    assert got == [401] * 5 + [429]
    for v in variants:  # every spelling is locked for this client, right password or not
        assert _login(c, v, PASSWORDS["analyst"]) == 429
    # The login page counts the same way.
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    form = {"username": " ANALYST ", "password": PASSWORDS["analyst"], "csrf_token": token[1]}
    page = c.post("/login", data=form, follow_redirects=False)
    assert page.status_code == 429 and "Too many failed logins" in page.text


def test_names_are_found_case_insensitively_and_stripped(env: Env) -> None:
    env.ctx.auth.add_user("Operator", "viewer", "operator-pass-7")
    c = _from(env, "192.0.2.11")
    assert _login(c, "  operator ", "operator-pass-7") == 200
    assert c.get("/api/session").json()["user"] == "Operator"


def test_a_lockout_is_per_client_and_name_so_others_still_log_in(env: Env) -> None:
    attacker = _from(env, "192.0.2.66")
    for _ in range(5):
        assert _login(attacker, "admin", "guess-guess") == 401
    assert _login(attacker, "admin", PASSWORDS["admin"]) == 429
    # Another client (another address behind the same proxy would be another client
    # only if the proxy passes it on; here: another address) logs in as admin.
    assert _login(_from(env, "192.0.2.67"), "admin", PASSWORDS["admin"]) == 200
    # The attacker may still try other names: the cap across names comes later.
    assert _login(attacker, "viewer", PASSWORDS["viewer"]) == 200


def test_failures_are_capped_per_client_across_names(env: Env) -> None:
    c = _from(env, "192.0.2.70")
    limit = 20  # the default cap (README)
    names = [f"user{i}" for i in range(limit)]  # never five tries on one name
    assert [_login(c, n, "guess-guess") for n in names] == [401] * limit
    assert _login(c, "someone-else", "guess-guess") == 429
    assert _login(c, "viewer", PASSWORDS["viewer"]) == 429
    assert _login(_from(env, "192.0.2.71"), "viewer", PASSWORDS["viewer"]) == 200


def test_ipv6_clients_count_per_64(env: Env) -> None:
    for i in range(5):  # five addresses of one /64: one client
        assert _login(_from(env, f"2001:db8:1:2::{i + 1}"), "admin", "guess-guess") == 401
    assert _login(_from(env, "2001:db8:1:2::99"), "admin", PASSWORDS["admin"]) == 429
    assert _login(_from(env, "2001:db8:1:3::1"), "admin", PASSWORDS["admin"]) == 200


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_login_flood_leaves_the_api_responsive_and_memory_bounded(
    live: tuple[Env, BackgroundServer],
) -> None:
    env, srv = live
    # Real cost: the console's default Argon2id (64 MiB, 3 passes, 4 lanes).
    env.ctx.auth.hasher = PasswordHasher()
    env.ctx.auth.add_user("operator", "viewer", "operator-pass-7", replace=True)
    user = httpx.Client(base_url=srv.url, timeout=30)
    assert _login(user, "viewer", PASSWORDS["viewer"]) == 200
    base = _rss_mb()
    peak = base
    latencies: list[float] = []
    statuses: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.005)

    def bad_login(i: int) -> None:
        # Sixty different addresses (Linux answers on all of 127/8): per-client limits
        # alone would not stop them.
        transport = httpx.HTTPTransport(local_address=f"127.0.{i // 200 + 1}.{i % 200 + 2}")
        with httpx.Client(base_url=srv.url, timeout=60, transport=transport) as c:
            statuses.append(_login(c, "operator", f"wrong-{i}"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    flood = [threading.Thread(target=bad_login, args=(i,)) for i in range(60)]
    t0 = time.monotonic()
    for t in flood:
        t.start()
    while any(t.is_alive() for t in flood) and time.monotonic() - t0 < 20:
        s = time.monotonic()
        assert user.get("/api/session").status_code == 200
        latencies.append(time.monotonic() - s)
        time.sleep(0.05)
    for t in flood:
        t.join(timeout=30)
    stop.set()
    sampler.join()
    assert len(statuses) == 60 and set(statuses) <= {401, 503}
    assert statuses.count(503) > 0  # past the queue: turned away at once, unchecked
    assert latencies and max(latencies) < 1.5, latencies
    # Two checks at a time, 64 MiB each; not sixty.
    assert peak - base < 400, (base, peak)
    # After the flood, a real login goes through promptly.
    s = time.monotonic()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert _login(c, "operator", "operator-pass-7") == 200
    assert time.monotonic() - s < 3
    user.close()


def test_one_client_has_at_most_two_checks_running(live: tuple[Env, BackgroundServer]) -> None:
    env, srv = live
    env.ctx.auth.hasher = PasswordHasher()  # real cost: each check takes a while
    env.ctx.auth.add_user("operator", "viewer", "operator-pass-7", replace=True)
    statuses: list[tuple[int, str]] = []
    go = threading.Barrier(8)

    def bad_login(i: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c:  # all from 127.0.0.1
            go.wait()
            r = c.post("/api/session", json={"username": "operator", "password": f"no-{i}"})
            statuses.append((r.status_code, r.text))

    threads = [threading.Thread(target=bad_login, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = [s for s, _ in statuses]
    assert len(codes) == 8 and set(codes) <= {401, 429}
    assert codes.count(401) >= 1 and codes.count(429) >= 1
    assert all("already being checked" in text for s, text in statuses if s == 429)
