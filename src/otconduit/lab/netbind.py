"""Per-role source addresses for outgoing connections.

Every plant role must speak from its own loopback address (the HMI from 127.0.20.10, the
historian from 127.0.35.10, ...), or zones would be meaningless in the capture. Our own
clients pass ``local_addr`` directly; third-party clients that open their sockets through
``loop.create_connection`` (asyncua) are bound via a context variable read by the event
loop the plant runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
from typing import Any

SOURCE_ADDRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lab_source_address", default=None
)


def check_loopback(ip: str) -> str:
    """The lab never talks to anything outside 127/8."""
    if not ipaddress.IPv4Address(ip).is_loopback:
        raise ValueError(f"lab traffic is restricted to loopback, got {ip}")
    return ip


class BoundEventLoop(asyncio.SelectorEventLoop):
    """Event loop whose ``create_connection`` binds to the task's SOURCE_ADDRESS."""

    async def create_connection(
        self, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> Any:
        if host is not None:
            check_loopback(str(host))
        src = SOURCE_ADDRESS.get()
        if src and kwargs.get("local_addr") is None and kwargs.get("sock") is None:
            kwargs["local_addr"] = (check_loopback(src), 0)
        return await super().create_connection(protocol_factory, host, port, **kwargs)


async def open_connection(
    host: str, port: int, source: str, timeout: float = 3.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP connection from ``source`` (any port) to ``host:port``, both on loopback."""
    check_loopback(host)
    check_loopback(source)
    return await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0)), timeout
    )


async def close_writer(writer: asyncio.StreamWriter | None, timeout: float = 1.0) -> None:
    """Close a stream without hanging on a peer that is already gone."""
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(writer.wait_closed(), timeout)


class BoundClient:
    """A client's one TCP connection from its own source address: what the lab's Modbus
    and S7 clients share (address, timeout, stream pair, a lock so requests don't mix)."""

    def __init__(self, host: str, source: str, port: int, timeout: float) -> None:
        self.host = host
        self.source = source
        self.port = port
        self.timeout = timeout
        self.last_sent = 0.0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def _open(self) -> None:
        self._reader, self._writer = await open_connection(
            self.host, self.port, self.source, self.timeout
        )

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        await close_writer(writer)
