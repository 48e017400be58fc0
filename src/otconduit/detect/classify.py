"""Which rules a single decoded operation triggers (dangerous commands and writes).

Input is the operation as the store returns it (``views.operations`` dict shape);
output is a list of :class:`Hit` (rule id, optional severity override, a short note).
Only requests matter: responses and unsolicited reports are the device talking.

What is dangerous is protocol knowledge: each protocol's spec carries its classifier and
its rules with examples (``protocols/<name>/danger.py``, reached through the registry).
Here the protocol's answer becomes the detection vocabulary; an operation of a protocol
no spec classifies counts only when it is a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otconduit.detect.rules import Severity
from otconduit.protocols import registry


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    severity: Severity | None = None  # None: the rule's default
    note: str = ""


# Operation classes that can never trigger an op-level rule: the scan skips them.
QUIET_CLASSES = frozenset({"read", "identity", "diagnostic"})


def classify(op: dict[str, Any]) -> list[Hit]:
    """Rules this operation triggers (empty for routine traffic)."""
    hits = registry.classify(op)
    if hits is None:
        if op["operation"] == "write":
            return [Hit("process-write", note=op["function"])]
        return []
    return [
        Hit(h.rule, None if h.severity is None else Severity.parse(h.severity), h.note)
        for h in hits
    ]
