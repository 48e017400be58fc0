"""The historian as a gateway :class:`~otconduit.gateway.sinks.Sink`.

All database work happens on one dedicated writer thread that owns the store; the event
loop only queues batches and awaits a future, so it never blocks on SQLite or
PostgreSQL. ``write`` returns once the batch is committed, or, while the database is
unreachable, once it is held in the sink's memory buffer (bounded by ``max_pending``
samples; the oldest are dropped and counted beyond that), as the Sink contract asks.

Batches queued while a commit runs are committed together (group commit): each batch
is still all or nothing. Retention and downsampling run on the same thread every
``maintain_every`` seconds (and on :meth:`HistorianSink.maintain`), in short
transactions with queued writes served between them, so maintenance never holds up
collection for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otconduit.gateway.historian.schema import iso
from otconduit.gateway.historian.store import (
    HistorianError,
    HistorianStore,
    HistorianUnavailable,
    Policy,
)
from otconduit.gateway.model import TagSample

log = logging.getLogger(__name__)
Opener = Callable[[], HistorianStore]


@dataclass(slots=True)
class _Write:
    samples: list[TagSample]
    fut: asyncio.Future[None] | None


@dataclass(slots=True)
class _Call:
    fn: Callable[[HistorianStore], Any]
    fut: asyncio.Future[Any]


@dataclass(slots=True)
class _Maintain:
    now_ns: int | None
    fut: asyncio.Future[dict[str, int]] | None


_Job = _Write | _Call | _Maintain | None


class HistorianSink:
    """A gateway sink that stores samples with a :class:`HistorianStore`.

    ``opener`` builds the store on the writer thread (and again after an outage). Build
    one from the configuration with :meth:`sqlite` or :meth:`postgres`.
    """

    def __init__(
        self,
        opener: Opener,
        *,
        name: str = "historian",
        backend: str = "sqlite",
        target: str = "",
        policy: Policy | None = None,
        maintain_every: float | None = 600.0,
        idle_flush: float = 2.0,
        max_pending: int = 1_000_000,
        group_rows: int = 50_000,
        retry: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.name = name
        self.backend = backend
        self.target = target
        self.policy = policy or Policy()
        self.maintain_every = maintain_every
        self.idle_flush = idle_flush
        self.max_pending = max_pending
        self.group_rows = group_rows
        self.retry = retry
        self._opener = opener
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed: asyncio.Future[None] | None = None
        self._fatal: BaseException | None = None
        # Writer-thread state (read, never written, by status()).
        self._store: HistorianStore | None = None
        self._state = "new"
        self._pending: deque[_Write] = deque()
        self._pending_samples = 0
        self._retry_at = 0.0
        self._backoff = retry[0]
        self._last_write = 0.0
        self._maint: Generator[None, None, dict[str, int]] | None = None
        self._maint_fut: asyncio.Future[dict[str, int]] | None = None
        self._maint_requests: deque[_Maintain] = deque()
        self._next_maint = 0.0
        self.counters = {
            "samples_written": 0,
            "batches_written": 0,
            "commits": 0,
            "samples_dropped": 0,
            "samples_failed": 0,
            "outages": 0,
            "maintenance_runs": 0,
        }
        self._last_commit_ns: int | None = None
        self._last_error: str | None = None
        self._last_maint: dict[str, Any] | None = None

    # -- construction from the configuration -----------------------------------
    @classmethod
    def sqlite(cls, cfg: Any, **kw: Any) -> HistorianSink:
        """From a ``sinks.historian`` section (path, retention, downsampling)."""
        from otconduit.gateway.historian.sqlite import SQLiteHistorian

        path = Path(cfg.path)
        sync = getattr(cfg, "synchronous", "normal")
        kw.setdefault("maintain_every", getattr(cfg, "maintain_every", 600.0))
        return cls(
            lambda: SQLiteHistorian(path, synchronous=sync),
            name="historian",
            backend="sqlite",
            target=str(path),
            policy=Policy.from_config(cfg),
            **kw,
        )

    @classmethod
    def postgres(cls, cfg: Any, **kw: Any) -> HistorianSink:
        """From a ``sinks.postgres`` section (dsn, retention, downsampling)."""
        from otconduit.gateway.historian.postgres import PostgresHistorian, redact

        dsn = str(cfg.dsn)
        kw.setdefault("maintain_every", getattr(cfg, "maintain_every", 600.0))
        return cls(
            lambda: PostgresHistorian(dsn),
            name="postgres",
            backend="postgresql",
            target=redact(dsn),
            policy=Policy.from_config(cfg),
            **kw,
        )

    # -- the Sink interface (event loop side) -----------------------------------
    async def start(self) -> None:
        """Start the writer thread and open the store. Raises :class:`HistorianError`
        for a store that cannot work (not a database, bad DSN); an unreachable server is
        an outage: the sink starts, buffers and keeps trying."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._closed = loop.create_future()
        opened: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(opened,), name=f"conduit-{self.name}", daemon=True
        )
        self._thread.start()
        try:
            await opened
        except BaseException:
            await self._closed
            self._thread.join()  # it has signalled its last act: returns at once
            raise

    async def write(self, samples: Sequence[TagSample]) -> None:
        if not samples:
            return
        fut = self._submit_check()
        self._queue.put(_Write(list(samples), fut))
        await fut

    async def maintain(self, now_ns: int | None = None) -> dict[str, int]:
        """Run retention and downsampling now (``now_ns`` defaults to the clock);
        returns how many samples each part deleted."""
        fut: asyncio.Future[dict[str, int]] = self._submit_check()
        self._queue.put(_Maintain(now_ns, fut))
        return await fut

    async def call(self, fn: Callable[[HistorianStore], Any]) -> Any:
        """Run ``fn(store)`` on the writer thread (queries from the gateway process,
        tests); raises :class:`HistorianUnavailable` while the store is down."""
        fut: asyncio.Future[Any] = self._submit_check()
        self._queue.put(_Call(fn, fut))
        return await fut

    async def close(self) -> None:
        """Write what is pending, flush, close the store and stop the thread."""
        if self._thread is None or self._closed is None:
            return
        if not self._closed.done():
            self._queue.put(None)
        await self._closed
        self._thread.join()  # it has signalled its last act: returns at once
        if self._fatal is not None:
            raise HistorianError(f"historian writer failed: {self._fatal}") from self._fatal

    def status(self) -> dict[str, Any]:
        store = self._store
        return {
            "backend": self.backend,
            "target": self.target,
            "state": self._state,
            **self.counters,
            "pending_samples": self._pending_samples,
            "buffered_rows": getattr(store, "buffered", 0) if store is not None else 0,
            "last_commit": iso(self._last_commit_ns),
            "last_error": self._last_error,
            "last_maintenance": self._last_maint,
        }

    def _submit_check(self) -> Any:
        if self._loop is None or self._closed is None:
            raise RuntimeError(f"sink {self.name}: start() it first")
        if self._closed.done():
            raise RuntimeError(f"sink {self.name} is closed")
        if self._fatal is not None:
            raise HistorianError(f"historian writer failed: {self._fatal}") from self._fatal
        return self._loop.create_future()

    def _resolve(self, fut: asyncio.Future[Any] | None, result: Any = None) -> None:
        if fut is None or self._loop is None:
            return

        def done() -> None:
            if not fut.done():
                fut.set_result(result)

        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(done)

    def _fail(self, fut: asyncio.Future[Any] | None, exc: BaseException) -> None:
        if fut is None or self._loop is None:
            return

        def done() -> None:
            if not fut.done():
                fut.set_exception(exc)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(done)

    # -- the writer thread -------------------------------------------------------
    def _main(self, opened: asyncio.Future[None]) -> None:
        try:
            try:
                self._open()
            except HistorianError as exc:  # permanent: start() raises it
                self._state = "failed"
                self._fail(opened, exc)
                return
            self._resolve(opened)
            if self.maintain_every is not None:
                self._next_maint = time.monotonic() + min(5.0, self.maintain_every)
            self._serve()
        except BaseException as exc:  # a bug: fail every waiter rather than hang them
            self._fatal = exc
            log.exception("historian %s writer stopped", self.name)
            self._fail(opened, exc)
            for w in self._pending:
                self._fail(w.fut, exc)
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self._fail(job.fut, exc)
        finally:
            if self._store is not None:
                try:
                    self._store.close()
                except HistorianError as exc:
                    log.error("historian %s: closing: %s", self.name, exc)
                self._store = None
            if self._state != "failed":
                self._state = "closed"
            self._resolve(self._closed)

    def _open(self) -> None:
        """Open the store; an outage schedules a retry, a permanent error raises."""
        try:
            self._store = self._opener()
        except HistorianUnavailable as exc:
            self._down(exc)
            return
        self._state = "ok"
        self._backoff = self.retry[0]

    def _down(self, exc: BaseException) -> None:
        if self._state != "down":
            self.counters["outages"] += 1
            log.warning("historian %s unavailable: %s", self.name, exc)
        self._state = "down"
        self._last_error = str(exc)
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry[1])
        self._hold_pending()

    def _timeout(self) -> float | None:
        now = time.monotonic()
        if self._store is not None and (self._maint is not None or self._maint_requests):
            return 0.0
        deadlines = []
        if self._store is None:
            deadlines.append(self._retry_at)
        else:
            if getattr(self._store, "buffered", 0):
                deadlines.append(self._last_write + self.idle_flush)
            if self.maintain_every is not None and self._has_policy():
                deadlines.append(self._next_maint)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _has_policy(self) -> bool:
        return self.policy.retention_ns is not None or self.policy.downsample_after_ns is not None

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            timeout = self._timeout()
            jobs: list[_Job] = []
            try:
                if timeout == 0:
                    jobs.append(self._queue.get_nowait())
                else:
                    jobs.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                pass
            rows = sum(len(j.samples) for j in jobs if isinstance(j, _Write))
            while rows < self.group_rows:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                if isinstance(job, _Write):
                    rows += len(job.samples)
            for job in jobs:
                if job is None:
                    stopping = True
                elif isinstance(job, _Write):
                    self._pending.append(job)
                    self._pending_samples += len(job.samples)
                elif isinstance(job, _Maintain):
                    self._maint_requests.append(job)
                else:
                    self._run_call(job)
            if self._store is None and time.monotonic() >= self._retry_at:
                try:
                    self._open()
                except HistorianError as exc:
                    self._down(exc)  # was good before: keep trying, say why
            self._commit()
            if self._store is None:
                self._hold_pending()
                continue
            self._housekeeping(stopping)
        if self._pending and self._store is None:  # one last try before giving up
            with contextlib.suppress(HistorianError):
                self._open()
        self._commit()
        if self._pending_samples:
            log.error(
                "historian %s: %d samples not written at close (%s)",
                self.name,
                self._pending_samples,
                self._last_error,
            )
            self.counters["samples_dropped"] += self._pending_samples
        if self._maint_fut is not None:
            self._fail(self._maint_fut, HistorianError("historian closed during maintenance"))
        for req in self._maint_requests:
            self._fail(req.fut, HistorianError("historian closed before maintenance"))

    def _run_call(self, job: _Call) -> None:
        if self._store is None:
            self._fail(job.fut, HistorianUnavailable(self._last_error or "historian is down"))
            return
        try:
            self._commit()  # a call sees every write queued before it
            self._resolve(job.fut, job.fn(self._store))
        except HistorianUnavailable as exc:
            self._fail(job.fut, exc)
            self._down(exc)
        except Exception as exc:
            self._fail(job.fut, exc)

    def _commit(self) -> None:
        """Commit pending batches, several per transaction, until done or down."""
        while self._pending and self._store is not None:
            group: list[_Write] = [self._pending.popleft()]
            n = len(group[0].samples)
            while self._pending and n + len(self._pending[0].samples) <= self.group_rows:
                group.append(self._pending.popleft())
                n += len(group[-1].samples)
            try:
                self._write_group(group)
            except HistorianUnavailable as exc:
                self._pending.extendleft(reversed(group))
                self._down(exc)
                return

    def _write_group(self, group: list[_Write]) -> None:
        store = self._store
        assert store is not None
        samples = group[0].samples if len(group) == 1 else [s for w in group for s in w.samples]
        try:
            store.write(samples)
        except HistorianUnavailable:
            raise
        except Exception as exc:
            if len(group) > 1:  # find the batch at fault; the others are fine
                for w in group:
                    self._write_group([w])
                return
            w = group[0]
            self._pending_samples -= len(w.samples)
            self.counters["samples_failed"] += len(w.samples)
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.error("historian %s: batch rejected: %s", self.name, exc)
            self._fail(w.fut, exc)
            return
        self._pending_samples -= len(samples)
        self.counters["samples_written"] += len(samples)
        self.counters["batches_written"] += len(group)
        self.counters["commits"] += 1
        self._last_commit_ns = time.time_ns()
        self._last_write = time.monotonic()
        if self._state != "ok":
            log.info("historian %s is back", self.name)
        self._state = "ok"
        for w in group:
            self._resolve(w.fut)

    def _hold_pending(self) -> None:
        """While down: the pending batches are held in memory, which is what a write
        waits for then, so release their waiters; drop the oldest beyond the bound."""
        for w in self._pending:
            self._resolve(w.fut)
            w.fut = None
        while self._pending and self._pending_samples > self.max_pending:
            w = self._pending.popleft()
            self._pending_samples -= len(w.samples)
            self.counters["samples_dropped"] += len(w.samples)

    def _housekeeping(self, stopping: bool) -> None:
        store = self._store
        assert store is not None
        now = time.monotonic()
        try:
            if self._maint is None and not self._maint_requests and not stopping:
                due = self.maintain_every is not None and self._has_policy()
                if due and now >= self._next_maint:
                    self._maint_requests.append(_Maintain(None, None))
            if self._maint is None and self._maint_requests and not stopping:
                req = self._maint_requests.popleft()
                now_ns = req.now_ns if req.now_ns is not None else time.time_ns()
                self._maint, self._maint_fut = store.maintenance(now_ns, self.policy), req.fut
            if self._maint is not None and not stopping:
                try:
                    next(self._maint)  # one short transaction, then back to the queue
                except StopIteration as done:
                    self._maint_done(dict(done.value))
            elif getattr(store, "buffered", 0) and now - self._last_write >= self.idle_flush:
                store.flush()
        except HistorianUnavailable as exc:
            self._maint_abort(exc)
            self._down(exc)
        except HistorianError as exc:
            self._maint_abort(exc)
            self._last_error = str(exc)
            log.error("historian %s: maintenance: %s", self.name, exc)

    def _maint_done(self, report: dict[str, int]) -> None:
        self.counters["maintenance_runs"] += 1
        self._last_maint = {"at": iso(time.time_ns()), **report}
        self._resolve(self._maint_fut, report)
        self._maint = self._maint_fut = None
        if self.maintain_every is not None:
            self._next_maint = time.monotonic() + self.maintain_every

    def _maint_abort(self, exc: BaseException) -> None:
        if self._maint is not None:
            self._maint.close()
        self._fail(self._maint_fut, exc)
        self._maint = self._maint_fut = None
        if self.maintain_every is not None:
            self._next_maint = time.monotonic() + min(60.0, self.maintain_every)
