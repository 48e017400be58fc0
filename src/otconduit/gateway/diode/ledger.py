"""The sessions a diode receiver has seen, kept on disk so that a restart forgets none.

A recorded session replayed to the receiver must be refused even if the receiver has
restarted since it first saw it. Each session is kept with its *floor*: the highest
datagram counter accepted (a restarted receiver resumes a live session only above it,
and from the DATA sequence number it had delivered up to), or :data:`ENDED` once a
newer session replaced it (never accepted again). At most ``limit`` sessions are kept,
oldest forgotten first; older ones are refused by the clock-skew bound instead.

The file is text, one session a line (``<session hex> <floor> <next seq>`` or
``<session hex> ended``), replaced
atomically and fsync'd: when a session starts or ends at once, otherwise when the
receiver checkpoints (every second) and when it stops. After a crash, datagrams newer
than the last checkpoint (about a second) could be delivered twice if replayed.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

ENDED = -2  # floor of a session that was replaced: refused whatever its counter
_MAGIC = "conduit-diode-sessions 1"


class LedgerError(ValueError):
    """The session file cannot be read or is not one; ``str()`` is one line."""


class SessionLedger:
    """Session id -> (floor, next DATA seq), bounded; saved to ``path`` when given (else
    kept in memory only)."""

    def __init__(self, path: Path | None = None, *, limit: int = 1024) -> None:
        if limit < 1:
            raise ValueError("limit >= 1")
        self.path = path
        self.limit = limit
        self._floors: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self.dirty = False  # a floor moved since the last save
        self.urgent = False  # a session started or ended since the last save
        if path is not None and path.exists():
            self._load(path)

    def __len__(self) -> int:
        return len(self._floors)

    def floor(self, sid: bytes) -> int | None:
        """None for a session never seen; else only counters above it are new."""
        entry = self._floors.get(sid)
        return None if entry is None else entry[0]

    def next_seq(self, sid: bytes) -> int:
        """The DATA seq a resumed session was delivered up to (0 if unknown)."""
        return self._floors.get(sid, (ENDED, 0))[1]

    def started(self, sid: bytes, floor: int, next_seq: int = 0) -> None:
        """``sid`` is now the live session: every other one is over for good."""
        for other in [k for k, f in self._floors.items() if k != sid and f[0] != ENDED]:
            self._floors[other] = (ENDED, 0)
        self._floors[sid] = (floor, next_seq)
        self._floors.move_to_end(sid)
        while len(self._floors) > self.limit:
            self._floors.popitem(last=False)
        self.dirty = self.urgent = True

    def advance(self, sid: bytes, floor: int, next_seq: int) -> None:
        """The live session ``sid`` accepted counters up to ``floor`` and delivered (or
        reported lost) every DATA datagram before ``next_seq``."""
        known = self._floors.get(sid)
        if known is not None and known[0] != ENDED and known != (floor, next_seq):
            self._floors[sid] = (max(known[0], floor), max(known[1], next_seq))
            self.dirty = True

    def end(self, sid: bytes) -> None:
        known = self._floors.get(sid)
        if known is not None and known[0] != ENDED:
            self._floors[sid] = (ENDED, 0)
            self.dirty = self.urgent = True

    def save(self) -> None:
        """Write the file (atomically, fsync'd) if there is one; raises OSError."""
        self.dirty = self.urgent = False
        if self.path is None:
            return
        lines = [_MAGIC] + [
            f"{sid.hex()} ended" if f == ENDED else f"{sid.hex()} {f} {seq}"
            for sid, (f, seq) in self._floors.items()
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"session file {path}: {getattr(exc, 'strerror', exc)}") from None
        if not lines or lines[0] != _MAGIC:
            raise LedgerError(f"session file {path}: not a diode session file")
        for n, line in enumerate(lines[1:], 2):
            parts = line.split()
            try:
                key = bytes.fromhex(parts[0])
                if parts[1:] == ["ended"]:
                    value = (ENDED, 0)
                else:
                    floor, seq = map(int, parts[1:])
                    value = (floor, seq) if floor >= -1 and seq >= 0 else (ENDED, -1)
            except (IndexError, ValueError):
                key, value = b"", (ENDED, -1)
            if len(key) != 8 or value[1] < 0:
                raise LedgerError(
                    f"session file {path}:{n}: not '<session> <floor> <next seq>|ended'"
                )
            self._floors[key] = value
        while len(self._floors) > self.limit:
            self._floors.popitem(last=False)
