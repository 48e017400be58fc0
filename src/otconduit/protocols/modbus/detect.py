"""Content-based Modbus/TCP identification, for streams off port 502 and for
non-Modbus traffic on port 502.

Heuristic, applied to the first bytes of one direction of a stream:

1. Walk consecutive ADUs from offset 0 (at most :data:`MAX_ADUS`). An ADU counts as
   evidence only if its MBAP header is valid (protocol id 0, length 2..254, IG §3.1.3),
   its function code has a name (a response may carry the exception bit), its PDU
   size fits that code's layout in the chosen direction, and :func:`decode_pdu` finds
   no spec violation (byte counts, quantities, fixed sizes).
2. Both directions are tried; the better walk wins (a stream is one direction).
3. Score = ``1 - 0.4 ** n`` for ``n`` valid ADUs (0.6, 0.84, 0.94, ...). A trailing
   incomplete ADU whose header is plausible is neutral (the sample was cut short);
   anything else after the valid ADUs halves the score. No valid ADU: 0.25 if the
   sample is a plausible but incomplete first ADU, else 0.
4. :func:`looks_like_modbus` is ``score >= 0.5``: one complete, exactly-sized ADU is
   enough, garbage after a single ADU is not.

Why this is safe against HTTP, TLS and random bytes: a zero 16-bit protocol id alone
has a 1/65536 chance at random, and it must coincide with a length whose high byte is
zero, a named function code, and a PDU whose internal counts agree with that length.
HTTP methods and TLS record headers put non-zero bytes where the protocol id sits.
"""

from __future__ import annotations

from typing import Final

from otconduit.protocols.modbus.pdu import decode_pdu
from otconduit.protocols.modbus.stream import MBAP_SIZE, plausible_adu_start

MAX_ADUS: Final = 8
THRESHOLD: Final = 0.5


def _walk(data: bytes, *, is_request: bool) -> tuple[int, bool]:
    """(valid ADUs from the start, whether what follows them is a clean ending)."""
    pos, valid = 0, 0
    while valid < MAX_ADUS and pos < len(data):
        if len(data) - pos < MBAP_SIZE + 1:
            return valid, _plausible_prefix(data[pos:])
        if not plausible_adu_start(data, pos, is_request=is_request):
            return valid, False
        total = 6 + ((data[pos + 4] << 8) | data[pos + 5])
        if pos + total > len(data):
            return valid, True  # cut short: neutral
        decoded = decode_pdu(data[pos + MBAP_SIZE : pos + total], is_request=is_request)
        if decoded.malformed_reason is not None:
            return valid, False
        valid += 1
        pos += total
    return valid, True


def _plausible_prefix(tail: bytes) -> bool:
    """Whether fewer than 8 trailing bytes could still begin an MBAP header."""
    if len(tail) >= 4 and tail[2:4] != b"\x00\x00":
        return False
    return not (len(tail) >= 6 and not 2 <= ((tail[4] << 8) | tail[5]) <= 254)


def _score_one(data: bytes, *, is_request: bool) -> float:
    valid, clean = _walk(data, is_request=is_request)
    if valid == 0:
        cut_short = clean and len(data) >= MBAP_SIZE + 1
        return 0.25 if cut_short and plausible_adu_start(data, 0, is_request=is_request) else 0.0
    score = 1.0 - 0.4**valid
    return score if clean else score / 2


def modbus_score(data: bytes) -> float:
    """Confidence in [0, 1] that ``data`` (a stream's first bytes) is Modbus/TCP."""
    return max(_score_one(data, is_request=True), _score_one(data, is_request=False))


def looks_like_modbus(data: bytes) -> bool:
    """True when :func:`modbus_score` reaches :data:`THRESHOLD`."""
    return modbus_score(data) >= THRESHOLD


def _framed(data: bytes) -> tuple[list[tuple[int, int]], bool]:
    """MBAP framing only, ignoring what the PDUs say: the (transaction id, unit id) of each
    complete ADU from offset 0, and whether the sample ends cleanly (exactly, or in a
    plausible partial header)."""
    pos = 0
    out: list[tuple[int, int]] = []
    while pos < len(data) and len(out) < MAX_ADUS:
        if len(data) - pos < MBAP_SIZE + 1:
            return out, _plausible_prefix(data[pos:])
        length = (data[pos + 4] << 8) | data[pos + 5]
        if data[pos + 2 : pos + 4] != b"\x00\x00" or not 2 <= length <= 255:
            return out, False
        if pos + 6 + length > len(data):
            return out, True
        out.append(((data[pos] << 8) | data[pos + 1], data[pos + 6]))
        pos += 6 + length
    return out, True


def modbus_verdict(client: bytes, server: bytes, *, on_port_502: bool = False) -> bool | None:
    """Identify Modbus/TCP from the first bytes of both directions of a connection.

    ``True``: Modbus. ``False``: the framing of both directions is broken, so it is not.
    ``None``: not enough evidence yet; feed more bytes (the caller decides ``False`` once
    it has seen enough or the connection ends).

    Either direction passing :func:`looks_like_modbus` is enough. Failing that (a vendor
    function code with no public layout, PDUs with trailing bytes, a fuzzer), MBAP
    framing is accepted when two or more ADUs tile one direction exactly (each needs a
    zero protocol id and a length whose high byte is zero landing on the next header),
    when a server ADU echoes a client ADU's transaction and unit id (a random match of
    both ids plus zero protocol ids in both directions is below one in 2**56), or, on
    port 502, when one direction holds one cleanly framed ADU.
    """
    if (client and looks_like_modbus(client)) or (server and looks_like_modbus(server)):
        return True
    c_adus, c_clean = _framed(client)
    s_adus, s_clean = _framed(server)
    c_ok = bool(c_adus) and c_clean
    s_ok = bool(s_adus) and s_clean
    if (c_ok and len(c_adus) >= 2) or (s_ok and len(s_adus) >= 2):
        return True
    if c_ok and s_ok and set(c_adus) & set(s_adus):
        return True
    if on_port_502 and (c_ok or s_ok):
        return True
    # Broken framing in one direction may just be a capture that starts mid-PDU: only
    # both directions broken settles it.
    if client and server and not c_clean and not s_clean:
        return False
    return None


def looks_like_modbus_exchange(client: bytes, server: bytes) -> bool:
    """:func:`modbus_verdict` for a connection that has ended: undecided means no."""
    return modbus_verdict(client, server) is True
