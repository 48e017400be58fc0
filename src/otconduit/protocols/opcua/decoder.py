"""The OPC UA ConnectionDecoder: two chunk framers, one secure channel, one session.

Each direction of the TCP connection has its own :class:`~.chunks.ChunkStream`; every
chunk goes to the connection's :class:`~.secure.SecureChannel` (one UA TCP connection
carries one secure channel), whose messages go to the :class:`~.session.OpcUaSession`,
which answers with Operations and IdentityClaims. Framing, reassembly and body problems
come out as Malformed events. Nothing here raises on byte content.

Bounds: each framer holds less than one chunk (``max_chunk``) plus a skipped run of at
most 4096 bytes; the channel at most ``max_partial`` messages of ``max_message`` bytes per
direction under reassembly; the session at most ``max_outstanding`` open requests and as
many held responses.

Counters for conformance checks: ``chunk_counts`` (chunks per message type, as tshark
counts ``opcua.transport.type``), ``service_counts`` (decoded messages per encoding id,
requests and responses), ``encrypted_chunks``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Self

from otconduit.protocols.base import DecoderEvent, Endpoints
from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua.chunks import DEFAULT_MAX_CHUNK, ChunkStream
from otconduit.protocols.opcua.secure import (
    DEFAULT_MAX_CHUNKS,
    DEFAULT_MAX_MESSAGE,
    DEFAULT_MAX_PARTIAL,
    Encrypted,
    SecureChannel,
    SecureMessage,
)
from otconduit.protocols.opcua.services import peek_type_id
from otconduit.protocols.opcua.session import DEFAULT_MAX_OUTSTANDING, OpcUaSession
from otconduit.protocols.twoway import TwoWayDecoder


class OpcUaDecoder(TwoWayDecoder):
    """Decodes both directions of one OPC UA binary (UA TCP) connection."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_chunk: int = DEFAULT_MAX_CHUNK,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        max_partial: int = DEFAULT_MAX_PARTIAL,
    ) -> None:
        super().__init__(endpoints)
        self._limits = {
            "max_outstanding": max_outstanding,
            "max_chunk": max_chunk,
            "max_message": max_message,
            "max_chunks": max_chunks,
            "max_partial": max_partial,
        }
        self.streams = (ChunkStream(max_chunk=max_chunk), ChunkStream(max_chunk=max_chunk))
        self.channel = SecureChannel(
            max_message=max_message, max_chunks=max_chunks, max_partial=max_partial
        )
        self.session = OpcUaSession(endpoints, self.channel, max_outstanding)
        self.chunk_counts: Counter[str] = Counter()
        self.service_counts: Counter[int] = Counter()
        self.encrypted_chunks = 0

    def _flush(self) -> list[DecoderEvent]:
        return [*self.channel.flush(), *self.session.flush()]

    def _idle(self) -> bool:
        return bool(self.channel.idle and self.session.idle)

    def fork(self) -> Self:
        return type(self)(self.endpoints, **self._limits)

    def _handle(self, direction: int, chunk: Any) -> list[DecoderEvent]:
        """A chunk through the secure channel; what it yields through the session."""
        out: list[DecoderEvent] = []
        self.chunk_counts[chunk.msg_type.decode()] += 1
        for event in self.channel.handle(direction, chunk):
            if isinstance(event, Malformed):
                out.append(event)
                continue
            if isinstance(event, Encrypted):
                self.encrypted_chunks += 1
            elif isinstance(event, SecureMessage) and event.body is not None:
                type_id = peek_type_id(event.body, 0)
                if type_id is not None:
                    self.service_counts[type_id] += 1
            out += self.session.handle(direction, event)
        return out


def factory(endpoints: Endpoints) -> OpcUaDecoder:
    """:attr:`ProtocolSpec.factory` for OPC UA."""
    return OpcUaDecoder(endpoints)
