"""The console served for real (uvicorn on 127.0.0.1): live updates over server-sent
events, and a clean stop while a stream is open."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from otconduit.console.server import BackgroundServer
from tests.console.conftest import PASSWORDS, Env


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """Yield (event, data) from an SSE line iterator."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_overview_stream_pushes_a_change(live: tuple[Env, BackgroundServer]) -> None:
    _, srv = live
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        r = c.post("/api/session", json={"username": "analyst", "password": PASSWORDS["analyst"]})
        token = r.json()["csrf_token"]
        aid = c.get("/api/alerts", params={"status": "open", "limit": 1}).json()["items"][0]["id"]
        with c.stream("GET", "/api/events") as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            events = _events(s.iter_lines())
            name, first = next(events)
            assert name == "overview"
            open_before = first["alerts"]["by_status"]["open"]
            # Acknowledge on another connection; the stream reports it within a poll or two.
            with httpx.Client(base_url=srv.url, cookies=c.cookies, timeout=10) as other:
                t0 = time.monotonic()
                r = other.post(f"/api/alerts/{aid}/ack", json={}, headers={"X-CSRF-Token": token})
                assert r.status_code == 200
            name, second = next(events)
            assert name == "overview" and time.monotonic() - t0 < 5
            assert second["alerts"]["by_status"]["open"] == open_before - 1
            # Newest by when it happened (not by change): the alert keeps its place, with
            # its new status.
            (acked,) = [a for a in second["newest_alerts"] if a["id"] == aid]
            assert acked["status"] == "acknowledged"


def test_stream_needs_a_login(live: tuple[Env, BackgroundServer]) -> None:
    _, srv = live
    r = httpx.get(srv.url + "/api/events", timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_server_stops_promptly_with_a_stream_open(live: tuple[Env, BackgroundServer]) -> None:
    _, srv = live
    c = httpx.Client(base_url=srv.url, timeout=10)
    c.post("/api/session", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    with c.stream("GET", "/api/events") as s:
        next(s.iter_lines())
        t0 = time.monotonic()
        srv.server.stop()
        srv.thread.join(timeout=10)
        assert not srv.thread.is_alive() and time.monotonic() - t0 < 2.5
    c.close()
