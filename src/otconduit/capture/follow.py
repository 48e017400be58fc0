"""Follow a ring of capture files while another process writes it (dumpcap ``-b``,
tcpdump ``-C``/``-G``, netsniff-ng): files are taken in the order they were started, the
newest is read as it grows, and packets number on from one file to the next, so the
stream is the one a reader of the files concatenated in that order would see.

A file is finished when a newer one has appeared and it has stopped growing for a
moment (writers close one file before they start the next, but flush on their own
schedule). A file the ring deleted before we reached it is counted, never waited for.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from otconduit.capture.reader import CaptureError, CaptureReader, RawBlock, open_capture

FOLLOW_BLOCK = 1 << 20  # small blocks: a live stream is read as it comes, not in bulk
# How long a file with a newer one beside it must stay the same size before it is done.
SETTLE_S = 0.3
HISTORY_FILES = 4096  # files whose frame ranges are remembered, for evidence
_NUMBERS = re.compile(r"(\d+)")


def _natural(name: str) -> tuple[object, ...]:
    """Name order in which ``file9`` comes before ``file10``."""
    return tuple(int(t) if t.isdigit() else t for t in _NUMBERS.split(name))


@dataclass(slots=True)
class Cursor:
    """Where a follower stands: the file it reads, how many of that file's packets were
    taken, and the frame number of that file's first packet."""

    file: str = ""
    packets: int = 0
    first_frame: int = 1
    done: str = ""  # the last file finished (when none is being read)

    @property
    def next_frame(self) -> int:
        return self.first_frame + self.packets


@dataclass(slots=True)
class _Open:
    path: Path
    reader: CaptureReader
    blocks: Iterator[RawBlock]
    first_frame: int
    skip: int  # packets already taken before a restart
    packets: int = 0
    newer_seen_at: float | None = None
    size_then: int = -1


@dataclass(slots=True)
class FollowStats:
    files_done: int = 0
    files_lost: int = 0  # deleted by the ring before they were read
    files_unreadable: int = 0
    errors: list[str] = field(default_factory=list)
    interface_stats: dict[int, dict[str, int]] = field(default_factory=dict)


