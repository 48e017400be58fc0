"""Store-and-forward for an uplink (MQTT): one ordered queue of samples in two tiers.

The queue is ``disk (oldest) ++ memory (newest)``. New samples always join the memory
tier; when it holds more than ``memory_samples`` the oldest of them move to the disk
tier (an SQLite file) in one transaction. The sender reads from the head (disk first)
and acknowledges by buffer id once the broker confirmed delivery, so a sample stays
queued until it is delivered, whatever happens to the connection meanwhile.

Every queued sample has a buffer id (``bid``), increasing by one per sample and kept
across restarts; bids are contiguous inside each tier, and every disk bid is below every
memory bid. Removal only ever happens at the head (delivery, byte cap, age cap), so
"oldest first" and "never reordered" hold by construction.

Caps, counted and reported, never silent:

- ``disk_max_bytes``: the stored record bytes of the disk tier (the encoded samples plus
  a fixed per-row estimate). Past it, the oldest rows are dropped. SQLite reuses freed
  pages, so the file stays near this size; it does not shrink.
- ``max_age``: samples received (``recv_ts_ns``) longer ago than this are dropped from
  the head, checked at most once a second.

Durability: the disk tier survives a restart; the memory tier is written to disk by
``close()`` (a crash loses it, so a small ``memory_samples`` trades speed for
durability). A sample whose delivery was confirmed just before a crash may be sent
again: delivery is at least once.

Each entry also records the uplink *session* it was queued in (0 when the uplink was
down); the sender compares it with its current session to tell live samples from
historical ones.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from otconduit.gateway.config import Buffer
from otconduit.gateway.model import Quality, TagSample

ROW_OVERHEAD = 32  # bytes counted per disk row beyond its encoded sample (key, columns, cell)
AGE_CHECK_EVERY_NS = 1_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    bid INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    recv_ns INTEGER NOT NULL,
    body BLOB NOT NULL
)
"""


class Queued(NamedTuple):  # one per sample, so a bare tuple (see put)
    bid: int
    session: int
    sample: TagSample


def encode_sample(s: TagSample) -> bytes:
    row = [s.path, s.value, s.quality.value, s.recv_ts_ns, s.unit, s.source_ts_ns, s.reason]
    row += [s.historical, s.seq]
    return json.dumps(row, separators=(",", ":")).encode()


def decode_sample(body: bytes) -> TagSample:
    path, value, quality, recv, unit, source, reason, historical, seq = json.loads(body)
    return TagSample(
        path=path,
        value=value,
        quality=Quality(quality),
        recv_ts_ns=recv,
        unit=unit,
        source_ts_ns=source,
        reason=reason,
        historical=historical,
        seq=seq,
    )


def buffer_path(base: Path, sink: str) -> Path:
    """Each sink keeps its own disk tier beside the configured one:
    ``gateway-buffer.db`` -> ``gateway-buffer.uns.db``."""
    return base.with_name(f"{base.stem}.{sink}{base.suffix or '.db'}")


