"""Plain HTTP for the IT side of the plant: an intranet server, the historian's trend page.

IT traffic has to be there for a monitor to tell it from OT traffic; it does not need to
be fancy. One request per connection (``Connection: close``), small bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from otconduit.lab.netbind import close_writer, open_connection

PageSource = Callable[[str], tuple[str, bytes]]


class HttpServer:
    """Minimal HTTP/1.1 server: ``pages(path)`` returns (content type, body)."""

    def __init__(self, name: str, ip: str, port: int, pages: PageSource) -> None:
        self.name = name
        self.ip = ip
        self.port = port
        self.pages = pages
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.ip, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            parts = line.split()
            path = parts[1] if len(parts) > 1 else "/"
            ctype, body = self.pages(path)
            status = "200 OK" if body else "404 Not Found"
            self.requests += 1
            writer.write(
                f"HTTP/1.1 {status}\r\nServer: conduit-lab\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            await close_writer(writer)


def intranet_pages(path: str) -> tuple[str, bytes]:
    """Static-looking intranet: canteen menu, news, a JSON directory."""
    if path.startswith("/api/"):
        return "application/json", json.dumps({"path": path, "items": [1, 2, 3]}).encode()
    body = f"<html><body><h1>Intranet</h1><p>{path}</p>{'<p>news</p>' * 20}</body></html>"
    return "text/html", body.encode()


async def http_get(host: str, port: int, path: str, source: str, timeout: float = 3.0) -> int:
    """GET ``path``; returns the number of response bytes read."""
    reader, writer = await open_connection(host, port, source, timeout)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: conduit-lab-office\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
        return len(data)
    finally:
        await close_writer(writer)
