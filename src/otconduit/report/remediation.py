"""Known vulnerabilities ranked for remediation: which fix comes first.

A CVSS score alone ranks a printer on the office network with a PLC; the plant fixes the
PLC first. The rank here is the advisory's severity *and* where the device sits:

1. affected, and CVSS 9 or more, or the device is reached from IT (directly, or through
   a level 2-3 host that talks with IT)
2. affected, and CVSS 7 or more, or the device is at level 0-1
3. affected, otherwise
4. the device never stated its firmware (or the advisory's range cannot be read): confirm
   the version first

Matches the advisory calls fixed for the device's firmware are counted, not ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otconduit.store import Store

PRIORITY_TEXT = {
    1: "fix first",
    2: "fix soon",
    3: "plan the fix",
    4: "confirm the firmware",
}


@dataclass(slots=True)
class VulnEvidence:
    advisories: int  # advisories imported
    rows: list[dict[str, Any]] = field(default_factory=list)  # ranked, with priority, why
    fixed: int = 0
    unmatched: int = 0  # assets whose identity names no stored product
    no_identity: int = 0

    @property
    def affected_assets(self) -> int:
        return len({r["ip"] for r in self.rows if r["status"] == "affected"})


def ranked(store: Store, exposed: set[str], critical: set[str]) -> VulnEvidence:
    """``conduit vulns``'s rows with a remediation priority (see the module docstring).
    ``exposed``: addresses reached from IT; ``critical``: level 0-1 addresses."""
    from otconduit.advisories.vulns import vulnerabilities
    from otconduit.store import advisories as db

    n = db.count(store)
    if n == 0:
        return VulnEvidence(0)
    rep = vulnerabilities(store)
    ev = VulnEvidence(n, unmatched=len(rep.unmatched), no_identity=rep.no_identity)
    for r in rep.rows:
        if r["status"] == "fixed":
            ev.fixed += 1
            continue
        cvss = r["cvss"] or 0.0
        why = []
        if r["status"] == "version_unknown":
            prio = 4
            why.append("firmware not stated" if not r.get("firmware") else "range not readable")
        else:
            if cvss >= 9:
                why.append(f"CVSS {cvss:g}")
            if r["ip"] in exposed:
                why.append("reached from IT")
            if why:
                prio = 1
            else:
                if cvss >= 7:
                    why.append(f"CVSS {cvss:g}")
                if r["ip"] in critical:
                    why.append("level 0-1 device")
                prio = 2 if why else 3
        ev.rows.append({**r, "priority": prio, "why": ", ".join(why) or f"CVSS {cvss:g}"})
    ev.rows.sort(key=lambda r: (r["priority"], -(r["cvss"] or 0.0), r["ip"], r["advisory"]))
    return ev
