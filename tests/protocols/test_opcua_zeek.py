"""Conformance with Zeek's CISA ICSNPP OPC UA binary parser on its own test captures.

Every row of the baselines' message log (opcua_binary.log: HEL, ACK, OPN, MSG, CLO with
their sizes, sequence numbers, request ids and handles, services, channel and policy) and
of the service logs (OpenSecureChannel, GetEndpoints with endpoints and user tokens,
CreateSession, ActivateSession, Browse, CreateSubscription, CreateMonitoredItems, Read,
Write, CloseSession, and the status codes) must match one of our operations, and we
report no message the baseline does not have.

Zeek prints Guids with their first three fields in wire byte order, tshark and the OPC UA
text form by value; :func:`zeek_guid` converts. Zeek pairs request and response by the
sequence header's RequestId, we by RequestHandle (falling back to the RequestId); both
give the same pairs here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otconduit.model import Operation
from otconduit.protocols.opcua.status import status_name

from .opcua_helpers import ICSNPP, Decoded, decode_capture, zeek_guid, zeek_node, zeek_rows

CASES = [
    ICSNPP / "open62541_client-server_mainloop",
    ICSNPP / "open62541_client-server_mainloop-no-handshake",
]

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not ICSNPP.is_dir(), reason="../shared/corpus/icsnpp/opcua is absent"),
]

MODES = {"0": "Invalid", "1": "None", "2": "Sign", "3": "SignAndEncrypt"}
TOKEN_TYPES = {"0": "anonymous", "1": "username", "2": "x509", "3": "issued"}
APP_TYPES = {"0": "Server", "1": "Client", "2": "ClientAndServer", "3": "DiscoveryServer"}
DIRECTIONS = {"FWD": "Forward", "INV": "Inverse", "BOTH": "Both"}
APP_KEYS = ("application_uri", "product_uri", "application_name", "application_type")


@pytest.fixture(scope="module", params=CASES, ids=lambda p: p.name)
def case(request: pytest.FixtureRequest) -> tuple[Path, dict[int, Decoded]]:
    path: Path = request.param
    decoded = decode_capture(path / f"{path.name}.pcap")
    return path, {d.endpoints.client_port: d for d in decoded}


def _int(v: str | None) -> int | None:
    return None if v is None else int(v)


def _ops(conns: dict[int, Decoded], port: str | None, function: str) -> list[Operation]:
    return [o for o in conns[int(port or 0)].operations if o.function == function]


def _by_request_id(conns: dict[int, Decoded], row: dict[str, str | None]) -> Operation:
    rid = int(row["request_id"] or -1)
    hits = [
        o
        for o in conns[int(row["id.orig_p"] or 0)].operations
        if o.detail.get("request_id") == rid and o.function != "Hello"
    ]
    assert len(hits) == 1, (row, hits)
    return hits[0]


def test_every_message_row_matches(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    rows = zeek_rows(path, "opcua_binary")
    assert rows
    for row in rows:
        t = row["msg_type"]
        assert row["is_final"] == "F"
        if t in ("HEL", "ACK"):
            (hello,) = _ops(conns, row["id.orig_p"], "Hello")
            part = hello.detail["hello" if t == "HEL" else "acknowledge"]
            assert part == {
                "protocol_version": _int(row["version"]),
                "receive_buffer_size": _int(row["rcv_buf_size"]),
                "send_buffer_size": _int(row["snd_buf_size"]),
                "max_message_size": _int(row["max_msg_size"]),
                "max_chunk_count": _int(row["max_chunk_cnt"]),
            }, row
            size = hello.detail["request_size" if t == "HEL" else "response_size"]
            assert size == _int(row["total_size"])
            if t == "HEL":
                assert hello.detail["endpoint_url"] == row["endpoint_url"]
                assert hello.status == "ok" and hello.response_frame is not None
            continue
        op = _by_request_id(conns, row)
        channels = [int(c) for c in (row["sec_channel_id"] or "").split(",")]
        if t == "OPN":
            assert op.function == "OpenSecureChannel"
            assert [op.detail["request_channel_id"], op.detail["secure_channel_id"]] == channels
            assert op.detail["security_policy_uri"] == row["sec_policy_uri"]
        else:
            assert [op.detail["secure_channel_id"]] == channels
        total = 0
        if row["req_identifier_str"] is not None:
            assert op.function + "Request" == row["req_identifier_str"], row
            assert op.function_code == _int(row["req_identifier"])
            assert op.transaction_id == _int(row["req_hdr_request_handle"])
            assert op.detail.get("timeout_hint", 0) == _int(row["req_hdr_timeout_hint"])
            assert op.detail["request_size"] == _int(row["req_msg_size"])
            assert op.detail["request_sequence_number"] == _int(row["req_seq_number"])
            total += op.detail["request_size"]
        else:
            assert op.detail.get("orphan_response") is True
        if row["res_identifier_str"] is not None:
            assert op.function + "Response" == row["res_identifier_str"], row
            handle = op.detail.get("response_handle", op.transaction_id)
            assert handle == _int(row["res_hdr_request_handle"])
            assert op.detail["response_size"] == _int(row["res_msg_size"])
            assert op.detail["response_sequence_number"] == _int(row["res_seq_number"])
            assert op.latency_ns is None or op.latency_ns >= 0
            total += op.detail["response_size"]
        else:
            assert op.function == "CloseSecureChannel" and op.response_frame is None
        assert total == _int(row["total_size"])


def test_no_message_beyond_the_baseline(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    rows = zeek_rows(path, "opcua_binary")
    theirs = Counter(
        (r["id.orig_p"], r["request_id"]) for r in rows if r["msg_type"] not in ("HEL", "ACK")
    )
    ours = Counter(
        (str(port), str(o.detail.get("request_id")))
        for port, d in conns.items()
        for o in d.operations
        if o.function != "Hello"
    )
    assert ours == theirs
    hellos = Counter(r["id.orig_p"] for r in rows if r["msg_type"] == "HEL")
    assert hellos == Counter(
        str(p) for p, d in conns.items() for o in d.operations if o.function == "Hello"
    )
    assert not [e for d in conns.values() for e in d.malformed]


def test_open_secure_channel_log(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    rows = zeek_rows(path, "opcua_binary_opensecure_channel")
    opened = [o for d in conns.values() for o in d.operations if o.function == "OpenSecureChannel"]
    assert len(opened) * 2 == len(rows)
    for row in rows:
        (op,) = _ops(conns, row["id.orig_p"], "OpenSecureChannel")
        if row["is_orig"] == "T":
            assert op.detail["client_protocol_version"] == _int(row["client_proto_ver"])
            assert op.detail["request_type"] == (
                "Issue" if row["sec_token_request_type"] == "0" else "Renew"
            )
            assert op.detail["security_mode"] == MODES[row["message_security_mode"] or ""]
            assert op.detail["requested_lifetime"] == _int(row["req_lifetime"])
        else:
            assert op.detail["server_protocol_version"] == _int(row["server_proto_ver"])
            assert op.detail["secure_channel_id"] == _int(row["sec_token_sec_channel_id"])
            assert op.detail["token_id"] == _int(row["sec_token_id"])
            assert op.detail["revised_lifetime"] == _int(row["sec_token_revised_time"])


def _endpoints(conns: dict[int, Decoded], port: str | None, function: str) -> list[dict[str, Any]]:
    return [e for o in _ops(conns, port, function) for e in o.detail["endpoints"]]


def _check_endpoints(
    conns: dict[int, Decoded], path: Path, function: str, log: str, token_log: str
) -> None:
    rows = zeek_rows(path, log)
    tokens = zeek_rows(path, token_log)
    for port in {r["id.orig_p"] for r in rows}:
        ours = _endpoints(conns, port, function)
        theirs = [r for r in rows if r["id.orig_p"] == port]
        assert len(ours) == len(theirs)
        servers = [s for o in _ops(conns, port, function) for s in o.detail.get("servers", [])]
        for ep, row in zip(ours, theirs, strict=True):
            assert ep["endpoint_url"] == row["endpoint_url"]
            assert ep["security_mode"] == MODES[row["message_security_mode"] or ""]
            assert ep["security_policy_uri"] == row["security_policy_uri"]
            assert ep["security_level"] == _int(row["security_level"])
            assert (ep["certificate_sha1"] is None) == (row["cert_size"] is None)
            assert {
                "application_uri": row["application_uri"],
                "product_uri": row["product_uri"],
                "application_name": row["text"],
                "application_type": APP_TYPES[row["application_type"] or ""],
            } in [{k: s[k] for k in APP_KEYS} for s in servers]
        token_types = [t for ep in ours for t in ep["user_token_types"]]
        assert token_types == [
            TOKEN_TYPES[r["user_token_type"] or ""] for r in tokens if r["id.orig_p"] == port
        ]


def test_get_endpoints_logs(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    for row in zeek_rows(path, "opcua_binary_get_endpoints"):
        if row["is_orig"] == "T":
            ops = _ops(conns, row["id.orig_p"], "GetEndpoints")
            assert row["endpoint_url"] in [o.detail.get("endpoint_url") for o in ops]
    _check_endpoints(
        conns,
        path,
        "GetEndpoints",
        "opcua_binary_get_endpoints_description",
        "opcua_binary_get_endpoints_user_token",
    )


def test_create_session_logs(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    for row in zeek_rows(path, "opcua_binary_create_session"):
        (op,) = _ops(conns, row["id.orig_p"], "CreateSession")
        d = op.detail
        if row["is_orig"] == "T":
            assert d["client"]["application_uri"] == row["application_uri"]
            assert d["client"]["product_uri"] == row["product_uri"]
            assert d["client"]["application_name"] == row["text"]
            assert d["client"]["application_type"] == APP_TYPES[row["application_type"] or ""]
            assert d["server_uri"] == row["server_uri"]
            assert d["endpoint_url"] == row["endpoint_url"]
            assert d["session_name"] == row["session_name"]
            assert (d["client_certificate_sha1"] is None) == (row["client_cert_size"] is None)
            assert d["requested_session_timeout"] == float(row["req_session_timeout"] or -1)
            assert d["max_response_message_size"] == _int(row["max_res_msg_size"])
        else:
            session = zeek_node(row, "session_id")
            assert session is not None and d["session_id"] == session.replace(
                session.split("g=")[-1], zeek_guid(row["session_id_guid"] or "")
            )
            assert d["revised_session_timeout"] == float(row["revised_session_timeout"] or -1)
            assert d["max_request_message_size"] == _int(row["max_req_msg_size"])
            assert (d["server_certificate_sha1"] is None) == (row["server_cert_size"] is None)
    _check_endpoints(
        conns,
        path,
        "CreateSession",
        "opcua_binary_create_session_endpoints",
        "opcua_binary_create_session_user_token",
    )


def test_session_ids_read_as_tshark_prints_them() -> None:
    """The Guid conversion above is right: the value form is what tshark prints."""
    path = CASES[0]
    conns = {d.endpoints.client_port: d for d in decode_capture(path / f"{path.name}.pcap")}
    (op,) = _ops(conns, "56322", "CreateSession")
    assert op.detail["session_id"] == "ns=1;g=9b63f7a0-fd18-0a8d-5235-f3cff51fd1dd"


def test_activate_session_log(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    for row in zeek_rows(path, "opcua_binary_activate_session"):
        (op,) = _ops(conns, row["id.orig_p"], "ActivateSession")
        if row["is_orig"] != "T":
            continue
        d = op.detail
        numeric = _int(row["ext_obj_type_id_numeric"])
        names = {321: "anonymous", 324: "username", 327: "x509", 940: "issued"}
        assert d["identity_token"] == names[numeric or 0]
        assert (
            row["ext_obj_type_id_str"]
            == {
                "anonymous": "AnonymousIdentityToken",
                "username": "UserNameIdentityToken",
                "x509": "X509IdentityToken",
                "issued": "IssuedIdentityToken",
            }[d["identity_token"]]
        )
        assert d["identity_policy_id"] == row["ext_obj_policy_id"]
        if d["identity_token"] == "username":
            assert d["user_name"] == row["ext_obj_user_name"]
            assert d["password_present"] == (row["ext_obj_password"] is not None)
            assert d["password_encrypted"] == (row["ext_obj_encryption_algorithom"] is not None)
            assert "password" not in d  # never kept


def test_browse_logs(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    browse = [r for r in zeek_rows(path, "opcua_binary_browse") if r["is_orig"] == "T"]
    descriptions = zeek_rows(path, "opcua_binary_browse_description")
    references = zeek_rows(path, "opcua_binary_browse_response_references")
    for port in {r["id.orig_p"] for r in browse}:
        ops = _ops(conns, port, "Browse")
        mine = [r for r in browse if r["id.orig_p"] == port]
        assert [o.detail["max_references_per_node"] for o in ops] == [
            _int(r["req_max_ref_nodes"]) for r in mine
        ]
        assert all(r["browse_service_type"] == "BrowseRequest" for r in mine)
        nodes = [n for o in ops for n in o.detail["nodes"]]
        theirs = [r for r in descriptions if r["id.orig_p"] == port]
        assert [(n["node"], n["direction"], n["reference_type"]) for n in nodes] == [
            (zeek_node(r, "node"), DIRECTIONS[r["browse_direction"] or ""], zeek_node(r, "ref"))
            for r in theirs
        ]
        names = [n for o in ops for n in o.detail["browse_names"]]
        assert names == [
            f"{r['name_idx']}:{r['name']}" if r["name_idx"] else r["name"]
            for r in references
            if r["id.orig_p"] == port
        ]
        assert sum(o.detail["reference_count"] for o in ops) == len(names)
        results = [
            r for r in zeek_rows(path, "opcua_binary_browse_result") if r["id.orig_p"] == port
        ]
        assert sum(len(o.detail["references"]) for o in ops) == len(results)
        assert sum(o.detail.get("continuation_points", 0) for o in ops) == sum(
            1 for r in results if r["continuation_point"] is not None
        )


def test_subscription_logs(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    for row in zeek_rows(path, "opcua_binary_create_subscription"):
        (op,) = _ops(conns, row["id.orig_p"], "CreateSubscription")
        d = op.detail
        if row["is_orig"] == "T":
            assert d["publishing_interval"] == float(row["requested_publishing_interval"] or -1)
            assert d["lifetime_count"] == _int(row["requested_lifetime_count"])
            assert d["max_keep_alive_count"] == _int(row["requested_max_keep_alive_count"])
            assert d["max_notifications_per_publish"] == _int(row["max_notifications_per_publish"])
            assert d["publishing_enabled"] == (row["publishing_enabled"] == "T")
            assert d["priority"] == _int(row["priority"])
        else:
            assert d["subscription_id"] == _int(row["subscription_id"])
            assert d["revised_publishing_interval"] == float(
                row["revised_publishing_interval"] or -1
            )
            assert d["revised_lifetime_count"] == _int(row["revised_lifetime_count"])
            assert d["revised_max_keep_alive_count"] == _int(row["revised_max_keep_alive_count"])
    for row in zeek_rows(path, "opcua_binary_create_monitored_items"):
        (op,) = _ops(conns, row["id.orig_p"], "CreateMonitoredItems")
        if row["is_orig"] == "T":
            assert op.detail["subscription_id"] == _int(row["subscription_id"])
            assert op.detail["timestamps_to_return"] == row["timestamps_to_return_str"]
    items = zeek_rows(path, "opcua_binary_create_monitored_items_create_item")
    for port in {r["id.orig_p"] for r in items}:
        (op,) = _ops(conns, port, "CreateMonitoredItems")
        requested = [r for r in items if r["id.orig_p"] == port and r["is_orig"] == "T"]
        assert [
            (i["node"], i["attribute"], i["mode"], i["sampling_interval"], i["queue_size"])
            for i in op.detail["items"]
        ] == [
            (
                zeek_node(r, "node"),
                r["attribute_id_str"],
                r["monitoring_mode"],
                float(r["sampling_interval"] or -1),
                _int(r["queue_size"]),
            )
            for r in requested
        ]
        created = [r for r in items if r["id.orig_p"] == port and r["is_orig"] == "F"]
        assert op.detail["monitored_item_ids"] == [_int(r["monitored_item_id"]) for r in created]


def test_read_write_close_logs(case: tuple[Path, dict[int, Decoded]]) -> None:
    path, conns = case
    for row in zeek_rows(path, "opcua_binary_read"):
        if row["is_orig"] == "T":
            (op,) = _ops(conns, row["id.orig_p"], "Read")
            assert op.detail["max_age"] == float(row["max_age"] or -1)
            assert op.detail["timestamps_to_return"] == row["timestamps_to_return_str"]
    for log, function in (
        ("opcua_binary_read_nodes_to_read", "Read"),
        ("opcua_binary_write", "Write"),
    ):
        rows = [r for r in zeek_rows(path, log) if r["is_orig"] == "T"]
        for port in {r["id.orig_p"] for r in rows}:
            nodes = [n for o in _ops(conns, port, function) for n in o.detail["nodes"]]
            assert [(n["node"], n["attribute"]) for n in nodes] == [
                (zeek_node(r, "node"), r["attribute_id_str"])
                for r in rows
                if r["id.orig_p"] == port
            ]
    results = zeek_rows(path, "opcua_binary_read_results")
    for port in {r["id.orig_p"] for r in results}:
        values = [v for o in _ops(conns, port, "Read") for v in o.detail["values"]]
        masks = [
            int(r["data_value_encoding_mask"] or "", 16) for r in results if r["id.orig_p"] == port
        ]
        assert [("value" in v, "status" in v) for v in values] == [
            (bool(m & 0x01), bool(m & 0x02)) for m in masks
        ]
    for row in zeek_rows(path, "opcua_binary_close_session"):
        (op,) = _ops(conns, row["id.orig_p"], "CloseSession")
        assert op.detail["delete_subscriptions"] == (row["del_subscriptions"] == "T")


def test_status_codes(case: tuple[Path, dict[int, Decoded]]) -> None:
    """Service results (ResponseHeader rows) per connection, and the bad per-operation
    results of Read, Write, Browse and CreateMonitoredItems."""
    path, conns = case
    rows = zeek_rows(path, "opcua_binary_status_code_detail")
    for port in {r["id.orig_p"] for r in rows}:
        mine = [r for r in rows if r["id.orig_p"] == port]
        theirs = Counter(
            int(r["status_code"] or "", 16) for r in mine if r["source_str"] == "ResponseHeader"
        )
        ops = [o for o in conns[int(port or 0)].operations if o.response_frame is not None]
        ours = Counter(
            o.exception_code if o.detail.get("service_result") else 0
            for o in ops
            if o.function != "Hello"
        )
        assert ours == theirs
        for function in ("Read", "Write", "Browse", "CreateMonitoredItems"):
            z = Counter(
                status_name(int(r["status_code"] or "", 16))
                for r in mine
                if r["source_str"] == function and int(r["status_code"] or "", 16) & 0x80000000
            )
            o = Counter(
                c
                for op in _ops(conns, port, function)
                for c in op.detail.get("result_codes", [])
                if c.startswith("Bad")
            )
            assert o == z, function
            for r in mine:
                if r["source_str"] == function:
                    assert r["sub_code_str"] == status_name(int(r["status_code"] or "", 16))
