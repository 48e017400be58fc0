"""Record the lab fixture captures into tests/data/ (needs root: loopback capture, port 502).

Run: .venv/bin/python scripts/record_fixtures.py [--out tests/data] [--backend auto]

Writes ``modbus_all_functions.pcap`` and ``modbus_nonstandard.pcap`` with their manifests,
the TCP corner-case variants ``modbus_<kind>.pcap`` (described in ``modbus_variants.json``)
and ``manifest.json``, an index of every capture with its size and SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from otconduit.lab.modbus_exercise import run_exercise, run_nonstandard_exercise
from otconduit.lab.sniffer import read_pcap
from otconduit.lab.tcp_variants import KINDS, make_variant

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTIONS = {
    "modbus_all_functions": "every pymodbus client function code, exceptions, several units",
    "modbus_nonstandard": "HTTP and random bytes on port 502, Modbus on port 1502",
    "clean": "all_functions with recomputed (valid) IPv4/TCP checksums",
    "split": "every PDU split into 1..3-byte segments",
    "coalesce": "3 consecutive requests (and their responses) merged per segment",
    "retransmit": "every 5th data segment duplicated after the peer's next segment",
    "reorder": "every other data segment split in two, second half sent first",
    "gap": "one client data segment (one request) removed mid-connection",
    "midstream": "handshake and first packets dropped; starts with an orphan response",
    "vlan": "every frame tagged 802.1Q VLAN 10",
    "qinq": "every frame tagged 802.1ad 100 / 802.1Q 10",
}


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def _index_entry(path: Path, description: str, manifest: str) -> dict[str, Any]:
    return {
        "description": description,
        "manifest": manifest,
        "packets": sum(1 for _ in read_pcap(path)),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def record(out: Path, backend: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    port = 502 if os.geteuid() == 0 else 5020
    index: dict[str, Any] = {}

    base = out / "modbus_all_functions.pcap"
    manifest = run_exercise(base, "127.0.5.10", port, backend=backend)
    _dump(out / "modbus_all_functions.json", manifest)
    index[base.name] = _index_entry(
        base, DESCRIPTIONS["modbus_all_functions"], "modbus_all_functions.json"
    )

    other = out / "modbus_nonstandard.pcap"
    _dump(out / "modbus_nonstandard.json", run_nonstandard_exercise(other, backend=backend))
    index[other.name] = _index_entry(
        other, DESCRIPTIONS["modbus_nonstandard"], "modbus_nonstandard.json"
    )

    variants: dict[str, Any] = {}
    for kind in KINDS:
        dst = out / f"modbus_{kind}.pcap"
        variants[kind] = make_variant(base, dst, kind)
        index[dst.name] = _index_entry(dst, DESCRIPTIONS[kind], "modbus_variants.json")
    _dump(out / "modbus_variants.json", variants)
    _dump(out / "manifest.json", index)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument("--backend", default="auto", choices=["auto", "tcpdump", "afpacket"])
    args = parser.parse_args(argv)
    index = record(args.out, args.backend)
    for name, entry in index.items():
        print(f"{name:34} {entry['packets']:5d} packets {entry['bytes']:7d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
