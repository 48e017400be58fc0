"""Where samples go (IT side). Every sink implements :class:`Sink`.

Contract: ``write`` takes a batch of samples in gateway order (``seq`` increasing) and
returns when the sink has accepted them (stored durably, or handed to its own
store-and-forward buffer). A sink never raises for a transient outage of its
destination: it buffers, reports it in ``status()``, and catches up by itself. It raises
only for programming/configuration errors. ``close`` flushes what it can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from otconduit.gateway.model import TagSample


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def write(self, samples: Sequence[TagSample]) -> None: ...

    async def close(self) -> None: ...

    def status(self) -> dict[str, Any]: ...
