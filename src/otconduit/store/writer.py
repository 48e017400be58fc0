"""Background writer for operation chunks.

Column-packing and writing a few hundred thousand operations takes a noticeable share of
an analysis; on a machine with a second core that work can run while the next block is
decoded. A bounded queue keeps memory flat: when the writer falls behind, the decoder
waits. Errors surface on the next submit or at close, never silently.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from otconduit.store import backend
from otconduit.store.opchunks import OpBatch
from otconduit.store.sqlite import Store, StoreError

Chunks = Sequence[tuple[int, OpBatch]]


class ChunkWriter:
    """Writes ``(conversation id, batch)`` lists for one capture on its own connection."""

    def __init__(self, path: str | Path, capture_id: int, depth: int = 1) -> None:
        """``path`` is the store's target: a SQLite file or a PostgreSQL URL."""
        kind, where = backend.parse(path)
        self.path = where
        self._label = backend.redact(where) if kind == backend.POSTGRESQL else where
        self.capture_id = capture_id
        self._queue: queue.Queue[Callable[[], Chunks] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="conduit-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        store: Store | None = None
        try:
            store = Store(self.path)
            while (job := self._queue.get()) is not None:
                if self._error is None:
                    store.insert_op_chunks(self.capture_id, job())
        except BaseException as exc:  # reported to the submitting thread
            self._error = exc
            while self._queue.get() is not None:  # drain so submitters never block
                pass
        finally:
            if store is not None:
                store.close()

    def _check(self) -> None:
        if self._error is not None:
            raise StoreError(f"writing operations to {self._label} failed: {self._error}") from (
                self._error
            )

    def submit(self, job: Callable[[], Chunks]) -> None:
        """Queue a job that builds the chunks (run on the writer thread)."""
        self._check()
        self._queue.put(job)

    def sync(self) -> None:
        """Wait until everything queued so far is written (a checkpoint's barrier)."""
        done = threading.Event()

        def barrier() -> Chunks:
            done.set()  # every earlier job's chunks are committed: they ran in order
            return []

        self.submit(barrier)
        while not done.wait(0.5):
            self._check()
            if not self._thread.is_alive():
                break
        self._check()

    def close(self) -> None:
        """Wait until everything queued is written; raise what went wrong, if anything."""
        self._queue.put(None)
        self._thread.join()
        self._check()
