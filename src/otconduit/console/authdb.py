"""The console's own database: users, sessions and the audit log.

It is a separate SQLite file beside the monitor's store (``conduit.db`` ->
``conduit.console.db``), not tables inside it, because:

* the store is rebuilt from captures at will (delete it, analyse again) -- accounts and
  the audit trail must survive that;
* the store is the file analysts copy and hand around; it must not carry password
  hashes or session tokens;
* the console opens the store read-only (except for alert lifecycle changes, which go
  through :func:`otconduit.detect.alerts.set_status` and keep their own history there),
  so the store's schema stays owned by the monitor.

Same habits as the store: WAL, named migrations recorded in ``schema_migrations``, one
short transaction per change. Session tokens are stored hashed (SHA-256), so a copy of
this file does not let anyone log in; passwords are Argon2id hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from otconduit.console.passwords import password_problem

ROLES = ("viewer", "analyst", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
NAME_MAX = 64
FILE_MODE = 0o600  # password hashes and session hashes: the owner only

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_console_auth",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
            password_hash TEXT NOT NULL,       -- Argon2id (argon2-cffi), params inside
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,       -- sha256 of the cookie value
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at INTEGER NOT NULL,       -- epoch seconds
            expires_at INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            client TEXT
        );
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,                  -- ISO 8601 UTC
            user TEXT,                         -- who (NULL: unknown, e.g. a failed login)
            action TEXT NOT NULL,              -- login, login_failed, logout, alert.ack, ...
            target TEXT,                       -- what it acted on, e.g. alert:12
            outcome TEXT NOT NULL DEFAULT 'ok',
            detail TEXT,                       -- JSON
            client TEXT                        -- remote address
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        """,
    ),
]


class AuthError(Exception):
    """A user-facing problem with accounts (bad name, unknown role, ...); one line."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_key(name: str) -> str:
    """The one form of a user name used to find the account and to count failed logins
    (names are stored stripped; the column compares ASCII case-insensitively)."""
    return name.strip().casefold()


def private_file(path: Path) -> None:
    """Create ``path`` (and tighten it and its WAL/SHM files, when they exist) so that
    only its owner can read it; SQLite gives the WAL and SHM files the database's mode."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str

    def can(self, role: str) -> bool:
        """True when this user's role is at least ``role``."""
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at: int


