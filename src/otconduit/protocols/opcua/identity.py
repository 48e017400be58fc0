"""What OPC UA applications say about themselves, as identity attributes.

Sources, each a statement by the application that sends it:

- ``opcua_endpoints``: GetEndpoints / FindServers responses carry ApplicationDescriptions
  (application URI, product URI, application name) and the server's application
  instance certificate. A discovery server may also list *other* servers, so a
  description is attributed to the responder only when the response describes a single
  application.
- ``opcua_session``: CreateSession (the client's description and certificate in the
  request, the server's certificate and endpoints in the response).
- ``opcua_channel``: the SenderCertificate of an OpenSecureChannel, in clear even when
  everything after it is encrypted.
- ``opcua_buildinfo``: a Read of the Server object's ServerStatus / BuildInfo variables
  (namespace 0: i=2256 ServerStatus, i=2260 BuildInfo, i=2261..2266 its fields; OPC
  10000-5 §6.3.1 and §12.4): manufacturer, product name and URI, software version, build
  number and date.

Certificates are reported by their SHA-1 thumbprint (the form OPC UA itself uses for
certificate references, OPC 10000-6 §6.7.2.3), lower-case hex.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final

from otconduit.protocols.opcua.binary import DataValue, DecodeError, ExtensionObject, NodeId, Reader
from otconduit.protocols.opcua.services import Application, sha1_thumbprint
from otconduit.protocols.opcua.status import is_bad

SOURCE_ENDPOINTS: Final = "opcua_endpoints"
SOURCE_SESSION: Final = "opcua_session"
SOURCE_CHANNEL: Final = "opcua_channel"
SOURCE_BUILDINFO: Final = "opcua_buildinfo"
CONFIDENCE: Final = {
    SOURCE_ENDPOINTS: 0.85,
    SOURCE_SESSION: 0.85,
    SOURCE_CHANNEL: 0.9,
    SOURCE_BUILDINFO: 0.9,
}

SERVER_STATUS: Final = 2256
BUILD_INFO: Final = 2260
BUILD_INFO_FIELDS: Final = {
    2261: "product_name",
    2262: "product_uri",
    2263: "vendor",
    2264: "software_version",
    2265: "build_number",
    2266: "build_date",
}
BUILD_INFO_NODES: Final = frozenset({SERVER_STATUS, BUILD_INFO, *BUILD_INFO_FIELDS})
BUILD_INFO_ENCODING: Final = 340  # BuildInfo_Encoding_DefaultBinary
SERVER_STATUS_ENCODING: Final = 864  # ServerStatusDataType_Encoding_DefaultBinary
_EPOCH_1601: Final = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
VALUE_ATTRIBUTE: Final = 13

Pairs = list[tuple[str, str]]


def application_pairs(app: Application) -> Pairs:
    out: Pairs = []
    for attribute, value in (
        ("application_uri", app.uri),
        ("product_uri", app.product_uri),
        ("application_name", app.name),
    ):
        if value and value.strip():
            out.append((attribute, value.strip()))
    return out


def certificate_pairs(certificates: Iterable[bytes | None]) -> Pairs:
    """The thumbprint when all given certificates agree on one."""
    prints = {sha1_thumbprint(c) for c in certificates if c}
    prints.discard(None)
    if len(prints) != 1:
        return []
    return [("certificate_sha1", str(next(iter(prints))))]


def single_application(apps: Iterable[Application]) -> Application | None:
    """The one application a discovery response describes (None: several or none)."""
    found = {app.uri: app for app in apps}
    return next(iter(found.values())) if len(found) == 1 else None


def build_info_pairs(nodes: Iterable[tuple[NodeId, int]], values: Iterable[DataValue]) -> Pairs:
    """Identity pairs from a Read of the BuildInfo nodes (request items zipped with the
    response's DataValues, which come back in request order)."""
    out: Pairs = []
    for (node, attribute), dv in zip(nodes, values, strict=False):
        numeric = node.numeric
        if numeric not in BUILD_INFO_NODES or attribute != VALUE_ATTRIBUTE:
            continue
        if is_bad(dv.status) or dv.value is None or dv.value.is_array:
            continue
        value = dv.value.value
        if numeric in BUILD_INFO_FIELDS:
            text = _text(value, dv.value.type_id)
            if text:
                out.append((BUILD_INFO_FIELDS[numeric], text))
        elif isinstance(value, ExtensionObject) and value.body:
            out += _structure(value)
    return out


def _structure(obj: ExtensionObject) -> Pairs:
    r = Reader(obj.body or b"")
    try:
        if obj.type_id.numeric == SERVER_STATUS_ENCODING:
            r.skip(8 + 8 + 4)  # startTime, currentTime, state
        elif obj.type_id.numeric != BUILD_INFO_ENCODING:
            return []
        fields = [r.string() for _ in range(5)]
        date = r.i64()
    except DecodeError:
        return []
    out: Pairs = []
    for attribute, value in zip(
        ("product_uri", "vendor", "product_name", "software_version", "build_number"),
        fields,
        strict=True,
    ):
        if value and value.strip():
            out.append((attribute, value.strip()))
    when = _date(date)
    if when:
        out.append(("build_date", when))
    return out


def _text(value: object, type_id: int) -> str | None:
    if type_id == 13 and isinstance(value, int):
        return _date(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return value[1].strip() or None  # LocalizedText
    return None


def _date(ticks: int) -> str | None:
    """A DateTime (100 ns ticks since 1601) as an ISO date; None for 0 and nonsense."""
    if ticks <= 0:
        return None
    try:
        when = _EPOCH_1601 + dt.timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None
    return when.date().isoformat() if 1990 <= when.year <= 2200 else None
