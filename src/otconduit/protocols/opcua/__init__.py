"""OPC UA binary (UA TCP / UA Secure Conversation / UA Binary), TCP port 4840 and any
port by content.

Public API::

    SPEC                      ProtocolSpec "opcua": verdict + factory for the engine
    OpcUaDecoder(endpoints)   ConnectionDecoder for one connection (both directions)
    ChunkStream               sans-I/O UA TCP chunk framer for one direction
    SecureChannel             OPN/CLO/MSG headers, security policy and mode, chunk
                              reassembly per request id
    parse_body(body)          one service message body -> Body (or the reason)
    verdict(c, s, known)      UA TCP recognition from the first bytes

Operations use protocol ``opcua``; their ``function`` is the service name of OPC
10000-4 ("Read", "CreateSession", ...) and ``function_code`` the numeric id of the
request's binary encoding (see :mod:`.session` for the transport messages). Operation
classes are documented in :mod:`.services`, identity sources in :mod:`.identity`,
dangerous requests and browse walks in :mod:`.danger`.
"""

from otconduit.model import OpClass
from otconduit.protocols.base import Browse, ProtocolSpec
from otconduit.protocols.opcua import danger, identity
from otconduit.protocols.opcua.chunks import Chunk, ChunkStream
from otconduit.protocols.opcua.decoder import OpcUaDecoder, factory
from otconduit.protocols.opcua.detect import starts_with_chunk, verdict
from otconduit.protocols.opcua.secure import SecureChannel
from otconduit.protocols.opcua.services import SERVICES, Body, Service, parse_body
from otconduit.protocols.opcua.session import OpcUaSession

SPEC = ProtocolSpec(
    name="opcua",
    transports=frozenset({"tcp"}),
    ports=frozenset({4840}),
    verdict=verdict,
    factory=factory,
    title="OPC UA binary",
    aliases=("opc-ua", "opc.tcp", "opcua-binary", "uatcp"),
    # Control is in clear text only on channels with SecurityPolicy None; each service
    # operation says which (detail "security_mode": None, Sign, SignAndEncrypt), so the
    # protocol-wide flag stays off and the policy judges sessions one by one
    # (``insecure-opcua-crossing`` in :mod:`otconduit.policy.check`).
    cleartext_control=False,
    operation_classes=frozenset(
        {
            OpClass.READ,
            OpClass.WRITE,
            OpClass.CONTROL,
            OpClass.PROGRAM,
            OpClass.IDENTITY,
            OpClass.SESSION,
            OpClass.OTHER,
        }
    ),
    identity_sources=frozenset(
        {
            identity.SOURCE_ENDPOINTS,
            identity.SOURCE_SESSION,
            identity.SOURCE_CHANNEL,
            identity.SOURCE_BUILDINFO,
        }
    ),
    setup_identity=frozenset({"GetEndpoints"}),
    classify=danger.classify,
    detail_keys=frozenset({"nodes", "methods", "references", "updates"}),
    rules=danger.RULES,
    browse=Browse(functions=danger.BROWSE_FUNCTIONS, items=danger.walked),
)

__all__ = [
    "SERVICES",
    "SPEC",
    "Body",
    "Chunk",
    "ChunkStream",
    "OpcUaDecoder",
    "OpcUaSession",
    "SecureChannel",
    "Service",
    "factory",
    "parse_body",
    "starts_with_chunk",
    "verdict",
]
