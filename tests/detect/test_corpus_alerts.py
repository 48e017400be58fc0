"""Real captures whose names say a dangerous operation raise the matching alert and
technique; plain polling raises nothing above low."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.detect.alerts import list_alerts
from otconduit.detect.run import detect_capture
from otconduit.store import Store
from tests.conftest import CORPUS, needs_shared

pytestmark = needs_shared
ITI = CORPUS / "iti"

DANGEROUS = [
    ("s7/snap7_s300_stop.pcapng", "controller-stop", "T0881"),
    ("s7/step7_s300_download.pcapng", "program-download", "T0843"),
    ("s7/snap7_s300_everything.pcapng", "program-upload", "T0845"),
    ("s7/snap7_s300_everything.pcapng", "controller-stop", "T0858"),
    ("s7/s7comm_reading_setting_plc_time.pcap", "time-set", "T0836"),
    ("s7/s7comm_varservice_libnodavedemo.pcap", "process-write", "T0855"),
    ("EthernetIP/cip_stop_plc.pcap", "controller-stop", "T0881"),
    ("openics/EIP-SoftwareUpload.pcap", "program-upload", "T0845"),
    ("dnp3/cold_restart_and_response.pcap", "device-restart", "T0816"),
    ("dnp3/select_operate_and_responses.pcap", "direct-operate", "T0855"),
    ("dnp3/write_binary_output.pcap", "process-write", "T0855"),
    ("dnp3/file_read.pcap", "file-operation", "T0845"),
    ("dnp3/dnp3_test_data_part1.pcap", "controller-stop", "T0881"),
    ("dnp3/dnp3_test_data_part1.pcap", "unsolicited-disabled", "T0815"),
    ("dnp3/dnp3_test_data_part1.pcap", "device-restart", "T0816"),
    ("ModbusTCP/modbus_test_data_part1.pcap", "listen-only", "T0814"),
    ("ModbusTCP/modbus_test_data_part1.pcap", "comm-restart", "T0816"),
    ("ModbusTCP/modbus_test_data_part2.pcap", "function-code-scan", "T0888"),
    ("ModbusTCP/modbus_test_data_part2.pcap", "firmware-change", "T0857"),
    ("ModbusTCP/modbus_test_data_part1.pcap", "non-protocol-on-ics-port", "T0885"),
    ("dnp3/direct_operate_crob_malform_but_good_crc.pcap", "malformed-pdu", "T0866"),
]
BENIGN = [
    "dnp3/read_and_response.pcap",
    "dnp3/enable_unsolicited_and_response.pcap",
    "dnp3/unsolcited_response_and_confirm.pcap",
    "dnp3/lan_time_sync.pcap",
    "s7/s7comm_varservice_libnodavedemo.pcap",
    "s7/s7comm_reading_plc_status.pcap",
    "s7/s7-1200-hmi.pcap",
    "EthernetIP/enip_test.pcap",
    "EthernetIP/EthernetIP-CIP.pcap",
    "openics/EIP-ViewDeviceStatus.pcap",
    "ModbusTCP/ModbusTCP.pcap",
]


def _alerts(tmp_path: Path, name: str) -> list[dict[str, object]]:
    with Store(tmp_path / "a.db") as store:
        res = analyze_file(store, ITI / name)
        assert res.capture_id is not None
        detect_capture(store, res.capture_id)
        return list_alerts(store)


@pytest.mark.parametrize(("name", "rule", "technique"), DANGEROUS)
def test_dangerous_capture_raises_its_alert(
    tmp_path: Path, name: str, rule: str, technique: str
) -> None:
    alerts = _alerts(tmp_path, name)
    hits = [a for a in alerts if a["rule"] == rule]
    assert hits, [(a["rule"], a["summary"]) for a in alerts]
    assert all(technique in a["techniques"] for a in hits)  # type: ignore[operator]
    for a in hits:
        ev = a["evidence"]
        assert ev and ev[0]["frames"], a  # type: ignore[index]


@pytest.mark.parametrize("name", BENIGN)
def test_plain_traffic_raises_nothing_above_low(tmp_path: Path, name: str) -> None:
    alerts = _alerts(tmp_path, name)
    loud = [
        (a["rule"], a["severity"], a["summary"])
        for a in alerts
        if a["severity"] not in ("info", "low")
    ]
    assert not loud, loud


def _repeated(tmp_path: Path, name: str) -> Path:
    """The capture three times over, client ports moved (as ``make bench`` repeats it):
    the bulk path then writes most operations from templates."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "bench" / "repeat_capture.py"
    spec = importlib.util.spec_from_file_location("repeat_capture", path)
    assert spec and spec.loader
    rc = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = rc
    spec.loader.exec_module(rc)
    packets, _ = rc.load(ITI / name)
    out = tmp_path / "rep.pcap"
    rc.repeat(ITI / name, out, 3 * len(packets))
    return out


@pytest.mark.parametrize("name", sorted({d[0] for d in DANGEROUS}))
def test_bulk_and_per_packet_raise_the_same_alerts(tmp_path: Path, name: str) -> None:
    """Detection reads what the bulk path stored (details kept as templates, looked at
    per template) exactly as what the per-packet path stored."""
    cap = _repeated(tmp_path, name)
    found = []
    for bulk in (False, True):
        with Store(tmp_path / f"{bulk}.db") as store:
            res = analyze_file(store, cap, bulk=bulk)
            assert res.capture_id is not None
            detect_capture(store, res.capture_id)
            found.append(
                sorted(
                    (a["rule"], a["severity"], a["count"], a["src_ip"], a["dst_ip"], a["summary"])
                    for a in list_alerts(store)
                )
            )
    assert found[0] and found[0] == found[1]


# OPC UA (decoded since the protocol was registered): open62541's example client adds a
# node, writes a variable and calls a method the server refuses; the other captures only
# connect, read, browse or ask for endpoints.
OPCUA_MAINLOOP = "icsnpp/opcua/open62541_client-server_mainloop/" + (
    "open62541_client-server_mainloop.pcap"
)
OPCUA_DANGEROUS = [
    (OPCUA_MAINLOOP, "program-modify", "T0889"),
    (OPCUA_MAINLOOP, "process-write", "T0855"),
    (OPCUA_MAINLOOP, "method-call", "T0871"),
]
OPCUA_BENIGN = [
    "opcua-extra/python_opcua-client-server_minimal.pcap",
    "opcua-extra/open62541_client-server-getEndpoints.pcap",
    "opcua-extra/open62541_client-server_encrypted.pcap",
]


@pytest.mark.parametrize(("name", "rule", "technique"), OPCUA_DANGEROUS)
def test_opcua_capture_raises_its_alert(
    tmp_path: Path, name: str, rule: str, technique: str
) -> None:
    alerts = _alerts(tmp_path, str(Path("..") / name))
    hits = [a for a in alerts if a["rule"] == rule and a["protocol"] == "opcua"]
    assert hits, [(a["rule"], a["summary"]) for a in alerts]
    assert all(technique in a["techniques"] for a in hits)  # type: ignore[operator]
    if rule == "method-call":  # the server refused it: attempted, at most medium
        assert all(a["severity"] == "medium" for a in hits), hits


@pytest.mark.parametrize("name", OPCUA_BENIGN)
def test_opcua_sessions_raise_nothing(tmp_path: Path, name: str) -> None:
    assert _alerts(tmp_path, str(Path("..") / name)) == []
