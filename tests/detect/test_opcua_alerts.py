"""OPC UA through the whole monitor: a capture of asyncua-encoded sessions is analysed,
checked against a policy and run through detection.

What it must show: writes of different values are one alert; a Call, node management and
a history deletion raise their rules with ATT&CK techniques; a client walking the address
space raises a browse sweep (and an HMI reading its tags does not); a session with
SecurityPolicy None and an anonymous user between zones is an ``insecure-opcua-crossing``
violation, informational where a conduit admits it and high from IT.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("asyncua")

from asyncua import ua
from asyncua.ua.ua_binary import uatcp_to_binary

from otconduit.analysis.run import analyze_file
from otconduit.detect.alerts import list_alerts
from otconduit.detect.config import DetectConfig, Thresholds
from otconduit.detect.run import detect_capture, policy_findings
from otconduit.policy import parse_policy
from otconduit.policy.check import evaluate_and_store
from otconduit.store import Store, views
from tests import bulkcap
from tests.protocols.opcua_helpers import Peer, request, response

HMI, ENG, IT, SERVER = "10.20.0.10", "10.20.0.20", "10.40.0.66", "10.10.0.30"
POLICY = f"""
version: 1
plant: ua-test
zones:
  - {{name: cell, level: 1, members: [10.10.0.0/24], sl_t: 3}}
  - {{name: supervisory, level: 2, members: [10.20.0.0/24], sl_t: 2}}
  - {{name: enterprise, level: 4, members: [10.40.0.0/24], sl_t: 1}}
conduits:
  - name: hmi-ua
    from: supervisory
    to: cell
    from_hosts: [{HMI}, {ENG}]
    protocols:
      opcua: {{ports: [4840], operations: [read, write]}}
