"""Builds the console's ASGI application: ``create_app(settings)``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from otconduit import __version__
from otconduit.console import errors
from otconduit.console.api import router as api_router
from otconduit.console.authdb import AuthDB
from otconduit.console.context import Console, ConsoleSettings
from otconduit.console.data import StoreAccess
from otconduit.console.hosts import HostGuard, HostPolicy
from otconduit.console.pages import router as page_router
from otconduit.console.production import Production
from otconduit.console.security import SecurityMiddleware
from otconduit.console.timefmt import plant_zone
from otconduit.console.zoning import Zoning
from otconduit.policy import Policy, load_policy


def build_console(settings: ConsoleSettings, policy: Policy | None = None) -> Console:
    """Open the store and the console database (raises StoreError, AuthError, PolicyError,
    ConfigError for a bad gateway config, and TimezoneError for an unknown --timezone)."""
    if policy is None and settings.policy is not None:
        policy = load_policy(settings.policy)
    if settings.gateway is not None:
        production = Production.from_gateway(settings.gateway, settings.historian)
    else:
        production = Production(settings.historian)
    digest = None
    if settings.policy is not None:
        import hashlib

        digest = hashlib.sha256(settings.policy.read_bytes()).hexdigest()
    return Console(
        policy_sha256=digest,
        tz=plant_zone(settings.timezone or (policy.timezone if policy else None)),
        settings=settings,
        stores=StoreAccess(settings.db),
        auth=AuthDB(settings.auth_db, session_seconds=int(settings.session_hours * 3600)),
        zoning=Zoning(policy),
        production=production,
    )


def create_app(settings: ConsoleSettings, *, console: Console | None = None) -> FastAPI:
    ctx = console or build_console(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Fill the caches the first pages need while the first browser connects.
        threading.Thread(target=ctx.warm, name="console-warm", daemon=True).start()
        try:
            yield
        finally:
            ctx.close()

    app = FastAPI(
        title="Conduit console API",
        version=__version__,
        description=(
            "Everything the Conduit console shows: assets, conversations, operations, "
            "alerts, policy violations, the network map, incidents. Log in with "
            "POST /api/session; send the returned csrf_token as X-CSRF-Token on every "
            "state-changing request. Every error is "
            '{"error": {"status", "code", "message"}}.'
        ),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN: the schema is at /api/openapi.json
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.console = ctx
    errors.install(app)
    app.add_middleware(SecurityMiddleware, tls=settings.tls)
    # Outermost: a request for another host name is refused before anything else runs.
    app.add_middleware(HostGuard, policy=HostPolicy(settings.host, settings.allowed_hosts))
    static = resources.files("otconduit.console").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.include_router(api_router)
    app.include_router(page_router)
    return app
