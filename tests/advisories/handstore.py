"""A small store built by hand: assets with identity claims and two advisories."""

from __future__ import annotations

from pathlib import Path

from otconduit.advisories.importer import import_items
from otconduit.store import Store
from otconduit.store.sqlite import AssetRecord
from tests.advisories.csafdocs import document, dumps, product

T0 = 1_700_000_000 * 10**9


def _asset(ip: str, *claims: tuple[str, str, str]) -> AssetRecord:
    return AssetRecord(
        ip=ip,
        vlan=-1,
        mac=None,
        first_seen=T0,
        last_seen=T0 + 10**9,
        packets_sent=10,
        attributes=[("identity", a, v, s, 0.9, None) for a, v, s in claims]
        + [("role", "plc", "1", "behaviour", 0.8, None)],
    )


def build(path: Path) -> Path:
    """Four assets (a CPU 315-2 PN/DP with and without firmware, an unknown product, a
    vendor only) and two advisories about the CPU."""
    with Store(path) as st:
        cid = st.begin_capture("x.pcap", "0" * 64, 1, "pcap")
        st.finish_capture(
            cid,
            status="complete",
            packets=1,
            first_ts=T0,
            last_ts=T0,
            error=None,
            stats={},
            assets=[
                _asset(
                    "10.0.0.1",
                    ("vendor", "Siemens", "s7_szl"),
                    ("model", "6ES7 315-2EH14-0AB0", "s7_szl"),
                    ("firmware", "V3.2.6", "s7_szl"),
                ),
                _asset(
                    "10.0.0.2",
                    ("vendor", "Siemens", "s7_szl"),
                    ("model", "6ES7 315-2EH14-0AB0", "s7_szl"),
                ),
                _asset(
                    "10.0.0.3",
                    ("vendor", "Acme", "modbus_43_14"),
                    ("product_code", "Widget 3000", "modbus_43_14"),
                ),
                _asset("10.0.0.4", ("vendor", "Siemens", "s7_szl")),
            ],
            conversations=[],
            problems=[],
            problem_counts={},
        )
        docs = [
            document(
                "EX-HIGH",
                [
                    product(
                        "P1",
                        "Siemens",
                        "SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)",
                        "vers:all/<V3.2.17",
                    )
                ],
                {"known_affected": ["P1"]},
                score=9.8,
            ),
            document(
                "EX-LOW",
                [product("P1", "Siemens", "SIMATIC S7-300 CPU family", "< V3.X.5")],
                {"known_affected": ["P1"]},
                score=4.3,
            ),
        ]
        import_items(st, ((d["document"]["tracking"]["id"], dumps(d), None) for d in docs))
    return path
