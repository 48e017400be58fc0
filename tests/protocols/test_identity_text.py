"""Identity text the field bends: S7 SZL lists as Snap7-based CPUs send them, and the
free-text Modbus FC 17 server id. Inputs are built byte by byte from the layouts in the
module docstrings; the values are what those bytes spell."""

from __future__ import annotations

from otconduit.inventory.identity import summarize
from otconduit.protocols.modbus.session import server_id_text
from otconduit.protocols.s7.szl import identity_attributes, parse_szl


def _text(s: str, n: int) -> bytes:
    return s.encode().ljust(n, b"\0")


def test_module_record_of_26_bytes_still_names_the_module() -> None:
    # SZL 0x0011, LENTHDR 26 (no second version word), one record: index 1, MlfB, BGTyp,
    # Ausbg1. A record of the standard 28 bytes was the only one read before.
    record = b"\x00\x01" + _text("6ES7 315-2EH14-0AB0", 20) + b"\x00\x00" + b"\x00\x03"
    body = b"\x00\x11\x00\x00" + (26).to_bytes(2, "big") + (1).to_bytes(2, "big") + record
    szl = parse_szl(body)
    assert not isinstance(szl, str)
    attrs = dict(identity_attributes(szl))
    assert attrs["model"] == "6ES7 315-2EH14-0AB0"
    assert attrs["hardware_version"] == "3"


def test_component_list_with_zero_header_and_indexes() -> None:
    texts = ["SNAP7-SERVER", "CPU 315-2 PN/DP", "", "Original Siemens Equipment",
             "S C-C2UR28922012", "CPU 315-2 PN/DP"]  # fmt: skip
    records = b"".join(b"\x00\x00" + _text(t, 32) for t in texts)
    body = b"\x00\x1c\x00\x00\x00\x00\x00\x00" + records + b"\x00\x00"
    szl = parse_szl(body)
    assert not isinstance(szl, str)
    attrs = dict(identity_attributes(szl))
    assert attrs["plc_name"] == "SNAP7-SERVER"
    assert attrs["module_name"] == "CPU 315-2 PN/DP"
    assert attrs["serial"] == "S C-C2UR28922012"
    assert attrs["product_name"] == "CPU 315-2 PN/DP"


def test_standard_component_list_keeps_its_own_indexes() -> None:
    records = b"\x00\x05" + _text("SN-1", 32) + b"\x00\x01" + _text("PLC-A", 32)
    body = b"\x00\x1c\x00\x00" + (34).to_bytes(2, "big") + (2).to_bytes(2, "big") + records
    szl = parse_szl(body)
    assert not isinstance(szl, str)
    assert dict(identity_attributes(szl)) == {"serial": "SN-1", "plc_name": "PLC-A"}


def test_server_id_text() -> None:
    assert server_id_text(b"Eastron-SDM630-Modbus-1.05\xff") == "Eastron-SDM630-Modbus-1.05"
    assert server_id_text(b"\x01\xffACME PLC 5\x00") == "ACME PLC 5"
    assert server_id_text(b"\x01\xff\x00\x10") is None  # a numeric id: no text to show


def _claim(attr: str, value: str, source: str) -> dict[str, object]:
    return {"attribute": attr, "value": value, "source": source, "confidence": 0.9}


def test_conflicting_claims_are_flagged() -> None:
    claims = [
        _claim("vendor", "Conduit Lab", "modbus_43_14"),
        _claim("product_code", "CL-PLC-1", "modbus_43_14"),
        _claim("revision", "2.4.1", "modbus_43_14"),
        _claim("slave_id_text", "Eastron-SDM630-Modbus-1.05", "modbus_17"),
        _claim("vendor", "Hilscher", "oui"),  # the NIC's maker: not a contradiction
    ]
    rec = {"identity": {c["attribute"]: c for c in claims[::-1]}, "identity_claims": claims}
    rec["identity"]["vendor"] = claims[0]
    summarize(rec)
    assert rec["model"] == "CL-PLC-1" and rec["firmware"] == "2.4.1"
    assert [c["attribute"] for c in rec["conflicts"]] == ["slave_id_text"]
    agreeing = [*claims[:3], _claim("slave_id_text", "Conduit Lab CL-PLC-1 v2", "modbus_17")]
    rec = {"identity": {c["attribute"]: c for c in agreeing}, "identity_claims": agreeing}
    summarize(rec)
    assert rec["conflicts"] == []
    two_vendors = [*claims[:3], _claim("vendor", "Schneider Electric", "cip_identity")]
    rec = {"identity": {c["attribute"]: c for c in two_vendors}, "identity_claims": two_vendors}
    summarize(rec)
    assert [c["attribute"] for c in rec["conflicts"]] == ["vendor"]
