"""The source relay the lab's IEC 104 clients go through (c104 cannot bind a source
address): the server sees the role's address, the bytes arrive unchanged both ways, and
the client leg lives in the lab's private network namespace, out of sight of the plant's
loopback."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from otconduit.lab.privnet import private_net, run_private, why_not
from otconduit.lab.source_relay import RELAY_HOST, SourceRelay

SERVER, ROLE = "127.0.93.1", "127.0.93.2"  # no plant address: runs beside a plant
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def _client_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection((RELAY_HOST, port), timeout=3) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out


def test_relay_gives_the_role_its_address_and_hides_its_client_leg() -> None:
    assert private_net() is not None, why_not()
    peers: list[str] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        data = await reader.read()
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, bool]:
        server = await asyncio.start_server(echo, SERVER, 0)
        port = server.sockets[0].getsockname()[1]
        relay = SourceRelay(ROLE, (SERVER, port))
        relay_port = await relay.start()
        try:
            # from the plant's namespace the relay is not there at all
            with socket.socket() as probe:
                probe.settimeout(1)
                visible = probe.connect_ex((RELAY_HOST, relay_port)) == 0
            payload = bytes(range(256)) * 40
            got = await asyncio.to_thread(
                run_private, lambda: _client_exchange(relay_port, payload)
            )
            return got, visible
        finally:
            await relay.stop()
            server.close()
            await server.wait_closed()

    got, visible = asyncio.run(main())
    assert got == (bytes(range(256)) * 40)[::-1]
    assert peers == [ROLE]
    assert not visible
