"""Refusing diode keys that can be guessed.

Every datagram carries an HMAC of known-format bytes, so anyone who records the link can
try keys offline as fast as their hardware allows. A key a person typed, a pattern or a
placeholder falls to that; ``conduit diode keygen`` writes 256 random bits. The checks
below catch what is plainly not random (they cannot prove that a key is): too short, one
byte value, a repeated block, a counting sequence, too few distinct bytes, and typed
text with fewer than about 128 bits by its character set.
"""

from __future__ import annotations

import itertools
import math
import string

MIN_KEY_LEN = 16
MIN_TEXT_BITS = 128
_PRINTABLE = frozenset(string.printable.encode())
_CLASSES = (
    (frozenset(string.ascii_lowercase.encode()), 26),
    (frozenset(string.ascii_uppercase.encode()), 26),
    (frozenset(string.digits.encode()), 10),
    (frozenset(string.punctuation.encode() + b" "), 33),
)


class WeakKeyError(ValueError):
    """A diode key too short or too predictable to protect the link; ``str()`` is one
    line saying why."""


def _period(key: bytes) -> int:
    """The length of the shortest block that ``key`` repeats (KMP prefix function)."""
    fail = [0] * len(key)
    k = 0
    for i in range(1, len(key)):
        while k and key[i] != key[k]:
            k = fail[k - 1]
        if key[i] == key[k]:
            k += 1
        fail[i] = k
    return len(key) - fail[-1]


def _text_bits(text: bytes) -> float:
    """Bits of a typed key if each character were drawn at random from its classes."""
    alphabet = sum(size for chars, size in _CLASSES if chars.intersection(text))
    return len(text) * math.log2(max(alphabet, 2))


def key_weakness(key: bytes) -> str | None:
    """Why ``key`` is weak, or None when no check finds fault with it."""
    if len(key) < MIN_KEY_LEN:
        return f"{len(key)} bytes of key, at least {MIN_KEY_LEN} needed"
    typed = _PRINTABLE.issuperset(key)
    core = key.strip() if typed else key  # a text key's trailing newline hides patterns
    if len(core) < MIN_KEY_LEN:
        return f"{len(core)} characters of key, at least {MIN_KEY_LEN} needed"
    distinct = len(set(core))
    if distinct == 1:
        return "one byte value repeated"
    period = _period(core)
    if period <= len(core) // 2:
        return f"a {period}-byte block repeated"
    if len({(b - a) & 0xFF for a, b in itertools.pairwise(core)}) == 1:
        return "a counting sequence"
    if distinct < 8:
        return f"only {distinct} different byte values"
    if typed and (bits := _text_bits(core)) < MIN_TEXT_BITS:
        return f"typed text worth about {bits:.0f} bits, {MIN_TEXT_BITS} needed"
    return None


def check_key(key: bytes) -> None:
    """Raise :class:`WeakKeyError` for a key that any check finds weak."""
    why = key_weakness(key)
    if why:
        raise WeakKeyError(f"weak diode key ({why}): make one with `conduit diode keygen`")
