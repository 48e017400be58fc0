"""Live-update streams (issue [10], security finding 5): a stream re-checks its session
and ends after logout or expiry, and one user holds at most a few streams at once."""

from __future__ import annotations

import contextlib
import time

import httpx

from otconduit.console.server import BackgroundServer
from tests.console.conftest import PASSWORDS, Env
from tests.console.test_live import _events


def _client(srv: BackgroundServer, role: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=srv.url, timeout=5)
    r = c.post("/api/session", json={"username": role, "password": PASSWORDS[role]})
    assert r.status_code == 200
    return c, r.json()["csrf_token"]


def test_a_stream_ends_soon_after_logout(live: tuple[Env, BackgroundServer]) -> None:
    env, srv = live
    env.ctx.settings.sse_session_check = 0.2
    c, token = _client(srv, "viewer")
    with contextlib.closing(c), c.stream("GET", "/api/events") as s:
        events = _events(s.iter_lines())
        assert next(events)[0] == "overview"
        with httpx.Client(base_url=srv.url, cookies=c.cookies, timeout=5) as other:
            r = other.delete("/api/session", headers={"X-CSRF-Token": token})
            assert r.status_code == 204
        t0 = time.monotonic()
        rest = list(events)  # the stream closes (today: it stays open, read timeout)
        assert rest and rest[-1] == ("end", {"reason": "session ended"})
        assert time.monotonic() - t0 < 3


def test_a_stream_ends_when_its_session_expires(live: tuple[Env, BackgroundServer]) -> None:
    env, srv = live
    env.ctx.settings.sse_session_check = 0.2
    c, _ = _client(srv, "analyst")
    with contextlib.closing(c), c.stream("GET", "/api/events") as s:
        events = _events(s.iter_lines())
        assert next(events)[0] == "overview"
        env.ctx.auth.conn().execute("UPDATE sessions SET expires_at = 1")
        rest = list(events)
        assert rest and rest[-1][0] == "end"


def test_streams_per_user_are_capped(live: tuple[Env, BackgroundServer]) -> None:
    env, srv = live
    limit = env.ctx.settings.sse_per_user
    assert limit == 4
    c, _ = _client(srv, "viewer")
    c2, _ = _client(srv, "viewer")  # a second session of the same user counts too
    analyst, _ = _client(srv, "analyst")
    with contextlib.ExitStack() as stack:
        opened = []
        for _ in range(limit):
            s = stack.enter_context(c.stream("GET", "/api/events"))
            assert s.status_code == 200
            lines = s.iter_lines()  # held: dropping it would close the connection
            next(lines)
            opened.append((s, lines))
        for who in (c, c2):
            r = who.get("/api/events")
            assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        with analyst.stream("GET", "/api/events") as other:
            assert other.status_code == 200  # another user is not affected
        opened[0][0].close()  # closing one frees its slot within a poll or two
        deadline = time.monotonic() + 5
        while True:
            with c2.stream("GET", "/api/events") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream's slot was not freed"
            time.sleep(0.1)
    # All closed: the count goes back to zero.
    deadline = time.monotonic() + 5
    ids = [u["id"] for u in env.ctx.auth.users()]
    while any(env.ctx.streams.open(i) for i in ids):
        assert time.monotonic() < deadline, "stream slots leaked"
        time.sleep(0.1)
    for x in (c, c2, analyst):
        x.close()
