"""The skeleton every TCP connection decoder shares: one framer per direction feeding one
session, events collected until read, and the resumable-decoder contract.

A protocol supplies its framers and session and says how a framer's events reach the
session (``_handle``); feeding, gaps, finishing, quiescence and forking are the same for
all of them, so they live here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, Self

from otconduit.protocols.base import DecoderEvent, Endpoints, Pending
from otconduit.protocols.events import Malformed


class Framer(Protocol):
    """One direction's framing: bytes and gaps in, framed units (or Malformed) out."""

    @property
    def idle(self) -> bool: ...

    def feed(self, data: bytes, frame: int, ts_ns: int) -> None: ...

    def gap(self, nbytes: int, frame: int, ts_ns: int) -> None: ...

    def end(self) -> None: ...

    def events(self) -> Iterable[Any]: ...


class TwoWayDecoder:
    """Decodes both directions of one connection through ``streams`` and ``_handle``.

    Subclasses set ``self.streams`` (a framer per direction) and whatever session they
    need in ``__init__`` (after calling this one), and implement ``_handle`` (a framed
    unit → events), ``_flush`` (what the session still holds at the end), ``_idle`` (the
    session has nothing in flight) and ``fork`` (a fresh decoder with the same limits)."""

    streams: tuple[Framer, Framer]

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._out: list[DecoderEvent] = []
        self._finished = False

    # -- the protocol's part ---------------------------------------------------------
    def _handle(self, direction: int, unit: Any) -> Iterable[DecoderEvent]:
        raise NotImplementedError

    def _flush(self) -> Iterable[DecoderEvent]:
        return ()

    def _idle(self) -> bool:
        return True

    def fork(self) -> Self:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------
    def feed(self, direction: int, data: bytes, frame: int, ts_ns: int) -> None:
        if self._finished:
            return
        self.streams[direction].feed(data, frame, ts_ns)
        self._drain(direction)

    def gap(self, direction: int, nbytes: int, frame: int, ts_ns: int) -> None:
        if self._finished:
            return
        self.streams[direction].gap(nbytes, frame, ts_ns)
        self._drain(direction)

    def events(self) -> list[DecoderEvent]:
        out, self._out = self._out, []
        return out

    def finish(self) -> list[DecoderEvent]:
        if not self._finished:
            self._finished = True
            for direction in (0, 1):
                self.streams[direction].end()
                self._drain(direction)
            self._out += self._flush()
        return self.events()

    def quiescent(self) -> bool:
        return (
            not self._finished
            and not self._out
            and all(s.idle for s in self.streams)
            and self._idle()
        )

    def export_state(self) -> None:
        """Nothing to hand over: a quiescent connection has nothing in flight."""
        return None

    def resume(self, state: object, pending: Sequence[Pending]) -> None:
        for p in pending:
            self.feed(p.direction, p.data, p.frame, p.ts_ns)

    def _drain(self, direction: int) -> None:
        for unit in self.streams[direction].events():
            if isinstance(unit, Malformed):
                self._out.append(unit)
            else:
                self._out += self._handle(direction, unit)


__all__ = ["Framer", "TwoWayDecoder"]
