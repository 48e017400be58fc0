"""Who may try a password now, and how many password checks run at once.

Each check is an Argon2id verification (64 MiB, tens of milliseconds of CPU), so logins
are where an anonymous client can spend the server's memory and CPU. The guard:

* names are compared as :func:`~otconduit.console.authdb.login_key` (stripped,
  case-folded), the form the account look-up uses, so ``" admin"`` and ``"ADMIN"``
  share one failure count;
* ``name_limit`` failures per (client, name) lock that name *for that client* only: one
  address behind a proxy cannot lock a user out for everyone else;
* ``client_limit`` failures per client across all names stop one client guessing
  through a list of names;
* a client may have ``per_client`` checks running or waiting; more are refused (429);
* checks run in a pool of their own with ``workers`` threads, so a flood neither holds
  the threads every other request needs nor more than ``workers`` x 64 MiB of memory;
  past ``queue`` waiting checks the console answers "busy" (503) at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from otconduit.console.authdb import login_key
from otconduit.console.bounded import BoundedLRU

T = TypeVar("T")
TABLE_MAX = 10_000  # failure records kept (per name and per client), least recent out


def client_key(addr: str | None) -> str:
    """An IPv6 client counts as its /64 (one host usually owns the whole prefix)."""
    if not addr:
        return "-"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Refused(Exception):
    """A login attempt turned away before its password was checked."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoginGuard:
    """Throttles failed logins and bounds concurrent password checks (see module doc)."""

    def __init__(
        self,
        *,
        name_limit: int = 5,
        client_limit: int = 20,
        window: float = 300.0,
        per_client: int = 2,
        workers: int = 2,
        queue: int = 16,
    ) -> None:
        self.name_limit = name_limit
        self.client_limit = client_limit
        self.window = window
        self.per_client = per_client
        self.queue = queue
        self.workers = workers
        self._by_name: BoundedLRU[tuple[str, str], deque[float]] = BoundedLRU(TABLE_MAX)
        self._by_client: BoundedLRU[str, deque[float]] = BoundedLRU(TABLE_MAX)
        self._inflight: dict[str, int] = {}  # entries leave at zero: at most workers+queue
        self._pending = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # made on first use, again after close

    # -- failure counts ---------------------------------------------------------------
    def _count(self, q: deque[float] | None, now: float) -> int:
        while q and now - q[0] > self.window:
            q.popleft()
        return len(q) if q else 0

    def blocked(self, client: str | None, name: str) -> str | None:
        """Why this client may not try this name now, or None."""
        c, now = client_key(client), time.monotonic()
        with self._lock:
            if self._count(self._by_name.get((c, login_key(name))), now) >= self.name_limit:
                return "too many failed logins: wait a few minutes"
            if self._count(self._by_client.get(c), now) >= self.client_limit:
                return "too many failed logins from this address: wait a few minutes"
        return None

    def failed(self, client: str | None, name: str) -> None:
        c, now = client_key(client), time.monotonic()
        with self._lock:
            self._by_name.setdefault((c, login_key(name)), deque).append(now)
            self._by_client.setdefault(c, deque).append(now)

    def succeeded(self, client: str | None, name: str) -> None:
        with self._lock:
            self._by_name.pop((client_key(client), login_key(name)))

    # -- running a check --------------------------------------------------------------
    def _admit(self, client: str | None, name: str) -> tuple[str, ThreadPoolExecutor]:
        why = self.blocked(client, name)
        if why is not None:
            raise Refused(429, why)
        c = client_key(client)
        with self._lock:
            if self._inflight.get(c, 0) >= self.per_client:
                raise Refused(429, "a login from this address is already being checked: retry")
            if self._pending >= self.workers + self.queue:
                raise Refused(503, "the console is busy checking other logins: retry shortly")
            self._inflight[c] = self._inflight.get(c, 0) + 1
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="console-login")
            return c, self._pool

    def _release(self, c: str) -> None:
        with self._lock:
            self._pending -= 1
            left = self._inflight.get(c, 1) - 1
            if left > 0:
                self._inflight[c] = left
            else:
                self._inflight.pop(c, None)

    async def attempt(
        self, client: str | None, name: str, check: Callable[[], T | None]
    ) -> T | None:
        """Run ``check`` (the password check: None when wrong) in the login pool, if this
        client may try this name now; raises :class:`Refused` when it may not."""
        c, pool = self._admit(client, name)
        try:
            result = await asyncio.get_running_loop().run_in_executor(pool, check)
        finally:
            self._release(c)
        if result is None:
            self.failed(client, name)
        else:
            self.succeeded(client, name)
        return result

    def sizes(self) -> tuple[int, int]:
        """Failure records held: per (client, name) and per client (both bounded)."""
        return len(self._by_name), len(self._by_client)

    def close(self) -> None:
        """Stop the pool's threads (a later login starts a new pool, as the console's
        database connections reopen after :meth:`Console.close`)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