"""
SPEED = ua.NodeId("Machine.Speed", 2)


def _session(token: Any) -> tuple[Peer, Peer, list[tuple[int, bytes]]]:
    """Hello, OpenSecureChannel (policy None), CreateSession, ActivateSession."""
    client, server = Peer(), Peer()
    opn = ua.OpenSecureChannelRequest()
    opn.Parameters.SecurityMode = ua.MessageSecurityMode.None_
    opened = ua.OpenSecureChannelResponse()
    opened.Parameters.SecurityToken.ChannelId = 7
    hello = ua.Hello(EndpointUrl=f"opc.tcp://{SERVER}:4840")
    out = [
        (0, uatcp_to_binary(ua.MessageType.Hello, hello)),
        (1, uatcp_to_binary(ua.MessageType.Acknowledge, ua.Acknowledge())),
        (0, client.frame(opn, 1, ua.MessageType.SecureOpen)),
        (1, server.frame(opened, 1, ua.MessageType.SecureOpen)),
        (0, client.frame(request(ua.CreateSessionRequest, 1), 2)),
        (1, server.frame(response(ua.CreateSessionResponse, 1), 2)),
        (0, client.frame(request(ua.ActivateSessionRequest, 2, UserIdentityToken=token), 3)),
        (1, server.frame(response(ua.ActivateSessionResponse, 2), 3)),
    ]
    return client, server, out


def _exchange(
    client: Peer, server: Peer, pairs: list[tuple[Any, Any]], first: int = 10
) -> list[tuple[int, bytes]]:
    out = []
    for k, (req, resp) in enumerate(pairs, first):
        req.RequestHeader.RequestHandle = resp.ResponseHeader.RequestHandle = k
        out += [(0, client.frame(req, k)), (1, server.frame(resp, k))]
    return out


def _write(value: int) -> tuple[Any, Any]:
    dv = ua.DataValue(ua.Variant(value, ua.VariantType.Int32))
    req = request(
        ua.WriteRequest, 0, NodesToWrite=[ua.WriteValue(NodeId=SPEED, AttributeId=13, Value=dv)]
    )
    return req, response(ua.WriteResponse, 0, Results=[ua.StatusCode(0)])


def _browse(node: int) -> tuple[Any, Any]:
    req = request(
        ua.BrowseRequest, 0, NodesToBrowse=[ua.BrowseDescription(NodeId=ua.NodeId(node, 2))]
    )
    return req, response(ua.BrowseResponse, 0, Results=[ua.BrowseResult()])


def _read() -> tuple[Any, Any]:
    req = request(ua.ReadRequest, 0, NodesToRead=[ua.ReadValueId(NodeId=SPEED, AttributeId=13)])
    return req, response(ua.ReadResponse, 0, Results=[ua.DataValue(ua.Variant(5))])


def _conn(client_ip: str, port: int, messages: list[tuple[int, bytes]]) -> bulkcap.Conn:
    return bulkcap.Conn(4840, messages, client=client_ip, server=SERVER, client_port=port)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("ua")
    anonymous = ua.AnonymousIdentityToken(PolicyId="anonymous")
    # The HMI: reads its tag, writes the speed five times with five values.
    c, s, hmi = _session(anonymous)
    hmi += _exchange(c, s, [_read() for _ in range(20)] + [_write(v) for v in range(5)])
    # The engineering station: signs its channel's user in, walks the address space.
    user = ua.UserNameIdentityToken(PolicyId="u", UserName="eng", Password=b"pw")
    c, s, eng = _session(user)
    eng += _exchange(c, s, [_browse(n) for n in range(150)])
    # The IT intruder: an anonymous session, then a Call, node deletion, history deletion.
    c, s, it = _session(anonymous)
    call = request(
        ua.CallRequest,
        0,
        MethodsToCall=[
            ua.CallMethodRequest(ObjectId=ua.NodeId("Line", 2), MethodId=ua.NodeId("Line.Stop", 2))
        ],
    )
    delete = request(ua.DeleteNodesRequest, 0, NodesToDelete=[ua.DeleteNodesItem(NodeId=SPEED)])
    history = request(
        ua.HistoryUpdateRequest, 0, HistoryUpdateDetails=[ua.DeleteAtTimeDetails(NodeId=SPEED)]
    )
    it += _exchange(
        c,
        s,
        [
            _write(999),
            (call, response(ua.CallResponse, 0, Results=[ua.CallMethodResult()])),
            (delete, response(ua.DeleteNodesResponse, 0, Results=[ua.StatusCode(0)])),
            (history, response(ua.HistoryUpdateResponse, 0, Results=[ua.HistoryUpdateResult()])),
        ],
    )
    conns = [_conn(HMI, 41000, hmi), _conn(ENG, 42000, eng), _conn(IT, 43000, it)]
    pcap = tmp / "ua.pcap"
    bulkcap.write(pcap, conns, [k for k, c in enumerate(conns) for _ in c.packets])
    out: dict[str, Any] = {}
    for name, config in (
        ("default", DetectConfig()),
        ("tuned", DetectConfig(thresholds=Thresholds(browse_sweep_min_nodes=200))),
    ):
        with Store(tmp / f"{name}.db") as store:
            res = analyze_file(store, pcap)
            assert res.capture_id is not None
            policy = parse_policy(POLICY)
            violations = evaluate_and_store(store, policy)
            detect_capture(store, res.capture_id, config, policy)
            out[name] = {
                "alerts": list_alerts(store),
                "breaches": policy_findings(store, res.capture_id, policy),
                "violations": violations,
                "assets": {a["ip"]: a for a in views.assets(store)},
            }
    return out


def _alerts(monitored: dict[str, Any], rule: str, src: str) -> list[dict[str, Any]]:
    return [a for a in monitored["default"]["alerts"] if a["rule"] == rule and a["src_ip"] == src]


def test_writes_of_many_values_are_one_alert(monitored: dict[str, Any]) -> None:
    (hmi,) = _alerts(monitored, "process-write", HMI)
    assert hmi["count"] == 5 and hmi["severity"] == "info"  # the conduit allows writes
    assert "ns=2;s=Machine.Speed" in hmi["summary"]
    (it,) = _alerts(monitored, "process-write", IT)
    assert it["severity"] == "critical"  # a write from IT


def test_commands_from_it_are_critical(monitored: dict[str, Any]) -> None:
    for rule, technique in (
        ("method-call", "T0871"),
        ("program-modify", "T0889"),
        ("history-modify", "T0872"),
    ):
        (alert,) = _alerts(monitored, rule, IT)
        assert alert["severity"] == "critical" and technique in alert["techniques"], alert
        assert alert["evidence"] and alert["evidence"][0]["frames"]
    (call,) = _alerts(monitored, "method-call", IT)
    assert "ns=2;s=Line.Stop on ns=2;s=Line" in call["summary"]


def test_browse_sweep(monitored: dict[str, Any]) -> None:
    (sweep,) = _alerts(monitored, "browse-sweep", ENG)
    assert sweep["count"] == 150 and sweep["dst_ip"] == SERVER
    assert set(sweep["techniques"]) == {"T0861", "T0888"}
    assert sweep["evidence"][0]["frames"]
    assert not _alerts(monitored, "browse-sweep", HMI)
    tuned = [a for a in monitored["tuned"]["alerts"] if a["rule"] == "browse-sweep"]
    assert not tuned  # 150 nodes is under a site's threshold of 200


def test_insecure_sessions_across_zones(monitored: dict[str, Any]) -> None:
    rows = {
        v.src_ip: v
        for v in monitored["default"]["violations"]
        if v.rule == "insecure-opcua-crossing"
    }
    assert set(rows) == {HMI, ENG, IT}
    assert rows[HMI].conduit == "hmi-ua" and rows[IT].conduit is None
    assert "SecurityPolicy None" in rows[HMI].reason and "anonymous user" in rows[HMI].reason
    assert "password of user 'eng' unencrypted" in rows[ENG].reason
    assert rows[IT].src_zone == "enterprise" and rows[IT].dst_zone == "cell"
    # As findings (an alert joins the breaches of one source and target: from IT this
    # one shares its alert with bypasses-idmz and no-conduit).
    breaches = {
        f.src_ip: f.severity.label
        for f in monitored["default"]["breaches"]
        if f.context["violation"] == "insecure-opcua-crossing"
    }
    assert breaches == {HMI: "info", ENG: "info", IT: "high"}
    hmi = [
        a
        for a in monitored["default"]["alerts"]
        if a["rule"] == "policy-breach" and a["src_ip"] == HMI
    ]
    assert [a["severity"] for a in hmi] == ["info"]


def test_identity_reaches_the_asset(monitored: dict[str, Any]) -> None:
    server = monitored["default"]["assets"][SERVER]
    assert "opcua/server" in server["protocols"]
    assert "opcua/client" in monitored["default"]["assets"][HMI]["protocols"]
