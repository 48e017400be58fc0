"""The console's settings and the objects every request shares."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from otconduit.console.authdb import AuthDB
from otconduit.console.data import Cache, StoreAccess, fingerprint
from otconduit.console.incidents import incidents
from otconduit.console.netmap import MapAsset, map_assets
from otconduit.console.ops import ChunkRef, chunk_index
from otconduit.console.production import Production
from otconduit.console.security import LoginThrottle
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
    historian: str | None = None  # historian file or PostgreSQL DSN (gateway data)
    gateway: Path | None = None  # gateway config: tag -> device, and its historian
    sse_poll: float = 1.0  # seconds between store checks for live updates
    sse_heartbeat: float = 15.0

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
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

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
        machine_sig = self.production.signature()
        return self.cache.get(
            f"incidents:{window_s}:{include_closed}",
            (*fingerprint(store), *machine_sig),
            lambda: incidents(
                store,
                self.zoning,
                window_s=window_s,
                include_closed=include_closed,
                machine=self.production.machine_events(),
            ),
        )

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
        self.stores.close()
        self.auth.close()


def console(request: Request) -> Console:
    ctx: Console = request.app.state.console
    return ctx