class RingFollower:
    """The packets of a ring folder, in order, as they are written."""

    def __init__(
        self,
        folder: Path,
        *,
        prefix: str = "",
        start: Cursor | None = None,
        block_size: int = FOLLOW_BLOCK,
    ) -> None:
        self.folder = folder
        self.prefix = prefix
        self.block_size = block_size
        self.stats = FollowStats()
        self._queue: list[str] = []  # names not finished, oldest first
        self._known: set[tuple[str, int]] = set()  # (name, inode) ever queued
        self._open: _Open | None = None
        self._next_frame = 1
        self._resume = start
        self.stopping = False  # set when the writer has stopped: read every file to its end
        self.cursor = Cursor()
        # name -> (first frame, packets) of the files read, newest last (bounded)
        self.history: dict[str, tuple[int, int]] = {}
        self._scan(initial=True)

    # -- the folder ------------------------------------------------------------------
    def _listing(self) -> list[tuple[str, int, int]]:
        out = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            raise CaptureError(str(self.folder), "cannot read ring folder", str(exc)) from exc
        for e in entries:
            if not e.name.startswith(self.prefix) or e.name.startswith("."):
                continue
            try:
                st = e.stat()
            except OSError:
                continue  # deleted while we looked
            if e.is_file():
                out.append((e.name, st.st_ino, st.st_mtime_ns))
        return out

    def _scan(self, *, initial: bool = False) -> None:
        fresh = [(mt, _natural(n), n, ino) for n, ino, mt in self._listing()]
        fresh = [f for f in fresh if (f[2], f[3]) not in self._known]
        fresh.sort()
        for _, _, name, ino in fresh:
            self._known.add((name, ino))
            self._queue.append(name)
        r = self._resume
        if initial and r is not None and (r.file or r.done):
            self._next_frame = r.first_frame
            if r.file and r.file in self._queue:
                self._queue = self._queue[self._queue.index(r.file) :]
            elif not r.file and r.done in self._queue:
                self._queue = self._queue[self._queue.index(r.done) + 1 :]
                self._resume = None
            else:
                if r.file:
                    self.stats.files_lost += 1
                    self.stats.errors.append(f"{r.file}: gone from the ring before a restart")
                    self._next_frame = r.next_frame
                self._resume = None
                # Only files written after that one are still to be read.
                mark = _natural(r.file or r.done)
                self._queue = [n for n in self._queue if _natural(n) > mark]

    # -- reading ---------------------------------------------------------------------
    def _open_next(self) -> _Open | None:
        while self._queue:
            name = self._queue[0]
            path = self.folder / name
            last = len(self._queue) == 1
            try:
                reader = open_capture(path, block_size=self.block_size)
            except CaptureError as exc:
                if self.stopping and last and path.exists() and path.stat().st_size == 0:
                    self._queue.pop(0)  # started but never written: nothing to read
                    continue
                if not path.exists():
                    self._queue.pop(0)
                    self.stats.files_lost += 1
                    self.stats.errors.append(f"{name}: deleted by the ring before it was read")
                    continue
                if last and path.stat().st_size < 4096:
                    return None  # its writer has not written the header yet
                self._queue.pop(0)
                self.stats.files_unreadable += 1
                self.stats.errors.append(str(exc))
                continue
            first, skip = self._next_frame, 0
            r = self._resume
            if r is not None and r.file == name:
                first, skip = r.first_frame, r.packets
                self._resume = None
            reader.follow(first)
            self._open = _Open(path, reader, iter(reader), first, skip)
            self.cursor = Cursor(name, skip, first)
            return self._open
        return None

    def _settled(self, cur: _Open) -> bool:
        """Whether the file being read is finished (a newer one exists and it stopped
        growing)."""
        if len(self._queue) < 2:
            return False
        try:
            st = cur.path.stat()
        except OSError:
            return True  # deleted: what our open handle still reads is all of it
        if time.time() - st.st_mtime >= SETTLE_S:
            return True  # not written to for a while: a backlog, or a writer that moved on
        now = time.monotonic()
        if cur.newer_seen_at is None or st.st_size != cur.size_then:
            cur.newer_seen_at, cur.size_then = now, st.st_size
            return False
        return now - cur.newer_seen_at >= SETTLE_S

    def poll(self) -> Iterator[RawBlock]:
        """The blocks written since the last poll (none when nothing new is there)."""
        self._scan()
        while True:
            cur = self._open or self._open_next()
            if cur is None:
                return
            block = next(cur.blocks, None)
            if block is None:  # finished and read to its end
                self._finish(cur)
                continue
            if not len(block):
                if self.stopping or self._settled(cur):
                    cur.reader.finish_following()
                    continue
                return
            if cur.skip:
                take = min(cur.skip, len(block))
                cur.skip -= take
                cur.packets += take
                block = split_block(block, take, len(block))
                if not len(block):
                    continue
            cur.packets += len(block)
            self.cursor = Cursor(cur.path.name, cur.packets, cur.first_frame)
            self._remember(cur.path.name, cur.first_frame, cur.packets)
            yield block

    def _finish(self, cur: _Open) -> None:
        report = cur.reader.report
        if report.error:
            self.stats.errors.append(f"{cur.path.name}: {report.error}")
        self.stats.interface_stats.update(report.interface_stats)
        cur.reader.close()
        self._queue.pop(0)
        self._open = None
        self._next_frame = cur.first_frame + cur.packets
        self.stats.files_done += 1
        self.cursor = Cursor("", 0, self._next_frame, cur.path.name)

    def _remember(self, name: str, first: int, packets: int) -> None:
        self.history[name] = (first, packets)
        if len(self.history) > HISTORY_FILES:
            del self.history[next(iter(self.history))]

    def packets_of(self, frames: list[int]) -> list[tuple[int, int, int, bytes]]:
        """(frame, ts, linktype, bytes) of the given frames, read again from the ring
        files that hold them (frames whose file is gone are left out)."""
        wanted = sorted(set(frames))
        out: list[tuple[int, int, int, bytes]] = []
        for name, (first, count) in list(self.history.items()):
            mine = [f for f in wanted if first <= f < first + count]
            if not mine:
                continue
            try:
                with open_capture(self.folder / name) as reader:
                    frame = first
                    for block in reader:
                        for f in mine:
                            i = f - frame
                            if 0 <= i < len(block):
                                out.append(
                                    (f, int(block.ts_ns[i]), int(block.linktypes[i]), block.data(i))
                                )
                        frame += len(block)
                        if frame > mine[-1]:
                            break
            except (CaptureError, OSError):
                continue  # rotated away meanwhile
        return out

    @property
    def waiting(self) -> list[str]:
        """Files queued behind the one being read (how far behind the writer we are)."""
        return self._queue[1:] if self._open is not None else list(self._queue)

    def close(self) -> None:
        if self._open is not None:
            self._open.reader.close()
            self._open = None


def split_block(block: RawBlock, lo: int, hi: int) -> RawBlock:
    """Packets ``lo..hi-1`` of ``block`` (sharing its buffer)."""
    return RawBlock(
        block.buf,
        block.offsets[lo:hi],
        block.caplens[lo:hi],
        block.wirelens[lo:hi],
        block.ts_ns[lo:hi],
        np.asarray(block.linktypes[lo:hi]),
        block.first_frame + lo,
    )
