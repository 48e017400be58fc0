"""Optional payload encryption for diode datagrams: ChaCha20-Poly1305 (RFC 8439).

The HMAC proves who sent a datagram but anyone on the link can read it; with encryption
the tag values are unreadable without the key. One shared key serves both: each session
encrypts under its own key, HKDF-SHA256 (RFC 5869) of the shared key with the session id
as salt, and the datagram counter (unique within a session) is the nonce, so a nonce is
never used twice under one key. The common header is associated data.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the library loads with the first Sealer: 14 MB every command paid
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

TAG_LEN = 16
_INFO = b"conduit diode payload v1"
_CACHED_SESSIONS = 8


class Sealer:
    """Encrypts and decrypts the part of a datagram after its common header."""

    __slots__ = ("_key", "_sessions")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._sessions: OrderedDict[bytes, ChaCha20Poly1305] = OrderedDict()

    def _aead(self, session: bytes) -> ChaCha20Poly1305:
        aead = self._sessions.get(session)
        if aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=session, info=_INFO)
            aead = self._sessions[session] = ChaCha20Poly1305(hkdf.derive(self._key))
            if len(self._sessions) > _CACHED_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session)
        return aead

    def seal(self, session: bytes, counter: int, header: bytes, plain: bytes) -> bytes:
        return self._aead(session).encrypt(_nonce(counter), plain, header)

    def open(self, session: bytes, counter: int, header: bytes, sealed: bytes) -> bytes | None:
        """The plaintext, or None if the ciphertext or header was altered."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead(session).decrypt(_nonce(counter), sealed, header)
        except InvalidTag:
            return None


def _nonce(counter: int) -> bytes:
    return b"\0\0\0\0" + counter.to_bytes(8, "big")
