"""The OSI upper layers MMS rides on over ISO-on-TCP (IEC 61850-8-1 §6, Table 2): from
one COTP TSDU to the MMS PDU it carries, with what the session, presentation and ACSE
layers say on the way.

- Session, ISO 8327-1 / X.225 §8: an SPDU is SI (1), LI (1, or 0xFF and 2 bytes),
  parameters, then user information. Data travels as Give Tokens (SI 1, LI 0)
  concatenated with Data Transfer (SI 1); CONNECT (13), ACCEPT (14), REFUSE (12),
  FINISH (9), DISCONNECT (10), ABORT (25) carry it in the User Data parameter group
  (PGI 193, or Extended User Data 194).
- Presentation, ISO 8823 / X.226 §8: CP-type and CPA-PPDU are SETs (0x31) whose
  normal-mode parameters [2] end in the user data; in data transfer the user data
  stands alone: fully-encoded-data [APPLICATION 1] = SEQUENCE OF PDV-list {transfer
  syntax, presentation context id, single-ASN1-type [0] | octet-aligned [1]}.
- ACSE, ISO 8650 / X.227: AARQ [APPLICATION 0], AARE [1], RLRQ [2], RLRE [3], ABRT
  [4]; the MMS PDU sits in user-information [30], an EXTERNAL (encoding [0]).

Some MMS stacks and test tools send MMS straight in the COTP data without these layers;
such a TSDU is taken as bare MMS (:func:`mms.looks_like_mms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.protocols.iec61850 import ber
from otconduit.protocols.iec61850.ber import APPLICATION, CONTEXT, UNIVERSAL, BerError, Tlv
from otconduit.protocols.iec61850.mms import looks_like_mms

# Session SPDU identifiers (X.225 §8.3).
SI_DATA: Final = 1  # also Give Tokens (category 0) when LI is 0 and an SPDU follows
SI_FINISH: Final = 9
SI_DISCONNECT: Final = 10
SI_REFUSE: Final = 12
SI_CONNECT: Final = 13
SI_ACCEPT: Final = 14
SI_ABORT: Final = 25
SI_ABORT_ACCEPT: Final = 26
SPDU_NAMES: Final = {
    1: "DT",
    8: "NF",
    9: "FN",
    10: "DN",
    12: "RF",
    13: "CN",
    14: "AC",
    25: "AB",
    26: "AA",
}
PGI_USER_DATA: Final = 193
PGI_EXTENDED_USER_DATA: Final = 194
ACSE_NAMES: Final = {0: "AARQ", 1: "AARE", 2: "RLRQ", 3: "RLRE", 4: "ABRT"}
MMS_CONTEXT: Final = "1.0.9506.2.3"  # MMS application context (ISO 9506-2)
PASSWORD_MECHANISM: Final = "2.2.3.1"  # ACSE authentication-mechanism "password"
AARE_RESULTS: Final = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}


@dataclass(frozen=True, slots=True, kw_only=True)
class OsiUnit:
    """What one TSDU carries: the session SPDU (None for bare MMS), the ACSE APDU if any,
    its fields, and the MMS PDU bytes (None when it carries none)."""

    spdu: int | None
    acse: int | None = None
    acse_info: dict[str, Any] = field(default_factory=dict)
    mms: bytes | None = None
    problem: str | None = None

    @property
    def spdu_name(self) -> str:
        if self.spdu is None:
            return "none"
        return SPDU_NAMES.get(self.spdu, f"SI {self.spdu}")

    @property
    def acse_name(self) -> str | None:
        return None if self.acse is None else ACSE_NAMES.get(self.acse, f"ACSE {self.acse}")


def looks_like_session(data: bytes) -> bool:
    """Whether ``data`` starts like an SPDU MMS uses: CN/AC/RF/FN/DN/AB/AA, or Give
    Tokens + Data Transfer (01 00 01 ..)."""
    if len(data) < 2:
        return False
    si = data[0]
    if si == SI_DATA:
        return data[1] == 0 and len(data) >= 4 and data[2] == SI_DATA
    return si in SPDU_NAMES


def unwrap(tsdu: bytes) -> OsiUnit | str:
    """The layers of one COTP TSDU, or why they cannot be read."""
    if looks_like_mms(tsdu) and not looks_like_session(tsdu):
        return OsiUnit(spdu=None, mms=tsdu)
    try:
        si, params, user = _spdu(tsdu)
    except BerError as exc:
        return f"session: {exc}"
    if si not in SPDU_NAMES:
        return f"session: unknown SPDU identifier {si}"
    if si == SI_DATA:
        data = user
    else:
        try:
            data = _user_data(params)
        except BerError as exc:
            return f"session {SPDU_NAMES[si]}: {exc}"
    if not data:
        return OsiUnit(spdu=si)
    try:
        return _presentation(si, data)
    except BerError as exc:
        return f"session {SPDU_NAMES[si]}, presentation: {exc}"


def _li(buf: bytes, pos: int) -> tuple[int, int]:
    """A session length indicator at ``pos``: (length, position after it)."""
    if pos >= len(buf):
        raise BerError("truncated length indicator")
    if buf[pos] != 0xFF:
        return buf[pos], pos + 1
    if pos + 3 > len(buf):
        raise BerError("truncated length indicator")
    return (buf[pos + 1] << 8) | buf[pos + 2], pos + 3


def _spdu(data: bytes) -> tuple[int, bytes, bytes]:
    """(SI, parameter bytes, user information) of the main SPDU, after any category 0
    Give Tokens / Please Tokens SPDU concatenated in front."""
    pos = 0
    si = data[0]
    length, pos = _li(data, 1)
    if si in (1, 2) and length == 0 and pos < len(data) and data[pos] == SI_DATA:
        si = data[pos]
        length, pos = _li(data, pos + 1)
    if pos + length > len(data):
        raise BerError(f"SPDU length {length} exceeds the {len(data) - pos} bytes left")
    return si, data[pos : pos + length], data[pos + length :]


def _user_data(params: bytes) -> bytes:
    """The User Data parameter group of an SPDU's parameters (X.225 §8.3.1.x)."""
    pos = 0
    while pos < len(params):
        code = params[pos]
        length, pos = _li(params, pos + 1)
        if pos + length > len(params):
            raise BerError(f"parameter {code} length {length} exceeds the SPDU")
        if code in (PGI_USER_DATA, PGI_EXTENDED_USER_DATA):
            return params[pos : pos + length]
        pos += length
    return b""


