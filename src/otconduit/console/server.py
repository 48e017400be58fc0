"""Running the console under uvicorn: TLS from --cert/--key, and a shutdown that ends
the live-update streams first (otherwise an open overview page holds Ctrl-C for the
whole graceful-shutdown timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from otconduit.console.context import Console


class ConsoleServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ctx: Console) -> None:
        super().__init__(config)
        self.ctx = ctx
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.ctx.stopping.set()  # signal handlers run on the loop's thread
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Stop from another thread (tests)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self.ctx.stopping.set)
        self.should_exit = True


def make_server(
    app: FastAPI,
    ctx: Console,
    *,
    host: str,
    port: int,
    cert: Path | None = None,
    key: Path | None = None,
    log_level: str = "warning",
) -> ConsoleServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    return ConsoleServer(config, ctx)


class BackgroundServer:
    """The console on a free loopback port in a thread (tests, benchmark)."""

    def __init__(self, app: FastAPI, ctx: Console, host: str = "127.0.0.1") -> None:
        with socket.socket() as s:
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        self.host = host
        self.server = make_server(app, ctx, host=host, port=self.port)
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the console server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=10)
