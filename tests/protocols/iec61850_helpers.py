"""Helpers for the IEC 61850 tests: the corpus, and encoders for BER (X.690), MMS PDUs
(ISO 9506-2), the OSI session/presentation/ACSE wrapping (X.225, X.226, X.227), TPKT/COTP
(RFC 1006, ISO 8073) and GOOSE frames (IEC 61850-8-1 Annex C), written independently of
the decoder."""

from __future__ import annotations

import struct
from pathlib import Path

from otconduit.protocols.base import Endpoints

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
MMS_DIR = CORPUS / "iti" / "IEC61850" / "MMS"
GOOSE_DIR = CORPUS / "iti" / "IEC61850" / "GOOSE"
MMS_CAPTURES = sorted(MMS_DIR.glob("*.pcap")) if MMS_DIR.is_dir() else []
GOOSE_CAPTURES = sorted(GOOSE_DIR.glob("*.pcap")) if GOOSE_DIR.is_dir() else []
PORT = 102
ENDPOINTS = Endpoints(
    transport="tcp", client_ip="10.0.0.1", client_port=50000, server_ip="10.0.0.2", server_port=PORT
)


# -- BER ----------------------------------------------------------------------------------
def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def ident(cls: int, constructed: bool, tag: int) -> bytes:
    first = (cls << 6) | (0x20 if constructed else 0)
    if tag < 31:
        return bytes([first | tag])
    out = [tag & 0x7F]
    tag >>= 7
    while tag:
        out.append(0x80 | (tag & 0x7F))
        tag >>= 7
    return bytes([first | 0x1F, *reversed(out)])


def ctx(tag: int, content: bytes, constructed: bool = True) -> bytes:
    return ident(2, constructed, tag) + length(len(content)) + content


def prim(tag: int, content: bytes) -> bytes:
    return ctx(tag, content, constructed=False)


def univ(tag: int, content: bytes, constructed: bool = False) -> bytes:
    return ident(0, constructed, tag) + length(len(content)) + content


def app(tag: int, content: bytes) -> bytes:
    return ident(1, True, tag) + length(len(content)) + content


def integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return value.to_bytes(size, "big", signed=True)


def seq(*items: bytes) -> bytes:
    return univ(16, b"".join(items), constructed=True)


def visible(text: str) -> bytes:
    return univ(26, text.encode())


# -- MMS (ISO 9506-2) --------------------------------------------------------------------
def confirmed_request(invoke: int, service: bytes) -> bytes:
    return ctx(0, univ(2, integer(invoke)) + service)


def confirmed_response(invoke: int, service: bytes) -> bytes:
    return ctx(1, univ(2, integer(invoke)) + service)


def confirmed_error(invoke: int, error_class: int, code: int) -> bytes:
    service_error = ctx(2, ctx(0, prim(error_class, integer(code))))
    return ctx(2, prim(0, integer(invoke)) + service_error)


def reject(invoke: int, reason: int, code: int) -> bytes:
    return ctx(4, prim(0, integer(invoke)) + prim(reason, integer(code)))


def domain_name(domain: str, item: str) -> bytes:
    return ctx(1, visible(domain) + visible(item))


def list_of_variables(*names: bytes) -> bytes:
    return ctx(0, b"".join(seq(ctx(0, n)) for n in names))


def read_request(*names: bytes) -> bytes:
    return ctx(4, ctx(1, list_of_variables(*names)))


def read_response(*results: bytes) -> bytes:
    return ctx(4, ctx(1, b"".join(results)))


def write_request(names: list[bytes], data: list[bytes]) -> bytes:
    return ctx(5, list_of_variables(*names) + ctx(0, b"".join(data)))


def write_response(*results: bytes) -> bytes:
    return ctx(5, b"".join(results))


def identify_response(vendor: str, model: str, revision: str) -> bytes:
    return ctx(2, prim(0, vendor.encode()) + prim(1, model.encode()) + prim(2, revision.encode()))


def file_name(*parts: str) -> bytes:
    return b"".join(univ(25, p.encode()) for p in parts)


def initiate_request() -> bytes:
    detail = (
        prim(0, integer(1))
        + prim(1, b"\x05\xf1\x00")
        + prim(2, b"\x03\xee\x1c\x00\x00\x04\x08\x00\x00\x79\xef\x18")
    )
    return ctx(
        8,
        prim(0, integer(65000))
        + prim(1, integer(5))
        + prim(2, integer(5))
        + prim(3, integer(10))
        + ctx(4, detail),
    )


def initiate_response() -> bytes:
    detail = (
        prim(0, integer(1))
        + prim(1, b"\x05\xf1\x00")
        + prim(2, b"\x03\xee\x1c\x00\x00\x04\x08\x00\x00\x79\xef\x18")
    )
    return ctx(
        9,
        prim(0, integer(65000))
        + prim(1, integer(5))
        + prim(2, integer(5))
        + prim(3, integer(10))
        + ctx(4, detail),
    )


