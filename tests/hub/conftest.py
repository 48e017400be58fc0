"""Hub test fixtures: a hub store on each backend (SQLite always; PostgreSQL on a private
cluster when its binaries and psycopg are present, else skipped with the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otconduit.store import Store, StoreError
from tests.pgcluster import drop_database, new_database, pg_cluster  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh hub database target: a SQLite path or a ``postgresql://`` URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "hub.db")
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = new_database(cluster, "hub")
    url = f"postgresql://{cluster.superuser}@127.0.0.1:{cluster.port}/{name}"
    try:
        try:
            Store(url).close()
        except StoreError as exc:  # the PostgreSQL backend is being built alongside
            pytest.skip(f"the store cannot open PostgreSQL yet: {exc}")
        yield url
    finally:
        drop_database(cluster, name)
