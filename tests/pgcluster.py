"""A private PostgreSQL cluster for tests: initdb into a temporary directory, pg_ctl start
on a free 127.0.0.1 port with the socket directory beside it, as an unprivileged user when
running as root. The session fixture ``pg_cluster`` skips, saying why, when psycopg or the
server binaries are absent. Shared by the historian and the monitor store contract tests."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


# -- a private PostgreSQL cluster ----------------------------------------------------
def pg_bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: $CONDUIT_PG_BINDIR, Debian's
    /usr/lib/postgresql/<newest>/bin, /usr/local/bin, or the PATH."""
    dirs: list[Path] = []
    if os.environ.get("CONDUIT_PG_BINDIR"):
        dirs.append(Path(os.environ["CONDUIT_PG_BINDIR"]))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    dirs += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)[
        ::-1
    ]
    dirs.append(Path("/usr/local/bin"))
    found = shutil.which("pg_ctl")
    if found:
        dirs.append(Path(found).parent)
    for d in dirs:
        if all((d / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bindir: Path
    base: Path
    run_as: pwd.struct_passwd | None  # set when we are root: postgres refuses to run as root
    port: int = 0
    superuser: str = "conduit"
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.base / "data"
        self.sockets = self.base / "sock"
        self.log = self.base / "server.log"

    def _run(self, *args: str, timeout: float = 120) -> None:
        kw: dict[str, Any] = {}
        if self.run_as is not None:
            kw = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(self.base)}
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.base, **kw
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {proc.stdout}{proc.stderr}\n{log}")

    def init(self) -> None:
        self.sockets.mkdir()
        if self.run_as is not None:
            for p in (self.base, self.sockets):
                os.chown(p, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.superuser,
            "-A", "trust", "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        for attempt in range(5):
            self.port = self.port if attempt == 0 and self.port else _free_port()
            opts = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} "
                "-c max_connections=50 -c shared_buffers=32MB"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                    "-w", "-t", "60", "-o", opts, "start",
                )  # fmt: skip
                return
            except RuntimeError:
                if attempt == 4:
                    raise
                self.port = 0

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no shutdown checkpoint, WAL recovery at next start."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={dbname}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (pip install 'psycopg[binary]')")
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
            "apt-get install postgresql, or set CONDUIT_PG_BINDIR"
        )
    run_as = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                run_as = pwd.getpwnam(name)
                break
        if run_as is None:
            pytest.skip("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")
    # Not under pytest's tmp_path when root: its parent is private to root (0700).
    base = Path(tempfile.mkdtemp(prefix="conduit-pg-"))
    cluster = PgCluster(bindir, base, run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def new_database(cluster: PgCluster, prefix: str) -> str:
    """Create a database with a random name on ``cluster``; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    return name


def drop_database(cluster: PgCluster, name: str) -> None:
    with contextlib.suppress(Exception):
        cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")
