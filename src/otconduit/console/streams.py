"""Live-update streams held per user: each open stream polls the store every second, so
one account must not be able to open hundreds of them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi.responses import StreamingResponse


class StreamSlots:
    """Counts the open streams of each user; :meth:`acquire` refuses past a limit."""

    def __init__(self) -> None:
        self._open: dict[int, int] = {}  # entries leave at zero: one per streaming user
        self._lock = threading.Lock()

    def open(self, user_id: int) -> int:
        with self._lock:
            return self._open.get(user_id, 0)

    def acquire(self, user_id: int, limit: int) -> Callable[[], None] | None:
        """A release function (safe to call twice), or None when ``limit`` are open."""
        with self._lock:
            n = self._open.get(user_id, 0)
            if n >= limit:
                return None
            self._open[user_id] = n + 1
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if done.is_set():
                    return
                done.set()
                left = self._open.get(user_id, 1) - 1
                if left > 0:
                    self._open[user_id] = left
                else:
                    self._open.pop(user_id, None)

        return release


class SlotStream(StreamingResponse):
    """A streaming response that gives its slot back however the stream ends
    (finished, client gone, server stopping, or failing)."""

    def __init__(self, content: Any, release: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
