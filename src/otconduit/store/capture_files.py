"""Where the analysed capture files are. Evidence is cut from the original files, so the
store must say where they are now: paths are recorded absolute at analysis (older
databases hold them as typed, relative to a folder nobody remembers), and a capture that
moved is recognised by the fingerprint recorded with it (size and hash of its first and
last MiB, ``captures.sha256``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from otconduit.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class RecordedCapture:
    sha256: str
    path: str
    size: int


def absolute(path: str | Path) -> str:
    """The path to record: absolute, so commands run from any folder find the file."""
    return os.path.abspath(path)


def recorded(store: Store, sha256: str) -> RecordedCapture | None:
    """The capture with this fingerprint as the store recorded it."""
    row = store.conn.execute(
        "SELECT sha256, path, size FROM captures WHERE sha256 = ?", (sha256,)
    ).fetchone()
    return RecordedCapture(row[0], row[1], int(row[2])) if row else None


def relocate(store: Store, sha256: str, path: str | Path) -> None:
    """Record where a capture is now, for the capture and every alert's evidence (one
    transaction), so the console and later commands find it too."""
    new = absolute(path)
    c = store.conn
    c.execute("BEGIN IMMEDIATE")
    try:
        c.execute("UPDATE captures SET path = ? WHERE sha256 = ?", (new, sha256))
        c.execute(
            "UPDATE alert_evidence SET capture_path = ? WHERE capture_sha256 = ? "
            "OR capture_sha256 LIKE ? || '#%'",
            (new, sha256, sha256),
        )
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
