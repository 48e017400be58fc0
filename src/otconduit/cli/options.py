"""Options every database command shares, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# A Path collapses the ``//`` of a URL; the store puts it back (store.backend.parse).
DbOpt = Annotated[
    Path,
    typer.Option(
        "--db",
        help="SQLite file or postgresql://user@host/db URL (default $CONDUIT_DB, else conduit.db).",
        envvar="CONDUIT_DB",
    ),
]
