"""OPC UA dangerous operations, session weaknesses and address-space walks.

The rule examples of :mod:`otconduit.protocols.opcua.danger` are hand-built bytes: the
asyncua stack (a peer implementation of OPC 10000-6) decodes each of them here, so they
are real OPC UA. The rules are then checked on requests asyncua encodes itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("asyncua")

from asyncua import ua

from otconduit.detect.rules import RULES
from otconduit.model import Operation
from otconduit.protocols.danger import Hit
from otconduit.protocols.opcua import SPEC
from otconduit.protocols.opcua import danger as D

from .opcua_helpers import C2S, ENDPOINTS, S2C, Peer, Recorded, decode, peer_messages, request


def view(op: Operation) -> dict[str, Any]:
    """``op`` as detection reads it from the store (details through JSON)."""
    return {
        "protocol": op.protocol,
        "operation": str(op.operation),
        "function": op.function,
        "function_code": op.function_code,
        "quantity": op.quantity,
        "request_frame": op.request_frame,
        "detail": json.loads(json.dumps(op.detail, default=str)),
    }


def sent(*requests: Any) -> list[dict[str, Any]]:
    """Requests framed by asyncua, decoded, as detection sees them."""
    peer = Peer()
    chunks = [
        (C2S, peer.frame(req, rid), 0, rid, rid * 1000) for rid, req in enumerate(requests, 2)
    ]
    decoded = decode(ENDPOINTS, [(d, b, len(b), f, t) for d, b, _, f, t in chunks])
    return [view(op) for op in decoded.operations]


def hits(req: Any) -> list[Hit]:
    (op,) = sent(req)
    return D.classify(op)


# --- the examples are OPC UA --------------------------------------------------------------------

EXPECTED = {
    id(D.WRITE_VALUE): "WriteRequest",
    id(D.WRITE_ACCESS_LEVEL): "WriteRequest",
    id(D.CALL): "CallRequest",
    id(D.ADD_NODES): "AddNodesRequest",
    id(D.DELETE_NODES): "DeleteNodesRequest",
    id(D.ADD_REFERENCES): "AddReferencesRequest",
    id(D.DELETE_REFERENCES): "DeleteReferencesRequest",
    id(D.HISTORY_DELETE): "HistoryUpdateRequest",
    id(D.HISTORY_REPLACE): "HistoryUpdateRequest",
}


def _peer(example: Any) -> list[Any]:
    """The example's messages as asyncua reads them: the client's, then the server's."""
    return peer_messages(Recorded([(d, m, 0) for d, m in example.messages]))


def _request(example: Any) -> Any:
    return [m for m in _peer(example) if m.direction == C2S][-1]


def test_every_example_is_decoded_by_asyncua() -> None:
    examples = [ex for rule in SPEC.rules for ex in rule.examples]
    assert {id(ex) for ex in examples} == set(EXPECTED)
    for ex in examples:
        last = _request(ex)
        assert last.msg_type == "MSG" and last.type_name == EXPECTED[id(ex)]


def test_examples_say_what_their_rules_claim() -> None:
    setup = _peer(D.WRITE_VALUE)
    assert [(m.direction, m.msg_type) for m in setup] == [
        (C2S, "HEL"),
        (C2S, "OPN"),
        (C2S, "MSG"),
        (S2C, "ACK"),
        (S2C, "OPN"),
    ]
    opened = setup[1].obj.Parameters
    assert opened.SecurityMode == ua.MessageSecurityMode.None_
    assert setup[4].obj.Parameters.SecurityToken.ChannelId == D.CHANNEL
    (write,) = setup[2].obj.Parameters.NodesToWrite
    speed = ua.NodeId("CasePacker.Command.MachSpeed", 2)
    assert write.NodeId == speed and write.AttributeId == ua.AttributeIds.Value
    assert write.Value.Value.Value == 90
    (access,) = _request(D.WRITE_ACCESS_LEVEL).obj.Parameters.NodesToWrite
    assert access.AttributeId == ua.AttributeIds.AccessLevel and access.Value.Value.Value == 3
    (call,) = _request(D.CALL).obj.Parameters.MethodsToCall
    assert call.MethodId == ua.NodeId("CasePacker.Reset", 2)
    (add,) = _request(D.ADD_NODES).obj.Parameters.NodesToAdd
    assert add.BrowseName == ua.QualifiedName("Backdoor", 2)
    assert add.NodeClass == ua.NodeClass.Object
    (delete,) = _request(D.HISTORY_DELETE).obj.Parameters.HistoryUpdateDetails
    assert isinstance(delete, ua.DeleteRawModifiedDetails) and delete.NodeId == speed
    (replace,) = _request(D.HISTORY_REPLACE).obj.Parameters.HistoryUpdateDetails
    assert isinstance(replace, ua.UpdateDataDetails)
    assert replace.PerformInsertReplace == ua.PerformUpdateType.Replace


def test_rules_are_catalogued_with_techniques() -> None:
    assert {r.rule for r in SPEC.rules} == {
        "process-write",
        "program-modify",
        "method-call",
        "history-modify",
    }
    assert RULES["method-call"].techniques == ("T0871", "T0855")
    assert RULES["history-modify"].techniques == ("T0872", "T0832")
    assert RULES["browse-sweep"].techniques == ("T0861", "T0888")


# --- the rules on asyncua's requests ------------------------------------------------------------

SPEED = ua.NodeId("Machine.Speed", 2)


def _write(*values: tuple[int, Any]) -> Any:
    return request(
        ua.WriteRequest,
        2,
        NodesToWrite=[
            ua.WriteValue(NodeId=SPEED, AttributeId=attr, Value=ua.DataValue(ua.Variant(v)))
            for attr, v in values
        ],
    )


