"""CSAF documents from files, folders and archives into the store.

Sources are untrusted: a file that is not a CSAF 2.0 document, an archive member too
large to be one, a truncated archive, are each reported once (``skipped``) and the
import goes on. Archives are read as streams, member by member, never unpacked to disk;
only regular ``*.json`` members are read. ROLIE feeds and provider metadata found among
the documents are recognised and passed over quietly.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from otconduit.advisories.csaf import MAX_DOCUMENT_BYTES, CsafError, is_feed_or_metadata, parse
from otconduit.store import advisories as db
from otconduit.store.sqlite import Store

BATCH = 200  # documents per transaction
TAR_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")


@dataclass(slots=True)
class ImportReport:
    """What an import did, for the summary line."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    older: int = 0
    skipped: int = 0  # bad documents, each with a line in ``problems``
    not_advisories: int = 0  # feeds, provider metadata
    problems: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    seconds: float = 0.0
    on_problem: Callable[[str, str], None] | None = None

    def problem(self, name: str, reason: str) -> None:
        """Count a bad document and tell the caller at once (one line per file)."""
        self.skipped += 1
        self.problems.append((name, reason))
        if self.on_problem is not None:
            self.on_problem(name, reason)

    @property
    def documents(self) -> int:
        return self.new + self.updated + self.unchanged + self.older

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def summary(self) -> str:
        parts = [
            f"{self.documents} documents read in {self.seconds:.1f} s",
            f"{self.new} new",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
        ]
        if self.older:
            parts.append(f"{self.older} older than the stored version (kept the stored)")
        if self.skipped:
            parts.append(f"{self.skipped} skipped as malformed")
        if self.not_advisories:
            parts.append(f"{self.not_advisories} feed/metadata files passed over")
        return ", ".join(parts)


Item = tuple[str, bytes | None, str | None]  # (source name, bytes, or None with a reason)


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def _read_file(path: Path) -> Item:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            return str(path), None, f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB"
        return str(path), path.read_bytes(), None
    except OSError as exc:
        return str(path), None, exc.strerror or str(exc)


def _tar_items(path: Path) -> Iterator[Item]:
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = f"{path}!{member.name}"
                if not member.isfile() or not member.name.lower().endswith(".json"):
                    continue
                if member.size > MAX_DOCUMENT_BYTES:
                    yield name, None, f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB"
                    continue
                f = tar.extractfile(member)
                if f is None:
                    continue
                yield name, f.read(), None
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        # lzma/gzip errors surface as OSError/EOFError; what was read before stays imported
        yield str(path), None, f"archive unreadable after this point: {exc}"


def _zip_items(path: Path) -> Iterator[Item]:
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = f"{path}!{info.filename}"
                if info.is_dir() or not info.filename.lower().endswith(".json"):
                    continue
                if info.file_size > MAX_DOCUMENT_BYTES:
                    yield name, None, f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB"
                    continue
                try:
                    yield name, z.read(info), None
                except (zipfile.BadZipFile, OSError, ValueError) as exc:
                    yield name, None, f"unreadable in the archive: {exc}"
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield str(path), None, f"archive unreadable: {exc}"


def items(paths: Iterable[Path]) -> Iterator[Item]:
    """Documents from files, folders (recursively: ``*.json`` and archives) and archives."""
    for path in paths:
        if not path.exists():
            yield str(path), None, "no such file or folder"
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    p = Path(root) / name
                    low = name.lower()
                    if low.endswith(".json"):
                        yield _read_file(p)
                    elif _is_tar(p):
                        yield from _tar_items(p)
                    elif low.endswith(".zip"):
                        yield from _zip_items(p)
        elif _is_tar(path):
            yield from _tar_items(path)
        elif path.name.lower().endswith(".zip"):
            yield from _zip_items(path)
        else:
            yield _read_file(path)


def import_one(store: Store, rep: ImportReport, name: str, data: bytes) -> str:
    """Parse and store one document (inside the caller's transaction); returns its
    outcome: ``new``, ``updated``, ``unchanged``, ``older``, ``skipped`` (reported) or
    ``not_advisory``."""
    try:
        adv = parse(data)
    except CsafError as exc:
        if _passed_over(data):
            rep.not_advisories += 1
            return "not_advisory"
        rep.problem(name, str(exc))
        return "skipped"
    outcome = db.save(store, adv, data, name)
    rep.add(outcome)
    return outcome


def import_items(
    store: Store,
    source: Iterable[Item],
    *,
    on_problem: Callable[[str, str], None] | None = None,
) -> ImportReport:
    """Parse and store documents, committing every :data:`BATCH`; each bad one is
    counted, reported through ``on_problem`` and skipped."""
    rep = ImportReport(on_problem=on_problem)
    t0 = time.perf_counter()
    pending = 0
    with store.transaction() as tx:
        for name, data, reason in source:
            if data is None:
                rep.problem(name, reason or "unreadable")
                continue
            import_one(store, rep, name, data)
            pending += 1
            if pending >= BATCH:
                tx.checkpoint()
                pending = 0
    rep.seconds = time.perf_counter() - t0
    return rep


def _passed_over(data: bytes) -> bool:
    try:
        return is_feed_or_metadata(json.loads(data))
    except (ValueError, RecursionError):
        return False


def import_paths(
    store: Store,
    paths: Iterable[Path],
    *,
    on_problem: Callable[[str, str], None] | None = None,
) -> ImportReport:
    """``conduit advisories import``: files, folders and archives."""
    return import_items(store, items(paths), on_problem=on_problem)


__all__ = ["ImportReport", "Item", "import_items", "import_one", "import_paths", "items"]
