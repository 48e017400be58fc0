"""Dangerous operations as protocol data.

Which requests of a protocol are dangerous is protocol knowledge (an S7 PI service name,
a DNP3 object group, a Modbus diagnostics sub-function), so it lives beside the decoder
that knows that vocabulary, not in the detection engine. A protocol says it in two parts
of its :class:`~otconduit.protocols.base.ProtocolSpec`:

- ``classify``: a function from one stored operation to the :class:`Hit` s it triggers;
- ``rules``: one :class:`DangerRule` per rule id it can raise, each with example
  conversations that raise it (the conformance harness replays every example through
  the decoder and the classifier, so a rule nobody can reach cannot ship).

Rule ids name entries of the rule catalogue (``detect/rules.py``: title, category,
default severity and the ATT&CK for ICS techniques), which is shared across protocols. A
protocol with a rule of its own declares it with :class:`RuleDefinition` in
``ProtocolSpec.defines`` and the catalogue takes it from the registry.

This module imports nothing from detection or storage: protocols sit below both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

SeverityName = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: Final = ("info", "low", "medium", "high", "critical")

OpView = Mapping[str, Any]
"""One operation as the store returns it (``store.views.operations`` rows): at least
``protocol``, ``operation`` (class), ``function``, ``function_code`` and ``detail``."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule an operation triggers."""

    rule: str
    severity: SeverityName | None = None  # None: the rule's default
    note: str = ""


Classifier = Callable[[OpView], list[Hit]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """A short conversation whose last request is a dangerous operation: messages as
    ``(direction, bytes)`` in wire order (0 client to server, 1 back), including any
    set-up the decoder needs first (an S7 connection, a DNP3 link)."""

    messages: tuple[tuple[int, bytes], ...]
    transport: str = "tcp"

    def __post_init__(self) -> None:
        if not self.messages or any(d not in (0, 1) for d, _ in self.messages):
            raise ValueError("an example is one or more (direction 0/1, bytes) messages")


@dataclass(frozen=True, slots=True, kw_only=True)
class DangerRule:
    """A rule id a protocol's classifier can raise, what on the wire raises it, and
    conversations that do."""

    rule: str
    trigger: str
    examples: tuple[Example, ...]

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError(f"rule {self.rule!r} needs at least one example")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDefinition:
    """A catalogue rule a protocol brings with it (one no other protocol raises)."""

    id: str
    title: str
    category: str  # runbook key, one of ``detect.rules.CATEGORIES``
    severity: SeverityName
    techniques: tuple[str, ...]  # ATT&CK for ICS technique ids
    description: str
