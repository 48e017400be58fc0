"""Derive the compact ATT&CK for ICS table that Conduit ships from MITRE's STIX bundle.

The bundle (~3 MB of STIX 2.1) is not shipped; only what alerts and ``conduit attack``
need: technique id, name, tactics (in matrix order), URL, and the bundle's version.

    python scripts/build_attack_table.py [../shared/reference/mitre-ics-attack.json]

writes ``src/otconduit/detect/data/attack_ics.json``. Re-run it when MITRE publishes a
new release and commit the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT.parent / "shared" / "reference" / "mitre-ics-attack.json"
OUT = ROOT / "src" / "otconduit" / "detect" / "data" / "attack_ics.json"


def _external_id(obj: dict[str, Any]) -> tuple[str, str] | None:
    for ref in obj.get("external_references", []):
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return ref["external_id"], ref.get("url", "")
    return None


def build(bundle: dict[str, Any]) -> dict[str, Any]:
    """The compact table from a parsed STIX bundle (pure, so tests can check it)."""
    objects = bundle["objects"]
    live = [o for o in objects if not o.get("revoked") and not o.get("x_mitre_deprecated")]
    tactics_by_short = {o["x_mitre_shortname"]: o for o in live if o["type"] == "x-mitre-tactic"}
    matrix = next(o for o in live if o["type"] == "x-mitre-matrix")
    by_ref = {o["id"]: o for o in live}
    order = [by_ref[r]["x_mitre_shortname"] for r in matrix["tactic_refs"] if r in by_ref]
    tactics = []
    for short in order:
        t = tactics_by_short[short]
        tid = _external_id(t)
        tactics.append({"id": tid[0] if tid else "", "shortname": short, "name": t["name"]})
    techniques = []
    for o in live:
        if o["type"] != "attack-pattern":
            continue
        ext = _external_id(o)
        if ext is None:
            continue
        phases = [
            p["phase_name"]
            for p in o.get("kill_chain_phases", [])
            if p.get("kill_chain_name") == "mitre-ics-attack"
        ]
        techniques.append(
            {
                "id": ext[0],
                "name": o["name"],
                "tactics": sorted(phases, key=lambda s: order.index(s) if s in order else 99),
                "url": ext[1],
            }
        )
    techniques.sort(key=lambda t: t["id"])
    return {
        "source": "MITRE ATT&CK for ICS (STIX 2.1 bundle)",
        "version": matrix.get("x_mitre_version", ""),
        "modified": matrix.get("modified", ""),
        "tactics": tactics,
        "techniques": techniques,
    }


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_BUNDLE
    if not src.is_file():
        print(f"error: no ATT&CK bundle at {src}; pass its path", file=sys.stderr)
        return 2
    table = build(json.loads(src.read_text()))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(table['techniques'])} techniques, {len(table['tactics'])} tactics)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
