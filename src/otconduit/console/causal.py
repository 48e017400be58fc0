"""The join a network monitor or a historian cannot make alone: a command on the wire to
a device, and the machine event on that device that followed it.

An alert whose rule is a command to a device (writes, controller state, program and
configuration changes) and a machine event (state change, fault, a tag going bad) are
*causally joined* when the event is about the same device (the gateway config ties each
tag to the device it is read from) and starts after the alert's first command and no
later than ``CAUSAL_WINDOW_S`` after its last. That is a reason to look, not a proof: the
join says what happened in what order, and says so in those words.
"""

from __future__ import annotations

from typing import Any

from otconduit.detect.rules import RULES

CAUSAL_WINDOW_S = 120.0
COMMAND_CATEGORIES = frozenset({"process-write", "controller-state", "program-change",
                                "configuration"})  # fmt: skip
MACHINE_EFFECTS = {"state-change": "state change", "fault": "fault", "tag-fault": "tag fault"}


def is_command(rule: str | None) -> bool:
    """Does an alert of this rule stand for commands sent to a device?"""
    r = RULES.get(rule or "")
    return r is not None and r.category in COMMAND_CATEGORIES


def links(events: list[Any], window_s: float = CAUSAL_WINDOW_S) -> list[dict[str, Any]]:
    """Pairs (command alert -> machine event on its device within the window) among
    ``events`` (:class:`otconduit.console.incidents.Event`), each with the delay and a
    sentence saying what was joined."""
    window = int(window_s * 1e9)
    alerts = [e for e in events if e.kind == "alert" and is_command(e.ref.get("rule"))]
    machine = [e for e in events if e.kind == "machine" and e.ref.get("event") in MACHINE_EFFECTS]
    out = []
    for a in alerts:
        device = a.ref.get("dst_ip") or a.asset
        for m in machine:
            if m.asset != device or not a.start <= m.start <= a.end + window:
                continue
            delay = (m.start - a.start) / 1e9
            effect = MACHINE_EFFECTS[m.ref["event"]]
            out.append(
                {
                    "alert_id": a.ref.get("alert_id"),
                    "rule": a.ref.get("rule"),
                    "device": device,
                    "event": m.ref.get("event"),
                    "tag": m.ref.get("tag"),
                    "machine_title": m.title,
                    "delay_s": round(delay, 3),
                    "text": (
                        f"write -> {effect}: alert #{a.ref.get('alert_id')} ({a.title}) on "
                        f"{device}, then {m.title} {delay:.1f} s after its first command"
                    ),
                }
            )
    return out
