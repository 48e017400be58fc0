"""The CISA CSAF snapshot (../shared/reference/csaf), imported once for the tests that
match against real advisories."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from otconduit.advisories.importer import ImportReport, import_paths
from otconduit.store import Store
from tests.conftest import SHARED

SNAPSHOT = SHARED / "reference" / "csaf" / "cisa-ot-csaf-2017-2024.tar.xz"
needs_csaf = pytest.mark.skipif(
    not SNAPSHOT.is_file(), reason="../shared/reference/csaf snapshot is not present"
)


@dataclass
class Imported:
    db: Path
    report: ImportReport
    seconds: float


@pytest.fixture(scope="session")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """A database holding every advisory of the snapshot (imported once per session)."""
    if not SNAPSHOT.is_file():
        pytest.skip("../shared/reference/csaf snapshot is not present")
    db = tmp_path_factory.mktemp("csaf") / "advisories.db"
    t0 = time.perf_counter()
    with Store(db) as store:
        rep = import_paths(store, [SNAPSHOT])
    return Imported(db, rep, time.perf_counter() - t0)
