"""The console's settings and the objects every request shares."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from fastapi import Request

from otconduit.console.authdb import AuthDB
from otconduit.console.data import Cache, StoreAccess, fingerprint
from otconduit.console.incidents import (
    assign_numbers,
    incidents,
    known_numbers,
    present,
    states,
    with_numbers,
)
from otconduit.console.loginguard import LoginGuard
from otconduit.console.netmap import MapAsset, map_assets
from otconduit.console.ops import ChunkRef, chunk_index
from otconduit.console.production import Production
from otconduit.console.streams import StreamSlots
from otconduit.console.zoning import Zoning
from otconduit.store import Store


@dataclass(slots=True)
class ConsoleSettings:
    db: Path
    auth_db: Path
    host: str = "127.0.0.1"
    port: int = 8080
    cert: Path | None = None
    key: Path | None = None
    policy: Path | None = None
    session_hours: float = 8.0
    incident_window: float = 900.0
    timezone: str | None = None  # plant zone for HTML times; default: the policy's, else UTC
    historian: str | None = None  # historian file or PostgreSQL DSN (gateway data)
    gateway: Path | None = None  # gateway config: tag -> device, and its historian
    sse_poll: float = 1.0  # seconds between store checks for live updates
    sse_heartbeat: float = 15.0
    sse_per_user: int = 4  # live-update streams one user may hold open
    sse_session_check: float = 5.0  # seconds between re-checks of a stream's session
    allowed_hosts: tuple[str, ...] = ()  # Host names besides loopback and --host

    @property
    def tls(self) -> bool:
        return self.cert is not None


@dataclass(slots=True)
class Console:
    settings: ConsoleSettings
    stores: StoreAccess
    auth: AuthDB
    zoning: Zoning
    production: Production = field(default_factory=lambda: Production(None))
    cache: Cache = field(default_factory=Cache)
    throttle: LoginGuard = field(default_factory=LoginGuard)
    streams: StreamSlots = field(default_factory=StreamSlots)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    policy_sha256: str | None = None  # of the policy file as last loaded
    tz: tzinfo = UTC  # the plant's time zone: every HTML table shows times in it

    # -- results cached until the store changes (see data.fingerprint) ------------------
    def chunk_index(self, store: Store) -> list[ChunkRef]:
        key = fingerprint(store, alerts=False)
        return self.cache.get("chunks", key, lambda: chunk_index(store))

    def map_assets(self, store: Store) -> list[MapAsset]:
        key = fingerprint(store, alerts=False)
        return self.cache.get("map_assets", key, lambda: map_assets(store, self.zoning))

    def incidents(
        self, store: Store, window_s: float, include_closed: bool
    ) -> list[dict[str, Any]]:
        """Incidents to show, newest activity first: grouped (cached until the store or
        the historian changes) and numbered -- at the console's own window; another
        window is a draft view, numbered only where it agrees -- with their owner and
        status as they are now."""
        machine_sig = self.production.signature()
        items = self.cache.get(
            f"incidents:{window_s}",
            (*fingerprint(store), *machine_sig),
            lambda: self._grouped(store, window_s),
        )
        return present(items, states(store), include_closed)

    def _grouped(self, store: Store, window_s: float) -> list[dict[str, Any]]:
        machine = self.production.machine_events()
        items = incidents(store, self.zoning, window_s=window_s, machine=machine)
        if window_s == self.settings.incident_window:
            numbers = self.stores.write(lambda st: assign_numbers(st, items))
        else:
            numbers = known_numbers(store)
        return with_numbers(items, numbers)

    def check_policy(self, user: str, client: str | None) -> dict[str, Any]:
        """Reload the policy file, check the store against it (replacing this plant's
        stored violations) and place assets by it from now on. The audit log records who
        applied which version of the file (its SHA-256), and whether it had changed."""
        import hashlib

        from otconduit.console.errors import ApiError
        from otconduit.policy import PolicyError, parse_policy
        from otconduit.policy.check import evaluate_and_store

        path = self.settings.policy
        if path is None:
            raise ApiError(409, "the console was started without --policy: nothing to check")
        try:
            text = path.read_text("utf-8")
            policy = parse_policy(text, str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiError(409, f"cannot read the policy file {path}: {exc}") from None
        except PolicyError as exc:
            self.auth.audit(user, "policy.check", str(path), outcome="refused",
                            detail={"error": str(exc)}, client=client)  # fmt: skip
            raise ApiError(422, str(exc)) from None
        digest = hashlib.sha256(text.encode()).hexdigest()
        found = self.stores.write(lambda st: evaluate_and_store(st, policy))
        changed = digest != self.policy_sha256
        self.zoning = Zoning(policy)
        self.cache = Cache()  # placements depend on the policy
        by_rule: dict[str, int] = {}
        for v in found:
            by_rule[v.rule] = by_rule.get(v.rule, 0) + 1
        out = {
            "policy": policy.plant,
            "file": str(path),
            "sha256": digest,
            "previous_sha256": self.policy_sha256,
            "changed": changed,
            "violations": len(found),
            "by_rule": by_rule,
        }
        self.policy_sha256 = digest
        detail = {k: v for k, v in out.items() if k != "by_rule"}
        self.auth.audit(
            user, "policy.check", f"policy:{policy.plant}", detail=detail, client=client
        )
        return out

    def warm(self) -> None:
        """Compute the cached results once (placing ten thousand assets takes a few
        hundred milliseconds); errors are left for the first request to report."""
        with contextlib.suppress(Exception):  # the request that needs it reports it
            store = self.stores.reader()
            self.map_assets(store)
            self.chunk_index(store)
            self.incidents(store, self.settings.incident_window, False)

    def close(self) -> None:
        self.stopping.set()
        self.throttle.close()
        self.stores.close()
        self.auth.close()


def console(request: Request) -> Console:
    ctx: Console = request.app.state.console
    return ctx