def test_write_of_values_and_of_node_attributes() -> None:
    assert hits(_write((13, 42))) == [Hit("process-write", note="Write ns=2;s=Machine.Speed")]
    # UserAccessLevel and RolePermissions change the node, not the process.
    assert hits(_write((18, 3))) == [
        Hit(
            "program-modify",
            note="Write of node attributes: UserAccessLevel of ns=2;s=Machine.Speed",
        )
    ]
    both = hits(_write((13, 1), (5, "changed")))
    assert [h.rule for h in both] == ["program-modify", "process-write"]
    many = hits(_write(*[(13, i) for i in range(5)]))
    assert many[0].note.endswith("(+2 more)")


def test_call_names_object_and_method() -> None:
    req = request(
        ua.CallRequest,
        3,
        MethodsToCall=[
            ua.CallMethodRequest(
                ObjectId=ua.NodeId("Line", 2),
                MethodId=ua.NodeId("Line.Stop", 2),
                InputArguments=[ua.Variant(7)],
            )
        ],
    )
    assert hits(req) == [Hit("method-call", note="Call ns=2;s=Line.Stop on ns=2;s=Line")]


def test_node_management_is_program_modify() -> None:
    add = request(
        ua.AddNodesRequest,
        4,
        NodesToAdd=[
            ua.AddNodesItem(
                ParentNodeId=ua.ExpandedNodeId(85),
                BrowseName=ua.QualifiedName("Extra", 2),
                NodeClass=ua.NodeClass.Variable,
            )
        ],
    )
    assert hits(add) == [Hit("program-modify", note="AddNodes Variable 2:Extra under i=85")]
    delete = request(ua.DeleteNodesRequest, 5, NodesToDelete=[ua.DeleteNodesItem(NodeId=SPEED)])
    assert hits(delete) == [Hit("program-modify", note="DeleteNodes ns=2;s=Machine.Speed")]


def test_history_deletion_is_high() -> None:
    delete = request(
        ua.HistoryUpdateRequest,
        6,
        HistoryUpdateDetails=[ua.DeleteAtTimeDetails(NodeId=SPEED)],
    )
    (hit,) = hits(delete)
    assert hit.rule == "history-modify" and hit.severity == "high"
    assert hit.note == "HistoryUpdate DeleteAtTimeDetails of ns=2;s=Machine.Speed"
    insert = request(
        ua.HistoryUpdateRequest,
        7,
        HistoryUpdateDetails=[ua.UpdateDataDetails(NodeId=SPEED)],
    )
    (hit,) = hits(insert)
    assert hit.rule == "history-modify" and hit.severity is None


def test_reads_browses_and_sessions_are_not_dangerous() -> None:
    read = request(ua.ReadRequest, 8, NodesToRead=[ua.ReadValueId(NodeId=SPEED, AttributeId=13)])
    browse = request(ua.BrowseRequest, 9, NodesToBrowse=[ua.BrowseDescription(NodeId=SPEED)])
    activate = request(ua.ActivateSessionRequest, 10, UserIdentityToken=ua.AnonymousIdentityToken())
    for op in sent(read, browse, activate):
        assert D.classify(op) == [], op["function"]


# --- session weaknesses --------------------------------------------------------------------------


def _activate(token: Any) -> dict[str, Any]:
    (op,) = sent(request(ua.ActivateSessionRequest, 3, UserIdentityToken=token))
    return op


def test_session_weaknesses() -> None:
    assert D.weaknesses(_activate(ua.AnonymousIdentityToken(PolicyId="a"))) == ["anonymous user"]
    clear = ua.UserNameIdentityToken(PolicyId="u", UserName="op", Password=b"secret")
    assert D.weaknesses(_activate(clear)) == ["password of user 'op' unencrypted"]
    sealed = ua.UserNameIdentityToken(
        PolicyId="u",
        UserName="op",
        Password=b"\x01" * 64,
        EncryptionAlgorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep",
    )
    assert D.weaknesses(_activate(sealed)) == []
    opn = [
        view(op)
        for op in decode(
            ENDPOINTS,
            [(d, m, len(m), i, i) for i, (d, m) in enumerate(D.WRITE_VALUE.messages, 1)],
        ).operations
        if op.function == "OpenSecureChannel"
    ]
    assert [D.weaknesses(op) for op in opn] == [["SecurityPolicy None"]]
    assert (
        D.weaknesses({"function": "OpenSecureChannel", "detail": {"security_mode": "Sign"}}) == []
    )


# --- address-space walks -------------------------------------------------------------------------


def test_walked_items() -> None:
    nodes = [ua.BrowseDescription(NodeId=ua.NodeId(i, 2)) for i in range(40)]
    paths = [
        ua.BrowsePath(
            StartingNode=ua.NodeId(85),
            RelativePath=ua.RelativePath(
                Elements=[ua.RelativePathElement(TargetName=ua.QualifiedName("Line", 2))]
            ),
        )
    ]
    browse, translate, more = sent(
        request(ua.BrowseRequest, 2, NodesToBrowse=nodes),
        request(ua.TranslateBrowsePathsToNodeIdsRequest, 3, BrowsePaths=paths),
        request(ua.BrowseNextRequest, 4, ContinuationPoints=[b"a", b"b", b"c"]),
    )
    named, unnamed = D.walked(browse)
    assert named == [f"ns=2;i={i}" for i in range(32)] and unnamed == 8  # 32 listed
    assert D.walked(translate) == (["i=85/2:Line"], 0)
    assert D.walked(more) == ([], 3)
    assert SPEC.browse is not None and {"Browse", "BrowseNext"} <= SPEC.browse.functions


def test_example_conversation_has_both_directions() -> None:
    assert {d for d, _ in D.WRITE_VALUE.messages} == {C2S, S2C}
