"""Record ``tests/data/enip_cpppo.pcap``: a real EtherNet/IP exchange on loopback.

Server: cpppo's EtherNet/IP server (``python -m cpppo.server.enip``, a simulated Logix
controller with tag ``SCADA=INT[10]``) on 127.0.7.10:44818. Client: cpppo's client, plus
one hand-built UnRegisterSession (cpppo's client has none). The exchange:

1. ListIdentity over UDP;
2. RegisterSession (TCP);
3. Write Tag ``SCADA[1] = 42`` (INT), then Read Tag ``SCADA[1]`` (cpppo sends the
   Fragmented forms, 0x53 and 0x52, inside Unconnected Send);
4. Get Attributes All on the Identity object (class 1, instance 1);
5. UnRegisterSession.

What was sent and what came back goes to ``tests/data/enip_cpppo.json``. Needs root
(packet capture) and ``pip install cpppo``; run from the project root::

    .venv/bin/python scripts/record_enip_fixture.py
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cpppo.server import enip  # type: ignore[import-untyped]
from cpppo.server.enip import client  # type: ignore[import-untyped]

from otconduit.lab.sniffer import LoopbackCapture

HOST = "127.0.7.10"
PORT = 44818
TAG = "SCADA"
INDEX = 1
VALUE = 42
ROOT = Path(__file__).resolve().parents[1]
PCAP = ROOT / "tests" / "data" / "enip_cpppo.pcap"
MANIFEST = ROOT / "tests" / "data" / "enip_cpppo.json"
TIMEOUT = 5.0


def wait_listening(deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, PORT)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("cpppo server did not start listening")


def reply(conn: Any) -> Any:
    response, _ = client.await_response(conn, timeout=TIMEOUT)
    if not response:
        raise RuntimeError("no reply from the cpppo server")
    return response


def exchange() -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    with client.client(host=HOST, port=PORT, udp=True) as udp:
        udp.list_identity(timeout=TIMEOUT)
        ident = reply(udp)["enip.CIP.list_identity.CPF.item"][0].identity_object
    steps.append({"command": "ListIdentity", "transport": "udp"})
    identity = {
        "vendor_id": int(ident.vendor_id),
        "device_type": int(ident.device_type),
        "product_code": int(ident.product_code),
        # product_revision is the UINT as sent: major in the low byte, minor in the high
        "revision": f"{int(ident.product_revision) & 0xFF}.{int(ident.product_revision) >> 8}",
        "serial_number": int(ident.serial_number),
        "product_name": str(ident.product_name),
    }
    with client.connector(host=HOST, port=PORT, timeout=TIMEOUT) as conn:
        session = int(conn.session)
        steps.append({"command": "RegisterSession", "transport": "tcp", "session": session})

        conn.write(f"{TAG}[{INDEX}]", data=[VALUE], elements=1, tag_type=enip.INT.tag_type)
        status = int(reply(conn)["enip.CIP.send_data.CPF.item"][1].unconnected_send.request.status)
        steps.append(
            {"service": "Write Tag Fragmented", "code": 0x53, "tag": TAG, "index": INDEX,
             "type": "INT", "values": [VALUE], "status": status}
        )  # fmt: skip

        conn.read(f"{TAG}[{INDEX}]", elements=1)
        req = reply(conn)["enip.CIP.send_data.CPF.item"][1].unconnected_send.request
        steps.append(
            {"service": "Read Tag Fragmented", "code": 0x52, "tag": TAG, "index": INDEX,
             "elements": 1, "status": int(req.status),
             "values": [int(v) for v in req.read_frag.data]}
        )  # fmt: skip

        conn.get_attributes_all("@1/1")
        req = reply(conn)["enip.CIP.send_data.CPF.item"][1].unconnected_send.request
        steps.append(
            {"service": "Get Attributes All", "code": 0x01, "class_id": 1, "instance_id": 1,
             "status": int(req.status)}
        )  # fmt: skip

        # UnRegisterSession (Vol 2 §2-4.5): header only, no reply; the server closes.
        conn.conn.sendall(struct.pack("<HHII8sI", 0x66, 0, session, 0, bytes(8), 0))
        steps.append({"command": "UnRegisterSession", "transport": "tcp", "session": session})
        time.sleep(0.3)
    return {"server": f"{HOST}:{PORT}", "identity": identity, "steps": steps}


def main() -> int:
    import cpppo  # type: ignore[import-untyped]

    server = subprocess.Popen(
        [sys.executable, "-m", "cpppo.server.enip", "-a", f"{HOST}:{PORT}", f"{TAG}=INT[10]"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(time.monotonic() + 15)
        with LoopbackCapture(PCAP, addrs={HOST}, ports={PORT}) as cap:
            manifest = exchange()
        manifest["recorded_with"] = {"cpppo": cpppo.__version__, "backend": cap.backend}
    finally:
        server.terminate()
        server.wait(timeout=10)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{PCAP}: {cap.packets or '?'} packets; {MANIFEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
