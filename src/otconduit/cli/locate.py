"""Finding the capture files an alert's evidence is cut from. Older databases recorded
paths as typed (``demo/plant.pcap``: relative to a folder nobody remembers), and files
move; a capture is recognised wherever it is by the fingerprint recorded when it was
analysed (size, then the hash of its first and last MiB)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otconduit.store import Store
from otconduit.store.backend import is_url
from otconduit.store.capture_files import RecordedCapture, recorded


@dataclass(slots=True)
class Located:
    moved: dict[str, Path] = field(default_factory=dict)  # sha256 -> where it is now
    changed: list[str] = field(default_factory=list)  # recorded paths now holding other bytes
    missing: list[str] = field(default_factory=list)  # recorded paths found nowhere


def locate_evidence(
    store: Store, shas_paths: Sequence[tuple[str, str]], db: Path, dirs: Sequence[Path]
) -> Located:
    """Check every capture an alert cites: still at its recorded path, or found elsewhere
    (a relative path resolved, or a file under ``dirs`` with the same fingerprint)."""
    out = Located()
    for sha, path in shas_paths:
        if sha.startswith("sensor:"):  # a sensor's evidence is kept in the database
            continue
        rec = recorded(store, sha) or _unrecorded(sha, path)
        here = Path(path)
        if here.is_absolute() and _same(here, rec):
            continue
        found = _search(rec, db, dirs)
        if found is not None:
            if str(found) != path:
                out.moved[sha] = found
        elif here.is_absolute() and here.exists():
            out.changed.append(path)
        else:
            out.missing.append(path)
    return out


def _unrecorded(sha: str, path: str) -> RecordedCapture:
    """A capture the captures table no longer lists (removed): its size is unknown."""
    return RecordedCapture(sha, path, -1)


def _search(rec: RecordedCapture, db: Path, dirs: Sequence[Path]) -> Path | None:
    for cand in _candidates(rec.path, db):
        if _same(cand, rec):
            return Path(os.path.abspath(cand))
    for d in dirs:
        for f in _files(d):
            if _same(f, rec):
                return Path(os.path.abspath(f))
    return None


def _candidates(path: str, db: Path) -> Iterator[Path]:
    """Where a recorded path may point: as recorded when absolute; a relative one from
    the current folder, then from the database's folder and each folder above it (the
    demo records ``demo/plant.pcap`` beside ``demo/conduit.db``, run from the repository)."""
    p = Path(path)
    if p.is_absolute():
        yield p
        return
    yield Path.cwd() / p
    if is_url(db):  # a PostgreSQL store has no folder of its own
        return
    base = db.resolve().parent
    for folder in (base, *base.parents):
        yield folder / p


def _files(folder: Path) -> Iterator[Path]:
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            yield Path(root) / name


def _same(path: Path, rec: RecordedCapture) -> bool:
    """Whether ``path`` holds the capture's bytes (cheap size check first)."""
    try:
        if not path.is_file() or (rec.size >= 0 and path.stat().st_size != rec.size):
            return False
        from otconduit.analysis.run import fingerprint

        return fingerprint(path) == rec.sha256
    except OSError:
        return False