class SampleBuffer:
    def __init__(
        self, cfg: Buffer, path: Path, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.cfg = cfg
        self.path = path
        self._clock = clock_ns
        self._memory: deque[Queued] = deque()
        self.dropped_cap = 0  # disk tier over its byte cap
        self.dropped_age = 0  # older than max_age
        self.dropped_error = 0  # could not be written to disk
        self.last_error = ""
        self._next_age_check = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        n, size, lo, hi = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0), min(bid), max(bid) FROM queue"
        ).fetchone()
        self.disk_count: int = n
        self.disk_bytes: int = size + n * ROW_OVERHEAD
        self._disk_head: int = lo or 0  # no disk bid is below this (valid when disk_count)
        self._disk_tail: int = hi or 0  # the highest disk bid (valid when disk_count)
        self._next_bid: int = (hi or 0) + 1
        self._closed = False

    # -- state ---------------------------------------------------------------------------

    @property
    def memory_count(self) -> int:
        return len(self._memory)

    def __len__(self) -> int:
        return self.disk_count + len(self._memory)

    @property
    def head_bid(self) -> int:
        """The bid before the oldest queued sample (what a sender resumes after)."""
        if self.disk_count:
            return self._disk_head - 1
        if self._memory:
            return self._memory[0].bid - 1
        return self._next_bid - 1

    @property
    def last_bid(self) -> int:
        return self._next_bid - 1

    def stats(self) -> dict[str, Any]:
        return {
            "queued_memory": len(self._memory),
            "queued_disk": self.disk_count,
            "disk_bytes": self.disk_bytes,
            "dropped_cap": self.dropped_cap,
            "dropped_age": self.dropped_age,
            "dropped_error": self.dropped_error,
        }

    @property
    def dropped(self) -> int:
        return self.dropped_cap + self.dropped_age + self.dropped_error

    # -- producer ------------------------------------------------------------------------

    def put(self, samples: Iterable[TagSample], session: int) -> None:
        append, new, bid = self._memory.append, tuple.__new__, self._next_bid
        for s in samples:
            append(new(Queued, (bid, session, s)))  # the NamedTuple without its __new__
            bid += 1
        self._next_bid = bid
        self._evict_old()
        over = len(self._memory) - self.cfg.memory_samples
        if over > 0:
            # spill a little more than needed, so a long outage writes in batches
            self._spill(over + min(self.cfg.memory_samples // 4, 10_000))

    # -- consumer ------------------------------------------------------------------------

    def after(self, bid: int, limit: int) -> list[Queued]:
        """Up to ``limit`` queued samples with a bid above ``bid``, oldest first."""
        self._evict_old()
        out: list[Queued] = []
        if self.disk_count and bid < self._disk_tail:
            rows = self._db.execute(
                "SELECT bid, session, body FROM queue WHERE bid > ? ORDER BY bid LIMIT ?",
                (bid, limit),
            ).fetchall()
            out = [Queued(b, sess, decode_sample(body)) for b, sess, body in rows]
            if out:
                bid = out[-1].bid
        if len(out) < limit and self._memory:
            start = max(0, bid + 1 - self._memory[0].bid)
            out.extend(islice(self._memory, start, start + limit - len(out)))
        return out

    def ack(self, bid: int) -> int:
        """Everything up to and including ``bid`` was delivered; returns how many
        samples that removed (some may already have been dropped by a cap)."""
        removed = 0
        if self.disk_count and bid >= self._disk_head:
            upto = min(bid, self._disk_tail)
            removed += self._delete_disk_upto(upto)
        while self._memory and self._memory[0].bid <= bid:
            self._memory.popleft()
            removed += 1
        return removed

    # -- tiers ---------------------------------------------------------------------------

    def _spill(self, n: int) -> None:
        batch = [self._memory.popleft() for _ in range(min(n, len(self._memory)))]
        if not batch:
            return
        rows = [(q.bid, q.session, q.sample.recv_ts_ns, encode_sample(q.sample)) for q in batch]
        try:
            with self._tx():
                self._db.executemany("INSERT INTO queue VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self.dropped_error += len(rows)
            self.last_error = f"disk tier {self.path}: {exc}"
            return
        if not self.disk_count:
            self._disk_head = batch[0].bid
        self._disk_tail = batch[-1].bid
        self.disk_count += len(rows)
        self.disk_bytes += sum(len(r[3]) + ROW_OVERHEAD for r in rows)
        self._enforce_bytes()

    def _enforce_bytes(self) -> None:
        excess = self.disk_bytes - self.cfg.disk_max_bytes
        if excess <= 0:
            return
        freed, upto = 0, self._disk_head - 1
        cur = self._db.execute(
            "SELECT bid, length(body) FROM queue ORDER BY bid LIMIT ?", (self.disk_count,)
        )
        for b, size in cur:
            freed += size + ROW_OVERHEAD
            upto = b
            if freed >= excess:
                break
        cur.close()
        self.dropped_cap += self._delete_disk_upto(upto)

    def _delete_disk_upto(self, upto: int) -> int:
        if upto < self._disk_head or not self.disk_count:
            return 0
        n, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM queue WHERE bid <= ?", (upto,)
        ).fetchone()
        self._db.execute("DELETE FROM queue WHERE bid <= ?", (upto,))
        self.disk_count -= n
        self.disk_bytes -= size + n * ROW_OVERHEAD
        self._disk_head = upto + 1
        if not self.disk_count:
            self.disk_bytes = 0
        return int(n)

    def _evict_old(self) -> None:
        now = self._clock()
        if now < self._next_age_check:
            return
        self._next_age_check = now + AGE_CHECK_EVERY_NS
        cutoff = now - int(self.cfg.max_age * 1e9)
        if self.disk_count:
            # the longest prefix older than the cutoff (a clock step never reorders)
            (first_young,) = self._db.execute(
                "SELECT min(bid) FROM queue WHERE recv_ns >= ?", (cutoff,)
            ).fetchone()
            upto = (first_young - 1) if first_young is not None else self.last_bid
            if upto >= self._disk_head:
                self.dropped_age += self._delete_disk_upto(upto)
            if self.disk_count:
                return  # something young on disk: memory is younger still
        while self._memory and self._memory[0].sample.recv_ts_ns < cutoff:
            self._memory.popleft()
            self.dropped_age += 1

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Write the memory tier to disk (so it survives a restart) and close the file."""
        if self._closed:
            return
        while self._memory:
            self._spill(len(self._memory))
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._closed = True

    def samples(self) -> Sequence[Queued]:
        """Everything queued, oldest first (for tests and status tools)."""
        return self.after(self.head_bid, len(self))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
