"""A byte relay that gives a third-party TCP client its host's source address.

c104 (lib60870 inside) offers no way to choose the local address of a client
connection, and every plant role must speak from its own 127.x.y.z address. The relay
listens on 127.0.0.1 in a network namespace of the lab's own (:mod:`.privnet`: a capture
on the plant's loopback never sees that leg; where no namespace can be made, on the
plant's 127.0.0.1, outside the lab's capture filter), and for each connection it accepts
opens one from the role's address to the real server, then copies bytes both ways until
either side closes. It parses nothing: what the server and the capture see is exactly
what the client's stack sent, only the TCP segmentation may differ. The client must
connect from the same namespace (:func:`otconduit.lab.privnet.run_private`).
"""

from __future__ import annotations

import asyncio
import contextlib

from otconduit.lab.netbind import check_loopback, close_writer, open_connection
from otconduit.lab.privnet import listener

RELAY_HOST = "127.0.0.1"
_CHUNK = 65536


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


class SourceRelay:
    """``127.0.0.1:<port>`` -> ``target`` from ``source`` (both on loopback)."""

    def __init__(self, source: str, target: tuple[str, int]) -> None:
        self.source = check_loopback(source)
        self.target = (check_loopback(target[0]), target[1])
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Listen on an ephemeral port of 127.0.0.1; returns it."""
        sock = await asyncio.to_thread(listener, RELAY_HOST)
        self._server = await asyncio.start_server(self._handle, sock=sock)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        self._writers.add(writer)
        try:
            up_reader, up_writer = await open_connection(*self.target, self.source)
            self._writers.add(up_writer)
            self.connections += 1
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        except (OSError, TimeoutError):
            pass
        finally:
            await close_writer(up_writer)
            await close_writer(writer)
            self._writers.discard(writer)
            if up_writer is not None:
                self._writers.discard(up_writer)
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # End the copies by closing their sockets (a cancelled handler task would be
            # logged by asyncio's stream machinery); cancel only what still hangs.
            for w in list(self._writers):
                w.transport.abort()
            if self._tasks:
                _done, hung = await asyncio.wait(set(self._tasks), timeout=2.0)
                for t in hung:
                    t.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
