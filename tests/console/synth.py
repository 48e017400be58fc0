"""Small synthetic stores for console tests, written with the store's own writers."""

from __future__ import annotations

from pathlib import Path

from otconduit.model import OpClass, Operation
from otconduit.store import Store
from otconduit.store.opchunks import from_operations
from otconduit.store.sqlite import AssetRecord, ConversationRecord

Attr = tuple[str, str, str, str, float, str | None]
T0 = 1_790_000_000_000_000_000  # ns


def _attrs(i: int, roles: list[str]) -> list[Attr]:
    out: list[Attr] = [("role", r, "yes", "behaviour", 0.7, None) for r in roles]
    out.append(("identity", "vendor", f"Vendor {i % 7}", "modbus_43_14", 0.9, None))
    return out


Conv = tuple[str, str, int] | tuple[str, str, int, str]


def write_plant(path: Path, hosts: list[tuple[str, list[str]]], convs: list[Conv],
                ops_per_conv: int = 0, sha: str = "synthetic") -> None:  # fmt: skip
    """Assets ``(ip, roles)``, conversations ``(client, server, port[, protocol])``
    (modbus unless said) and, per modbus conversation, ``ops_per_conv`` read operations
    one millisecond apart."""
    with Store(path) as st:
        cid = st.begin_capture(f"/synthetic/{sha}.pcap", sha, 1, "pcap")
        assets = [
            AssetRecord(
                ip,
                -1,
                None,
                T0,
                T0 + 10**9,
                10,
                10,
                _attrs(i, roles),
            )
            for i, (ip, roles) in enumerate(hosts)
        ]
        conversations = [
            ConversationRecord(
                "tcp",
                c,
                s,
                p,
                -1,
                proto[0] if proto else "modbus",
                1,
                5,
                5,
                300,
                300,
                T0,
                T0 + 10**9,
                {} if proto and proto[0] != "modbus" else {"READ_HOLDING_REGISTERS": ops_per_conv},
            )
            for c, s, p, *proto in convs
        ]
        chunks = []
        for c, s, p, *proto in convs:
            if proto and proto[0] != "modbus":
                continue
            conv_id = st.conversation_id("tcp", c, s, p, -1, "modbus")
            ops = [
                Operation(
                    ts_ns=T0 + k * 1_000_000,
                    protocol="modbus",
                    src_ip=c,
                    src_port=40000,
                    dst_ip=s,
                    dst_port=p,
                    operation=OpClass.READ,
                    function="READ_HOLDING_REGISTERS",
                    function_code=3,
                    unit=1,
                    address=k,
                    quantity=1,
                    request_frame=k * 2 + 1,
                    response_frame=k * 2 + 2,
                    transaction_id=k,
                )
                for k in range(ops_per_conv)
            ]
            if ops:
                chunks.append((conv_id, from_operations(ops)))
        st.insert_op_chunks(cid, chunks)
        st.finish_capture(
            cid,
            status="complete",
            packets=100,
            first_ts=T0,
            last_ts=T0 + 10**9,
            error=None,
            stats={},
            assets=assets,
            conversations=conversations,
            problems=[],
            problem_counts={},
        )
