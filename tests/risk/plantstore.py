"""A synthetic store of the built-in plant's addresses (examples/plant-policy.yaml), written
with the store's own writers: assets with identities, conversations, two advisories about
the press CPU, and alerts (one critical against the press, one informational write, one
acknowledged)."""

from __future__ import annotations

from pathlib import Path

from otconduit.advisories.importer import import_items
from otconduit.detect.alerts import list_alerts, set_status, store_findings
from otconduit.detect.findings import Finding
from otconduit.detect.rules import Severity
from otconduit.store import Store
from otconduit.store.sqlite import AssetRecord, ConversationRecord
from tests.advisories.csafdocs import document, dumps, product

T0 = 1_790_000_000 * 10**9
CONVEYOR, PRESS, REMOTE_IO = "127.0.10.10", "127.0.10.20", "127.0.10.40"
HMI, HISTORIAN, OFFICE, ATTACKER = "127.0.20.10", "127.0.35.10", "127.0.40.50", "127.0.40.66"


def _asset(ip: str, roles: list[str], claims: list[tuple[str, str, str]]) -> AssetRecord:
    return AssetRecord(
        ip=ip,
        vlan=-1,
        mac=None,
        first_seen=T0,
        last_seen=T0 + 10**9,
        packets_sent=10,
        packets_received=10,
        attributes=[("role", r, "yes", "behaviour", 0.8, None) for r in roles]
        + [("identity", a, v, s, 0.9, None) for a, v, s in claims],
    )


def _conv(client: str, server: str, port: int, protocol: str) -> ConversationRecord:
    return ConversationRecord(
        "tcp", client, server, port, -1, protocol, 1, 5, 5, 300, 300, T0, T0 + 10**9, {}
    )


SIEMENS_CPU = [("vendor", "Siemens", "s7_szl"), ("model", "6ES7 315-2EH14-0AB0", "s7_szl")]


def build(path: Path, *, advisories: bool = True, alerts: bool = True) -> Path:
    with Store(path) as st:
        cid = st.begin_capture("/synthetic/plant.pcap", "plant-risk", 1, "pcap")
        st.finish_capture(
            cid,
            status="complete",
            packets=100,
            first_ts=T0,
            last_ts=T0 + 10**9,
            error=None,
            stats={},
            assets=[
                _asset(CONVEYOR, ["plc"], [("vendor", "Conduit Lab", "modbus_43_14")]),
                _asset(PRESS, ["plc"], [*SIEMENS_CPU, ("firmware", "V3.2.6", "s7_szl")]),
                _asset(REMOTE_IO, ["io"], SIEMENS_CPU),  # firmware never stated
                _asset(HMI, ["hmi_scada"], []),
                _asset(HISTORIAN, ["scada_historian"], []),
                _asset(OFFICE, [], []),
                _asset(ATTACKER, [], []),
            ],
            conversations=[
                _conv(HMI, CONVEYOR, 502, "modbus"),
                _conv(HMI, PRESS, 102, "s7comm"),
                _conv(HISTORIAN, PRESS, 102, "s7comm"),
                _conv(ATTACKER, PRESS, 102, "s7comm"),
                _conv(OFFICE, HISTORIAN, 8080, "unknown"),
            ],
            problems=[],
            problem_counts={},
        )
        if advisories:
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
        if alerts:
            findings = [
                Finding("controller-stop", T0, T0, src_ip=ATTACKER, dst_ip=PRESS,
                        protocol="s7comm", severity=Severity.CRITICAL),
                Finding("process-write", T0, T0, src_ip=HMI, dst_ip=CONVEYOR,
                        protocol="modbus"),
                Finding("program-download", T0, T0, src_ip=HMI, dst_ip=REMOTE_IO,
                        protocol="modbus", severity=Severity.HIGH),
            ]  # fmt: skip
            store_findings(st, "plant-risk", "/synthetic/plant.pcap", findings, 3600)
            (ack,) = [a for a in list_alerts(st) if a["rule"] == "program-download"]
            set_status(st, ack["id"], "acknowledged", "tester")
    return path
