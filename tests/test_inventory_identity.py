"""The inventory shows the device identities Zeek's ICSNPP parsers list for the same
captures (s7comm_known_devices.log, cip_identity.log): decoders, engine and store together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otconduit.analysis.run import analyze_file
from otconduit.store import Store, views
from tests.conftest import CORPUS, needs_shared
from tests.zeeklog import read_zeek_log

pytestmark = needs_shared


def _assets(tmp: Path, cap: Path) -> dict[str, dict[str, Any]]:
    with Store(tmp / "c.db") as store:
        analyze_file(store, cap)
        return {a["ip"]: a for a in views.assets(store)}


def _value(asset: dict[str, Any], attr: str) -> str | None:
    claim = asset["identity"].get(attr)
    return None if claim is None else claim["value"]


def test_s7_known_devices(tmp_path: Path) -> None:
    case = CORPUS / "icsnpp" / "s7comm" / "s7ident"
    assets = _assets(tmp_path, case / "s7ident.pcap")
    rows = read_zeek_log(case / "zeek-baseline" / "s7comm_known_devices.log")
    assert rows
    for row in rows:
        asset = assets[row["id.resp_h"] or ""]
        assert asset["vendor"] == "Siemens"
        assert _value(asset, "plc_name") == row["automation_system_name"]
        assert _value(asset, "product_name") == row["module_name"]
        assert _value(asset, "serial") == row["module_serial"]
        assert asset["identity"]["serial"]["source"] == "s7_szl"
        # One model column from every source: the module name Zeek lists.
        assert asset["model"] == row["module_name"]
        assert asset["conflicts"] == []


# This baseline has no #fields header; ICSNPP's cip_identity record, in order:
CIP_IDENTITY_FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "is_orig",
    "source_h",
    "source_p",
    "destination_h",
    "destination_p",
    "encapsulation_version",
    "device_ip",
    "socket_port",
    "vendor_id",
    "vendor_name",
    "device_type_id",
    "device_type_name",
    "product_code",
    "revision",
    "device_status",
    "serial_number",
    "product_name",
    "device_state",
]


def test_cip_identity(tmp_path: Path) -> None:
    case = CORPUS / "icsnpp" / "enip" / "enip_cip_example"
    assets = _assets(tmp_path, case / "enip_cip_example.pcap")
    lines = (case / "zeek-baseline" / "cip_identity.log").read_text().splitlines()
    rows = [
        dict(zip(CIP_IDENTITY_FIELDS, line.split("\t"), strict=True))
        for line in lines
        if line and not line.startswith("#")
    ]
    assert rows
    for row in rows:
        asset = assets[row["device_ip"] or ""]
        assert asset["vendor"] == row["vendor_name"]
        assert _value(asset, "device_type") == row["device_type_name"]
        assert _value(asset, "product_code") == row["product_code"]
        assert _value(asset, "revision") == row["revision"]
        assert _value(asset, "serial") == row["serial_number"]
        assert _value(asset, "product_name") == row["product_name"]
        assert asset["identity"]["vendor"]["source"] == "cip_identity"
        assert asset["model"] == row["product_name"]
        assert asset["firmware"] == row["revision"]


def test_opcua_server_descriptions(tmp_path: Path) -> None:
    """The application the server describes in its GetEndpoints answers (Zeek's
    opcua_binary_get_endpoints_description rows) is the one the inventory shows."""
    from tests.protocols.opcua_helpers import zeek_rows

    case = CORPUS / "icsnpp" / "opcua" / "open62541_client-server_mainloop"
    assets = _assets(tmp_path, case / f"{case.name}.pcap")
    rows = zeek_rows(case, "opcua_binary_get_endpoints_description")
    assert rows
    for row in rows:
        asset = assets[row["id.resp_h"] or ""]
        claims = {(c["attribute"], c["value"], c["source"]) for c in asset["identity_claims"]}
        for attribute, column in (
            ("application_uri", "application_uri"),
            ("product_uri", "product_uri"),
            ("application_name", "text"),
        ):
            assert (attribute, row[column], "opcua_endpoints") in claims, (attribute, row)
        assert "opcua/server" in asset["protocols"]


def test_opcua_build_info_is_model_and_firmware() -> None:
    """BuildInfo read from a server (opcua_buildinfo) fills the model, firmware and
    vendor columns; application descriptions alone do not make a model."""
    from otconduit.inventory.identity import summarize

    def claim(attribute: str, value: str, source: str) -> dict[str, Any]:
        return {"attribute": attribute, "value": value, "source": source, "confidence": 0.9}

    claims = [
        claim("application_name", "CasePacker", "opcua_session"),
        claim("product_name", "CL-PACK-6 case packer", "opcua_buildinfo"),
        claim("software_version", "2.4.1", "opcua_buildinfo"),
        claim("vendor", "Conduit Lab", "opcua_buildinfo"),
    ]
    rec: dict[str, Any] = {
        "identity": {c["attribute"]: c for c in claims},
        "identity_claims": claims,
    }
    summarize(rec)
    assert (rec["model"], rec["firmware"], rec["conflicts"]) == (
        "CL-PACK-6 case packer",
        "2.4.1",
        [],
    )
    bare: dict[str, Any] = {
        "identity": {"application_name": claims[0]},
        "identity_claims": claims[:1],
    }
    summarize(bare)
    assert bare["model"] is None and bare["firmware"] is None


@pytest.mark.parametrize("proto", ["dnp3", "s7comm", "enip", "opcua"])
def test_protocols_reach_the_inventory(proto: str, tmp_path: Path) -> None:
    caps = {
        "dnp3": CORPUS / "icsnpp" / "dnp3" / "dnp3_example" / "dnp3_example.pcap",
        "s7comm": CORPUS / "icsnpp" / "s7comm" / "snap7" / "snap7.pcap",
        "enip": CORPUS / "icsnpp" / "enip" / "enip_cip_example" / "enip_cip_example.pcap",
        "opcua": CORPUS
        / "icsnpp"
        / "opcua"
        / "open62541_client-server_mainloop"
        / "open62541_client-server_mainloop.pcap",
    }
    assets = _assets(tmp_path, caps[proto])
    label = "cip" if proto == "enip" else proto
    servers = [a for a in assets.values() if f"{label}/server" in a["protocols"]]
    clients = [a for a in assets.values() if f"{label}/client" in a["protocols"]]
    assert servers and clients
    assert all({"plc", "gateway"} & set(a["roles"]) for a in servers)
