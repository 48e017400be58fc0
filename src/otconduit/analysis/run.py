"""Analyse capture files into a store: the library entry point behind `conduit analyze`."""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otconduit.analysis.engine import Analyzer
from otconduit.analysis.fastpath.path import FastPath
from otconduit.capture.reader import CaptureError, open_capture
from otconduit.store.sqlite import Store
from otconduit.store.writer import ChunkWriter

FINGERPRINT_SPAN = 1 << 20
# Capture bytes per block: large enough to amortise per-block work, small enough that
# the block and the columns derived from it stay a small part of peak memory.
ANALYSIS_BLOCK = 4 << 20


def fingerprint(path: Path) -> str:
    """Identity of a capture's bytes without reading all of a multi-GB file.

    Size plus the first and last MiB: two captures that agree on all three are treated
    as the same capture (re-analysing replaces, never duplicates).
    """
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(size.to_bytes(8, "big"))
    with path.open("rb") as f:
        h.update(f.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            f.seek(max(FINGERPRINT_SPAN, size - FINGERPRINT_SPAN))
            h.update(f.read(FINGERPRINT_SPAN))
    return h.hexdigest()


@dataclass(slots=True)
class CaptureResult:
    path: str
    status: str  # complete | partial | empty
    packets: int
    operations: int
    error: str | None
    stats: dict[str, Any] = field(default_factory=dict)
    capture_id: int | None = None


ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


def analyze_file(
    store: Store,
    path: str | Path,
    *,
    progress: ProgressFn | None = None,
    bulk: bool = True,
    block_size: int = ANALYSIS_BLOCK,
) -> CaptureResult:
    """Analyse one capture file into ``store``. Raises :class:`CaptureError` for non-captures."""
    p = Path(path)
    try:
        fp = fingerprint(p)
    except OSError as exc:
        raise CaptureError(str(p), "cannot read capture", str(exc.strerror or exc)) from exc
    with open_capture(p, block_size=block_size) as reader:
        capture_id = store.begin_capture(str(p), fp, p.stat().st_size, reader.report.format)
        analyzer = Analyzer(store, capture_id)
        analyzer.writer = ChunkWriter(store.target, capture_id)
        fast = FastPath(analyzer) if bulk else None
        feed = fast.feed_block if fast is not None else analyzer.feed_block
        for block in reader:
            feed(block)
            if progress is not None:
                progress(reader.report.bytes_read, reader.report.file_size)
        if fast is not None:
            fast.close()
            analyzer.stats_extra.update(fast.stats())
        stats = analyzer.finish(reader.report)
        report = reader.report
    status = "complete" if not report.error else ("partial" if analyzer.packets else "empty")
    result = CaptureResult(
        str(p), status, analyzer.packets, analyzer.operations, report.error, stats, capture_id
    )
    del analyzer, fast
    _give_back_memory()
    return result


def _give_back_memory() -> None:
    """Return the heap a capture's analysis freed to the system: its many small objects
    (connections, decoders, pending operations) leave the C heap fragmented, and
    detection, which runs next, would otherwise start from that high-water mark."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