class AuthDB:
    """Accounts, sessions and audit log. Thread-safe: one connection per thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        session_seconds: int = 8 * 3600,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.path = Path(path)
        self.session_seconds = session_seconds
        self.hasher = hasher or PasswordHasher()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            private_file(self.path)
        except OSError as exc:  # e.g. another user's file: refuse rather than leave it open
            raise AuthError(f"cannot make console database {self.path} private: {exc}") from exc
        self._migrate()
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # -- connections -------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA foreign_keys=ON")
                c.execute("PRAGMA busy_timeout=5000")
            except sqlite3.DatabaseError as exc:
                raise AuthError(f"cannot use console database {self.path}: {exc}") from exc
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        c = self.conn()
        try:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            applied = {r[0] for r in c.execute("SELECT name FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:
            raise AuthError(f"{self.path} is not a Conduit console database ({exc})") from exc
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in sql.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, _now_iso()))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    # -- users -------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        """Create a user (or, with ``replace``, reset an existing one's role and password)."""
        name = name.strip()
        if (
            not name
            or len(name) > NAME_MAX
            or any(ch.isspace() or not ch.isprintable() for ch in name)
        ):
            raise AuthError(f"user name must be 1-{NAME_MAX} printable characters without spaces")
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r}: use {', '.join(ROLES)}")
        problem = password_problem(password, name)
        if problem is not None:
            raise AuthError(problem)
        digest = self.hasher.hash(password)
        now = _now_iso()
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            row = self._find(name, "id")
            if row is not None and not replace:
                raise AuthError(f"user {name} exists: pass --update to change role or password")
            if row is None:
                cur = c.execute(
                    "INSERT INTO users (name, role, password_hash, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, role, digest, now, now),
                )
                assert cur.lastrowid is not None
                uid = cur.lastrowid
            else:
                uid = int(row[0])
                c.execute(
                    "UPDATE users SET role = ?, password_hash = ?, disabled = 0, updated_at = ? "
                    "WHERE id = ?",
                    (role, digest, now, uid),
                )
                c.execute("DELETE FROM sessions WHERE user_id = ?", (uid,))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return User(uid, name, role)

    def users(self) -> list[dict[str, Any]]:
        cur = self.conn().execute(
            "SELECT id, name, role, disabled, created_at, updated_at FROM users ORDER BY name"
        )
        return [
            {
                "id": r[0],
                "name": r[1],
                "role": r[2],
                "disabled": bool(r[3]),
                "created_at": r[4],
                "updated_at": r[5],
            }
            for r in cur
        ]

    def _find(self, name: str, columns: str) -> tuple[Any, ...] | None:
        """The row of the account whose :func:`login_key` is ``login_key(name)``."""
        key = login_key(name)
        c = self.conn()
        row: tuple[Any, ...] | None = c.execute(
            f"SELECT {columns}, name FROM users WHERE name = ?", (key,)
        ).fetchone()
        if row is None and not key.isascii():  # NOCASE folds ASCII only
            rows = c.execute(f"SELECT {columns}, name FROM users").fetchall()
            row = next((r for r in rows if login_key(r[-1]) == key), None)
        return row[:-1] if row is not None else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when name and password match an enabled account, else None. Unknown
        names cost the same hash verification as wrong passwords (no user enumeration)."""
        row = self._find(name, "id, name, role, password_hash, disabled")
        digest = row[3] if row else self._dummy
        try:
            self.hasher.verify(digest, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row[4]:
            return None
        if self.hasher.check_needs_rehash(digest):
            self.conn().execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (self.hasher.hash(password), row[0]),
            )
        return User(int(row[0]), str(row[1]), str(row[2]))

    # -- sessions ----------------------------------------------------------
    def create_session(self, user: User, client: str | None = None) -> tuple[str, Session]:
        """A new session; returns the cookie value (only ever held by the browser)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = int(time.time())
        exp = now + self.session_seconds
        c = self.conn()
        c.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        c.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_hash_token(token), user.id, csrf, now, exp, now, client),
        )
        return token, Session(user, csrf, exp)

    def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 256:
            return None
        row = (
            self.conn()
            .execute(
                "SELECT u.id, u.name, u.role, s.csrf_token, s.expires_at FROM sessions s "
                "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND u.disabled = 0",
                (_hash_token(token),),
            )
            .fetchone()
        )
        if row is None or row[4] < time.time():
            return None
        return Session(User(int(row[0]), str(row[1]), str(row[2])), str(row[3]), int(row[4]))

    def end_session(self, token: str | None) -> None:
        if token:
            self.conn().execute("DELETE FROM sessions WHERE token_hash = ?", (_hash_token(token),))

    # -- audit -------------------------------------------------------------
    def audit(
        self,
        user: str | None,
        action: str,
        target: str | None = None,
        *,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
        client: str | None = None,
    ) -> None:
        self.conn().execute(
            "INSERT INTO audit_log (at, user, action, target, outcome, detail, client) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                _now_iso(),
                user,
                action,
                target,
                outcome,
                json.dumps(detail, sort_keys=True) if detail else None,
                client,
            ),
        )

    def audit_log(self, *, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        c = self.conn()
        (total,) = c.execute("SELECT count(*) FROM audit_log").fetchone()
        cur = c.execute(
            "SELECT id, at, user, action, target, outcome, detail, client FROM audit_log "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        rows = [
            {
                "id": r[0],
                "at": r[1],
                "user": r[2],
                "action": r[3],
                "target": r[4],
                "outcome": r[5],
                "detail": json.loads(r[6]) if r[6] else {},
                "client": r[7],
            }
            for r in cur
        ]
        return int(total), rows


def default_path(store_path: str | Path) -> Path:
    """``conduit.db`` -> ``conduit.console.db`` beside it."""
    p = Path(store_path)
    return p.with_name(p.stem + ".console.db")
