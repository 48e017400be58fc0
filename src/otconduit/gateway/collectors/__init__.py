"""Read-only collectors (OT side), one per protocol. A collector polls or subscribes to
one device and emits :class:`~otconduit.gateway.model.TagSample` through a callback; the
gateway runtime gives each device its own task, timeout and back-off."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from otconduit.gateway.model import TagSample

Emit = Callable[[Sequence[TagSample]], None]
