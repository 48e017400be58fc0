"""Sender side of the diode protocol, sans-I/O: payloads in, datagrams out.

The encoder numbers DATA datagrams, groups them ``k`` at a time for the FEC and emits
the group's ``m`` PARITY datagrams as soon as the group is full, or when the sender
flushes (it goes idle: a short group is closed rather than left waiting). Time is
passed in; nothing here sleeps, sends or reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from otconduit.gateway.diode import fec, wire


@dataclass(frozen=True, slots=True, kw_only=True)
class FecParams:
    """``k`` DATA datagrams per group, ``m`` PARITY datagrams added to each: up to
    ``m`` losses per group are recovered, at a bandwidth cost of ``m / k``."""

    k: int = 8
    m: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 64:
            raise ValueError(f"FEC k={self.k}: 1 to 64 data datagrams per group")
        if not 0 <= self.m <= 32:
            raise ValueError(f"FEC m={self.m}: 0 to 32 parity datagrams per group")

    @classmethod
    def parse(cls, text: str) -> FecParams:
        """``"K:M"``, e.g. ``"8:2"``; ``"off"`` or ``"0"`` for no FEC."""
        if text.strip().lower() in ("off", "0", "none"):
            return cls(k=1, m=0)
        k, sep, m = text.partition(":")
        k, m = k.strip(), m.strip()
        if not sep or not (k + m).isascii() or not k.isdigit() or not m.isdigit():
            raise ValueError(f"FEC {text!r}: use K:M, e.g. 8:2 (8 data + 2 parity)")
        return cls(k=int(k), m=int(m))


class DiodeEncoder:
    def __init__(
        self,
        auth: wire.Authenticator,
        *,
        fec_params: FecParams | None = None,
        session: bytes | None = None,
    ) -> None:
        self.auth = auth
        self.fec = fec_params or FecParams()
        # Without parity a group is pointless: each datagram is its own, closed at once.
        self._k = self.fec.k if self.fec.m else 1
        self.session = session if session is not None else os.urandom(8)
        self.counter = 0  # next datagram counter
        self.next_seq = 0  # next DATA seq
        self._group: list[bytes] = []  # payloads of the open group
        self.sent = 0

    def _next_counter(self) -> int:
        c = self.counter
        self.counter += 1
        self.sent += 1
        return c

    @property
    def open_group(self) -> int:
        """DATA datagrams in the group not yet closed by its parity."""
        return len(self._group)

    def data(self, payload: bytes, time_ms: int) -> list[bytes]:
        """The DATA datagram for ``payload``, then the group's parity if it is full."""
        index = len(self._group)
        out = [
            wire.build_data(
                self.auth, session=self.session, counter=self._next_counter(),
                time_ms=time_ms, seq=self.next_seq, index=index, payload=payload,
            )
        ]  # fmt: skip
        self.next_seq += 1
        self._group.append(payload)
        if len(self._group) >= self._k:
            out += self.flush(time_ms)
        return out

    def flush(self, time_ms: int) -> list[bytes]:
        """Close the open group: its PARITY datagrams (none if empty or m = 0)."""
        group, self._group = self._group, []
        if not group or not self.fec.m:
            return []
        width = wire.frame_width(group)
        blocks = fec.encode([wire.frame(p, width) for p in group], self.fec.m)
        first = self.next_seq - len(group)
        return [
            wire.build_parity(
                self.auth, session=self.session, counter=self._next_counter(),
                time_ms=time_ms, group=first, count=len(group), parities=self.fec.m,
                index=j, block=b,
            )
            for j, b in enumerate(blocks)
        ]  # fmt: skip

    def heartbeat(self, time_ms: int, *, interval_ms: int, dropped: int) -> bytes:
        sent = self.sent
        return wire.build_heartbeat(
            self.auth, session=self.session, counter=self._next_counter(), time_ms=time_ms,
            next_seq=self.next_seq, open=len(self._group), interval_ms=interval_ms,
            dropped=dropped, sent=sent,
        )  # fmt: skip