def _presentation(si: int, data: bytes) -> OsiUnit:
    """The PPDU of one SPDU's user data, down to the MMS PDU or ACSE APDU it carries."""
    top = ber.read_tlv(data, 0, len(data))
    if top.cls == UNIVERSAL and top.tag == 17:  # CP-type / CPA-PPDU SET
        user = None
        for part in ber.children(data, top):
            if part.cls == CONTEXT and part.tag == 2:  # normal-mode-parameters
                for item in ber.children(data, part):
                    if item.cls == APPLICATION and item.tag in (0, 1):
                        user = item
        if user is None:
            return OsiUnit(spdu=si, problem="presentation connect without user data")
        return _user_data_value(si, data, user)
    if top.cls == APPLICATION and top.tag in (0, 1):  # simply/fully-encoded data
        return _user_data_value(si, data, top)
    if top.cls == UNIVERSAL and top.tag == 16:  # CPR-PPDU or ARP-PPDU (SEQUENCE)
        return OsiUnit(spdu=si, problem="presentation refuse or provider abort")
    if top.cls == CONTEXT and top.tag == 0:  # ARU-PPDU normal mode
        for item in ber.children(data, top):
            if item.cls == APPLICATION and item.tag == 1:
                return _user_data_value(si, data, item)
        return OsiUnit(spdu=si)
    raise BerError(f"unknown PPDU (identifier 0x{data[0]:02x})")