CONCLUDE_REQUEST = prim(11, b"")
CONCLUDE_RESPONSE = prim(12, b"")


# -- OSI upper layers (X.225 / X.226 / X.227) -------------------------------------------------
def pdv(context: int, value: bytes) -> bytes:
    """Presentation fully-encoded-data with one PDV-list, single-ASN1-type."""
    return app(1, seq(univ(2, integer(context)), ctx(0, value)))


def session_data(mms: bytes) -> bytes:
    """Give Tokens + Data Transfer SPDUs, then presentation user data."""
    return b"\x01\x00\x01\x00" + pdv(3, mms)


def aarq(mms: bytes, *, password: str | None = None) -> bytes:
    parts = ctx(1, univ(6, bytes.fromhex("28ca220203")))  # 1.0.9506.2.3
    parts += ctx(2, univ(6, bytes.fromhex("2bce0f02")))  # called AP title 1.3.9999.2
    parts += ctx(3, univ(2, integer(12)))
    if password is not None:
        parts += prim(10, b"\x06\x80") + prim(11, bytes.fromhex("520301"))
        parts += ctx(12, prim(0, password.encode()))
    external = univ(8, univ(6, bytes.fromhex("5101")) + univ(2, integer(3)) + ctx(0, mms), True)
    parts += ctx(30, external)
    return app(0, parts)


def aare(mms: bytes, result: int = 0) -> bytes:
    parts = ctx(1, univ(6, bytes.fromhex("28ca220203"))) + ctx(2, univ(2, integer(result)))
    parts += ctx(3, ctx(1, univ(2, integer(0))))
    external = univ(8, univ(6, bytes.fromhex("5101")) + univ(2, integer(3)) + ctx(0, mms), True)
    return app(1, parts + ctx(30, external))


def cp_type(acse: bytes) -> bytes:
    """Presentation CP-type (SET): mode normal, normal-mode parameters with user data."""
    normal = prim(1, b"\x00\x00\x00\x01") + prim(2, b"\x00\x00\x00\x01") + pdv(1, acse)
    return univ(17, ctx(0, prim(0, integer(1))) + ctx(2, normal), True)


def session_connect(ppdu: bytes, si: int = 13) -> bytes:
    """Session CONNECT (13) or ACCEPT (14): Connect/Accept item, then User Data (193)."""
    params = bytes([5, 6, 0x13, 1, 0, 0x16, 1, 2]) + bytes([0xC1]) + session_li(len(ppdu)) + ppdu
    return bytes([si]) + session_li(len(params)) + params


def session_li(n: int) -> bytes:
    return bytes([n]) if n < 255 else b"\xff" + n.to_bytes(2, "big")


# -- TPKT / COTP ---------------------------------------------------------------------------
def dt(user: bytes, eot: bool = True) -> bytes:
    return struct.pack(">BBH", 3, 0, 7 + len(user)) + bytes([2, 0xF0, 0x80 if eot else 0]) + user


def cr() -> bytes:
    params = bytes([0xC1, 2, 0, 1, 0xC2, 2, 0, 1, 0xC0, 1, 0x0A])
    return (
        struct.pack(">BBH", 3, 0, 5 + 6 + len(params))
        + bytes([6 + len(params), 0xE0, 0, 0, 0, 1, 0])
        + params
    )


def cc() -> bytes:
    params = bytes([0xC1, 2, 0, 1, 0xC2, 2, 0, 1, 0xC0, 1, 0x0A])
    return (
        struct.pack(">BBH", 3, 0, 5 + 6 + len(params))
        + bytes([6 + len(params), 0xD0, 0, 1, 0, 2, 0])
        + params
    )


# -- GOOSE (IEC 61850-8-1 Annex C) -----------------------------------------------------------
def goose_payload(
    st: int,
    sq: int,
    *,
    gocb: str = "IED1LD0/LLN0$GO$gcb1",
    appid: int = 1,
    test: bool = False,
    conf_rev: int = 1,
    data: bytes = b"\x83\x01\x00",
    t_seconds: int = 1_700_000_000,
    s_bit: bool = False,
    entries: int | None = None,
) -> bytes:
    pdu = app(
        1,
        prim(0, gocb.encode())
        + prim(1, integer(2000))
        + prim(2, b"IED1LD0/LLN0$DS1")
        + prim(3, b"gcb1")
        + prim(4, struct.pack(">I", t_seconds) + b"\x80\x00\x00\x0a")
        + prim(5, integer(st))
        + prim(6, integer(sq))
        + prim(7, b"\xff" if test else b"\x00")
        + prim(8, integer(conf_rev))
        + prim(9, b"\x00")
        + prim(10, integer(entries if entries is not None else 1))
        + ctx(11, data),
    )
    return struct.pack(">HHHH", appid, 8 + len(pdu), 0x8000 if s_bit else 0, 0) + pdu
