"""BACnet/IP (ASHRAE 135, Annex J) over UDP: BVLC, NPDU, APDU and service decoding,
invoke-id transaction matching, segment reassembly, identity and recognition.

Typical use, per UDP flow (or through :data:`SPEC` and the engine)::

    decoder = BacnetConnectionDecoder(endpoints)
    decoder.feed(CLIENT_TO_SERVER, datagram, frame, ts_ns)  # one datagram per call
    for event in decoder.events():  # Operation | IdentityClaim | Malformed
        ...
    tail = decoder.finish()

:data:`SPEC` declares what the registry needs (names, cleartext control, operation
classes, identity sources, dangerous operations from :mod:`.danger` with examples, and
BACnet's own catalogue rules in ``defines``); it is not in the registry yet.
"""

from otconduit.model import OpClass
from otconduit.protocols.bacnet import danger
from otconduit.protocols.bacnet.apdu import Apdu, parse_apdu
from otconduit.protocols.bacnet.bvlc import Bvlc, Npdu, parse_bvlc, parse_npdu
from otconduit.protocols.bacnet.classify import (
    bvlc_class,
    confirmed_class,
    network_class,
    unconfirmed_class,
)
from otconduit.protocols.bacnet.danger import DANGEROUS, DangerousOperation, dangerous
from otconduit.protocols.bacnet.decoder import BacnetConnectionDecoder
from otconduit.protocols.bacnet.detect import bacnet_verdict, looks_like_bvll
from otconduit.protocols.bacnet.ops import REJECT_CODE_BASE, SOURCE_DEVICE, SOURCE_I_AM
from otconduit.protocols.bacnet.session import BacnetSession, Message, Transaction
from otconduit.protocols.bacnet.vendors import vendor_name
from otconduit.protocols.base import Endpoints, ProtocolSpec


def _factory(endpoints: Endpoints) -> BacnetConnectionDecoder:
    return BacnetConnectionDecoder(endpoints)


SPEC = ProtocolSpec(
    name="bacnet",
    transports=frozenset({"udp"}),
    ports=frozenset({47808}),
    verdict=bacnet_verdict,
    factory=_factory,
    title="BACnet/IP",
    aliases=("bacnet-ip", "bacnet/ip", "bip"),
    cleartext_control=True,
    operation_classes=frozenset(OpClass) - {OpClass.FIRMWARE},
    identity_sources=frozenset({SOURCE_I_AM, SOURCE_DEVICE}),
    unsupported_codes=frozenset({REJECT_CODE_BASE + 9}),  # Reject: unrecognized-service
    announcements=frozenset(
        {
            "i_am",
            "i_have",
            "i_am_router_to_network",
            "i_could_be_router_to_network",
            "network_number_is",
        }
    ),
    classify=danger.classify,
    detail_keys=danger.DETAIL_KEYS,
    rules=danger.RULES,
    defines=danger.DEFINES,
)

__all__ = [
    "DANGEROUS",
    "SPEC",
    "Apdu",
    "BacnetConnectionDecoder",
    "BacnetSession",
    "Bvlc",
    "DangerousOperation",
    "Message",
    "Npdu",
    "Transaction",
    "bacnet_verdict",
    "bvlc_class",
    "confirmed_class",
    "dangerous",
    "looks_like_bvll",
    "network_class",
    "parse_apdu",
    "parse_bvlc",
    "parse_npdu",
    "unconfirmed_class",
    "vendor_name",
]