def _user_data_value(si: int, data: bytes, user: Tlv) -> OsiUnit:
    """User-data: simply-encoded [APPLICATION 0] OCTET STRING, or fully-encoded
    [APPLICATION 1] PDV-lists; the first presentation data value is what is carried."""
    if user.tag == 0:
        return _apdu(si, data[user.start : user.end])
    for pdv in ber.children(data, user):
        for item in ber.children(data, pdv):
            if item.cls == CONTEXT and item.tag == 0:  # single-ASN1-type
                inner = ber.first(data, item)
                return _apdu(si, data[inner.offset : inner.end])
            if item.cls == CONTEXT and item.tag == 1:  # octet-aligned
                return _apdu(si, data[item.start : item.end])
    return OsiUnit(spdu=si, problem="presentation data without a value")


def _apdu(si: int, data: bytes) -> OsiUnit:
    """An ACSE APDU (which may carry MMS in its user-information) or an MMS PDU."""
    if not data:
        return OsiUnit(spdu=si)
    if data[0] & 0xE0 == 0x60:  # [APPLICATION n] constructed: ACSE
        top = ber.read_tlv(data, 0, len(data))
        info: dict[str, Any] = {}
        mms = _acse(data, top, info)
        return OsiUnit(spdu=si, acse=top.tag, acse_info=info, mms=mms)
    return OsiUnit(spdu=si, mms=data)


def _ap_title(data: bytes, tlv: Tlv) -> str:
    inner = ber.first(data, tlv)
    if inner.cls == UNIVERSAL and inner.tag == 6:
        return ber.oid(data, inner)
    return data[inner.start : inner.end].hex()


def _acse(data: bytes, top: Tlv, info: dict[str, Any]) -> bytes | None:
    """ACSE fields of an AARQ/AARE/RLRQ/RLRE/ABRT (X.227 §9); the MMS PDU bytes of its
    user-information, if any. Passwords are never kept, only that one was sent."""
    mms: bytes | None = None
    aarq = top.tag == 0
    for item in ber.children(data, top):
        if item.cls != CONTEXT:
            continue
        t = item.tag
        if t == 1 and top.tag in (0, 1):
            info["application_context"] = ber.oid(data, ber.first(data, item))
        elif aarq and t in (2, 6):
            info["called_ap_title" if t == 2 else "calling_ap_title"] = _ap_title(data, item)
        elif aarq and t in (3, 7):
            key = "called_ae_qualifier" if t == 3 else "calling_ae_qualifier"
            info[key] = ber.integer(data, ber.first(data, item))
        elif not aarq and top.tag == 1 and t == 2:
            result = ber.integer(data, ber.first(data, item))
            info["result"] = AARE_RESULTS.get(result, str(result))
        elif not aarq and top.tag == 1 and t == 4:
            info["responding_ap_title"] = _ap_title(data, item)
        elif (aarq and t == 11) or (top.tag == 1 and t == 9):
            info["mechanism"] = ber.oid(data, item)
        elif (aarq and t == 12) or (top.tag == 1 and t == 10):
            value = ber.first(data, item)
            kind = {0: "password", 1: "bitstring", 2: "external"}.get(value.tag, "other")
            info["authentication"] = kind
            info["authentication_length"] = value.end - value.start
        elif t == 0 and top.tag in (2, 3, 4) and not item.constructed:
            info["reason" if top.tag != 4 else "abort_source"] = ber.integer(data, item)
        elif t == 30:
            mms = _external(data, item)
    if aarq and info.get("mechanism") == PASSWORD_MECHANISM and "authentication" not in info:
        info["authentication"] = "password"
    return mms


def _external(data: bytes, info_tlv: Tlv) -> bytes | None:
    """Association-information: SEQUENCE OF EXTERNAL (X.690 §8.18); the first one's
    single-ASN1-type [0] or octet-aligned [1] encoding."""
    for ext in ber.children(data, info_tlv):
        for item in ber.children(data, ext):
            if item.cls == CONTEXT and item.tag == 0:
                inner = ber.first(data, item)
                return data[inner.offset : inner.end]
            if item.cls == CONTEXT and item.tag == 1:
                return data[item.start : item.end]
    return None
