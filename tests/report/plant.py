"""Stores for the report's tests, written with the store's own writers.

``write_lab_plant`` lays a small plant on the addresses of ``examples/plant-policy.yaml``
where the answer to every figure of the report is known by construction:

==================  =========  ==============================================  =============
asset               level      talks with                                      IDMZ KPI path
==================  =========  ==============================================  =============
conveyor-plc        1          HMI (read/write), rogue IT host (write)         direct
press-plc           1          HMI (read), engineering WS (program download)   contained
energy-meter-1      1          historian in the IDMZ (read only)               idmz-read-only
remote-io           1          gateway in the IDMZ (read only), conveyor-plc   idmz-read-only
packaging-machine   1          MES (OPC UA, not decoded); MES talks with IT    bypass
==================  =========  ==============================================  =============

so the KPI is 2 of 4 (the press's data never leaves OT). The historian's Modbus reads
cross from the IDMZ (SL-T 3) into cell-1 (SL-T 3) in clear: an SR 3.1 RE 1 gap; the
engineering workstation's program download over S7comm into cell-1 is an SR 1.2 gap.

``write_many`` fills a store the size of a site (10,000 assets) for the timing test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from otconduit.model import OpClass, Operation
from otconduit.store import Store
from otconduit.store.opchunks import from_operations
from otconduit.store.sqlite import AssetRecord, ConversationRecord

T0 = 1_790_000_000_000_000_000  # 2026-09-21T12:53:20Z, a Monday: outside any window
S = 1_000_000_000

Attr = tuple[str, str, str, str, float, str | None]
ROGUE = "127.0.40.66"
SCANNED = "127.0.10.99"  # probed by the rogue host, never answered: a scan target

HOSTS: dict[str, tuple[list[str], list[Attr]]] = {
    "127.0.10.10": (
        ["plc"],
        [
            ("identity", "vendor", "Conduit Lab", "modbus_43_14", 0.9, None),
            ("identity", "product_name", "CL-PLC-1", "modbus_43_14", 0.9, None),
            ("identity", "revision", "2.4.1", "modbus_43_14", 0.9, None),
        ],
    ),
    "127.0.10.20": (
        ["plc"],
        [
            ("identity", "vendor", "Siemens", "s7_szl", 0.9, None),
            ("identity", "order_number", "6ES7 315-2EH14-0AB0", "s7_szl", 0.9, None),
            ("identity", "firmware", "V3.2.6", "s7_szl", 0.9, None),
        ],
    ),
    "127.0.10.30": (["plc"], []),
    "127.0.10.40": (["io"], [("identity", "vendor", "Conduit Lab", "modbus_43_14", 0.9, None)]),
    "127.0.10.50": (["meter"], [("identity", "vendor", "Eastron", "modbus_43_14", 0.9, None)]),
    "127.0.20.10": (["hmi_scada"], []),
    "127.0.20.20": (["engineering_workstation"], []),
    "127.0.30.10": (["hmi_scada"], []),
    "127.0.35.10": (["scada_historian"], []),
    "127.0.35.20": (["scada_historian"], []),
    "127.0.40.50": ([], [("identity", "mac_vendor", "Dell Inc.", "oui", 0.5, None)]),
    ROGUE: ([], []),
}

# (client, server, port, protocol, [(class, function, code, count)]); "unknown" ones carry
# bytes (a real exchange the monitor did not decode).
Ops = list[tuple[OpClass, str, int, int]]
READ = (OpClass.READ, "READ_HOLDING_REGISTERS", 3)
CONVERSATIONS: list[tuple[str, str, int, str, Ops]] = [
    (
        "127.0.20.10",
        "127.0.10.10",
        502,
        "modbus",
        [(*READ, 40), (OpClass.WRITE, "WRITE_SINGLE_REGISTER", 6, 2)],
    ),
    ("127.0.20.10", "127.0.10.20", 102, "s7comm", [(OpClass.READ, "Read Variable", 4, 30)]),
    (
        "127.0.20.20",
        "127.0.10.20",
        102,
        "s7comm",
        [(OpClass.PROGRAM, "Request Download", 26, 1), (OpClass.PROGRAM, "Download Block", 27, 3)],
    ),
    ("127.0.35.10", "127.0.10.50", 502, "modbus", [(OpClass.READ, "READ_INPUT_REGISTERS", 4, 25)]),
    ("127.0.35.20", "127.0.10.40", 502, "modbus", [(*READ, 25)]),
    (
        "127.0.10.10",
        "127.0.10.40",
        502,
        "modbus",
        [(*READ, 30), (OpClass.WRITE, "WRITE_MULTIPLE_COILS", 15, 30)],
    ),
    ("127.0.30.10", "127.0.10.30", 4840, "unknown", []),
    ("127.0.40.50", "127.0.30.10", 8080, "unknown", []),
    ("127.0.40.50", "127.0.35.10", 8080, "unknown", []),
    (
        ROGUE,
        "127.0.10.10",
        502,
        "modbus",
        [(*READ, 2), (OpClass.WRITE, "WRITE_SINGLE_REGISTER", 6, 1)],
    ),
]


def _ops(client: str, server: str, port: int, proto: str, spec: Ops) -> list[Operation]:
    out: list[Operation] = []
    for cls, fn, code, n in spec:
        for _ in range(n):
            k = len(out)
            out.append(
                Operation(
                    ts_ns=T0 + k * 100_000_000,
                    protocol=proto,
                    src_ip=client,
                    src_port=40000,
                    dst_ip=server,
                    dst_port=port,
                    operation=cls,
                    function=fn,
                    function_code=code,
                    unit=1,
                    address=k,
                    quantity=1,
                    request_frame=2 * k + 1,
                    response_frame=2 * k + 2,
                    transaction_id=k,
                )
            )
    return out


def write_lab_plant(path: Path) -> None:
    """The plant of the module docstring, in one capture."""
    with Store(path) as st:
        cid = st.begin_capture("/synthetic/lab-plant.pcap", "lab-plant", 1, "pcap")
        assets = [
            AssetRecord(
                ip,
                -1,
                None,
                T0,
                T0 + 60 * S,
                10,
                10,
                [("role", r, "yes", "behaviour", 0.7, None) for r in roles] + attrs,
            )
            for ip, (roles, attrs) in HOSTS.items()
        ]
        assets.append(AssetRecord(SCANNED, -1, None, T0, T0, 0, 1, []))
        convs, chunks = [], []
        for client, server, port, proto, spec in CONVERSATIONS:
            ops = _ops(client, server, port, proto, spec)
            n = max(len(ops), 5)
            convs.append(
                ConversationRecord(
                    "tcp",
                    client,
                    server,
                    port,
                    -1,
                    proto,
                    1,
                    2 * n,
                    2 * n,
                    200 * n,
                    400 * n,
                    T0,
                    T0 + 60 * S,
                    {o.function: sum(1 for x in ops if x.function == o.function) for o in ops},
                )
            )
            if ops:
                conv_id = st.conversation_id("tcp", client, server, port, -1, proto)
                chunks.append((conv_id, from_operations(ops)))
        convs.append(
            ConversationRecord("tcp", ROGUE, SCANNED, 502, -1, "unknown", 1, 1, 1, 0, 0, T0, T0, {})
        )
        st.insert_op_chunks(cid, chunks)
        st.finish_capture(
            cid,
            status="complete",
            packets=1000,
            first_ts=T0,
            last_ts=T0 + 60 * S,
            error=None,
            stats={},
            assets=assets,
            conversations=convs,
            problems=[],
            problem_counts={},
        )


POLICY_NONE = "http://opcfoundation.org/UA/SecurityPolicy#None"
POLICY_SECURE = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"


def add_opcua(path: Path) -> None:
    """A second capture with decoded OPC UA (the decoder's OpenSecureChannel operations
    and their ``security_mode``): the HMI opens a channel to the packaging machine
    without message security, the MES a signed and encrypted one."""
    with Store(path) as st:
        cid = st.begin_capture("/synthetic/opcua.pcap", "opcua", 1, "pcap")
        convs, chunks = [], []
        for client, policy, mode in (
            ("127.0.20.10", POLICY_NONE, "None"),
            ("127.0.30.10", POLICY_SECURE, "SignAndEncrypt"),
        ):
            ops = [
                Operation(
                    ts_ns=T0 + k * S, protocol="opcua", src_ip=client, src_port=40001,
                    dst_ip="127.0.10.30", dst_port=4840, operation=cls, function=fn,
                    function_code=code, request_frame=2 * k + 1, response_frame=2 * k + 2,
                    detail=detail,
                )
                for k, (cls, fn, code, detail) in enumerate([
                    (OpClass.SESSION, "OpenSecureChannel", 446,
                     {"security_policy_uri": policy, "security_mode": mode}),
                    (OpClass.READ, "Read", 631, {}),
                ])
            ]  # fmt: skip
            chunks.append(
                (st.conversation_id("tcp", client, "127.0.10.30", 4840, -1, "opcua"),
                 from_operations(ops))
            )  # fmt: skip
            convs.append(ConversationRecord("tcp", client, "127.0.10.30", 4840, -1, "opcua", 1,
                                            4, 4, 800, 800, T0, T0 + 2 * S,
                                            {"OpenSecureChannel": 1, "Read": 1}))  # fmt: skip
        st.insert_op_chunks(cid, chunks)
        st.finish_capture(
            cid, status="complete", packets=16, first_ts=T0, last_ts=T0 + 2 * S, error=None,
            stats={}, assets=[], conversations=convs, problems=[], problem_counts={},
        )  # fmt: skip


def write_many(path: Path, n_assets: int, ops_per_conversation: int = 20) -> None:
    """``n_assets`` assets in 40 cells of a site (the bench policy of
    ``tests/report/test_scale.py``): a supervisory host per 50 assets polling the cells,
    one conversation per cell device, a few identities, alerts and violations stored."""
    from otconduit.detect.alerts import store_findings
    from otconduit.detect.findings import Evidence, Finding
    from otconduit.policy import parse_policy
    from otconduit.policy.check import Violation, store_violations

    clients = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(max(10, n_assets // 50))]
    servers = [
        f"10.{1 + (i // 250 // 40) % 2}.{(i // 250) % 40}.{i % 250 + 1}"
        for i in range(n_assets - len(clients))
    ]
    pairs = [(clients[i % len(clients)], s) for i, s in enumerate(servers)]
    vendors = ("Siemens", "Rockwell Automation", "Schneider Electric", "ABB", "WAGO")
    with Store(path) as st:
        cid = st.begin_capture("/synthetic/site.pcap", "site", 1, "pcap")
        chunks, convs = [], []
        for c, s in pairs:
            ops = _ops(c, s, 502, "modbus", [(*READ, ops_per_conversation)])
            chunks.append(
                (st.conversation_id("tcp", c, s, 502, -1, "modbus"), from_operations(ops))
            )
            if len(chunks) >= 2000:
                st.insert_op_chunks(cid, chunks)
                chunks = []
            convs.append(
                ConversationRecord(
                    "tcp",
                    c,
                    s,
                    502,
                    -1,
                    "modbus",
                    1,
                    40,
                    40,
                    480,
                    480,
                    T0,
                    T0 + 3600 * S,
                    {READ[1]: ops_per_conversation},
                )
            )
        st.insert_op_chunks(cid, chunks)
        assets = []
        for i, ip in enumerate(clients + servers):
            server = i >= len(clients)
            attrs: list[Attr] = [
                ("role", "plc" if server else "hmi_scada", "yes", "behaviour", 0.7, None),
                ("protocol", "modbus", "server" if server else "client", "behaviour", 0.9, None),
            ]
            if i % 3:
                attrs.append(("identity", "vendor", vendors[i % 5], "modbus_43_14", 0.9, None))
            if i % 4 == 0:
                attrs.append(("identity", "revision", f"1.{i % 9}", "modbus_43_14", 0.9, None))
            assets.append(AssetRecord(ip, -1, None, T0, T0 + 3600 * S, 100, 100, attrs))
        st.finish_capture(
            cid,
            status="complete",
            packets=40 * len(pairs),
            first_ts=T0,
            last_ts=T0 + 3600 * S,
            error=None,
            stats={},
            assets=assets,
            conversations=convs,
            problems=[],
            problem_counts={},
        )
        rules = ("process-write", "policy-breach", "controller-stop", "address-sweep")
        findings = [
            Finding(
                rule=rules[i % 4],
                first_ts=T0 + i * S,
                last_ts=T0 + i * S + S,
                src_ip=pairs[i % len(pairs)][0],
                dst_ip=pairs[i % len(pairs)][1],
                protocol="modbus",
                operation="WRITE_SINGLE_REGISTER",
                evidence=[Evidence([2 * i + 1], T0 + i * S, {"note": "synthetic"})],
            )
            for i in range(2000)
        ]
        store_findings(st, "site", "/synthetic/site.pcap", findings, 600.0)
        policy = parse_policy(SITE_POLICY)
        store_violations(
            st,
            policy,
            [
                Violation(
                    "no-conduit",
                    c,
                    s,
                    "supervisory",
                    None,
                    "modbus",
                    None,
                    None,
                    "no conduit admits it",
                    10,
                    "2026-09-21T13:00:00Z",
                    "2026-09-21T14:00:00Z",
                )
                for c, s in pairs[::4]
            ],
        )


SITE_POLICY = (
    """
version: 1
plant: site
timezone: UTC
default: deny
zones:
  - {name: enterprise, level: 4, members: [10.40.0.0/16], sl_t: 1, owner: Corporate IT}
  - {name: idmz, level: 3.5, members: [10.35.0.0/16], sl_t: 3, owner: OT security}
  - {name: supervisory, level: 2, members: [10.20.0.0/16], sl_t: 2, owner: OT}
"""
    + "".join(
        f"  - {{name: cell-{i}, level: 1, members: [10.1.{i}.0/24, 10.2.{i}.0/24], sl_t: 3}}\n"
        for i in range(40)
    )
    + """
conduits:
  - name: scada
    from: supervisory
    to: cell-0
    protocols: {modbus: {ports: [502], operations: [read]}}
"""
)


def names(rows: Sequence[dict[str, object]], key: str = "ip") -> list[object]:
    return [r[key] for r in rows]
