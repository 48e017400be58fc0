"""The UA TCP connection and UA Secure Conversation layers: from chunks to messages.

What this layer does with each :class:`~.chunks.Chunk` (OPC 10000-6 §7.1 and §6.7):

- HEL, ACK, ERR, RHE (§7.1.2.3-7.1.2.6) decode to :class:`Hello`, :class:`Acknowledge`,
  :class:`TransportError`, :class:`ReverseHello`.
- OPN chunks carry the SecureChannelId and the asymmetric security header (§6.7.2.3):
  SecurityPolicyUri, SenderCertificate, ReceiverCertificateThumbprint, all ByteStrings
  and always in clear. With policy ``#None`` the sequence header (SequenceNumber,
  RequestId) and body follow in clear; with any other policy they are encrypted with
  the receiver's public key whatever the SecurityMode, so the OPN is reported as
  :class:`SecureMessage` with ``body=None`` and the certificates it showed.
- MSG and CLO chunks carry the SecureChannelId and a TokenId (§6.7.2.4), then the
  sequence header and body. They are readable under policy None and under SecurityMode
  Sign (a signature of the policy's MAC size ends each chunk); under SignAndEncrypt they
  are not. The mode itself travels inside the encrypted OPN request, so it is observed
  instead: the first MSG/CLO chunk after an encrypted OPN is readable exactly when its
  body starts with the encoding NodeId of a known service message, which a ciphertext
  does with odds below 1e-5. Unreadable chunks become :class:`Encrypted` events: counted,
  never guessed at. When no OPN was seen (a capture that began mid-connection) the
  policy, hence the signature size, is unknown: single-chunk messages still decode
  (parsers ignore trailing bytes), a chunked one under Sign may not.
- Chunks of one message share a RequestId: C chunks are held per (direction, RequestId)
  and joined when the F chunk arrives (§6.7.2.2); an A chunk drops them and carries an
  error code and reason (:class:`Abort`).

Bounds: per direction at most ``max_partial`` messages under reassembly, each of at most
``max_message`` bytes and ``max_chunks`` chunks; beyond those the message is dropped and
reported (:class:`~otconduit.protocols.events.Malformed`) and its remaining chunks are
skipped.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from otconduit.protocols.events import Malformed
from otconduit.protocols.opcua.binary import DecodeError, Reader
from otconduit.protocols.opcua.chunks import (
    ABORT,
    ACK,
    CLO,
    ERR,
    FINAL,
    HEL,
    MSG,
    OPN,
    RHE,
    Chunk,
)
from otconduit.protocols.opcua.services import KNOWN_TYPES, peek_type_id

POLICY_PREFIX: Final = "http://opcfoundation.org/UA/SecurityPolicy#"
POLICY_NONE: Final = POLICY_PREFIX + "None"
# Size of the symmetric signature that ends each chunk under SecurityMode Sign
# (OPC 10000-7 security policies: HMAC-SHA1 20 bytes, HMAC-SHA256 32 bytes).
SIGNATURE_SIZES: Final = {
    POLICY_PREFIX + "Basic128Rsa15": 20,
    POLICY_PREFIX + "Basic256": 20,
    POLICY_PREFIX + "Basic256Sha256": 32,
    POLICY_PREFIX + "Aes128_Sha256_RsaOaep": 32,
    POLICY_PREFIX + "Aes256_Sha256_RsaPss": 32,
}
SEQUENCE_AT: Final = 16  # MSG/CLO: header 8, channel id 4, token id 4
UNDECIDED_LIMIT: Final = 8  # unreadable chunks before an unknown policy counts as encrypted
MALFORMED_DATA: Final = 256
DEFAULT_MAX_MESSAGE: Final = 16 * 1024 * 1024
DEFAULT_MAX_CHUNKS: Final = 4096
DEFAULT_MAX_PARTIAL: Final = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Where:
    """Where a message was seen: stream offset of its first chunk, the frame and time
    that completed it, its size in bytes (all chunks) and chunk count."""

    offset: int
    frame: int
    ts_ns: int
    size: int
    chunks: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    version: int
    receive_buffer: int
    send_buffer: int
    max_message: int
    max_chunks: int
    endpoint_url: str | None
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledge:
    version: int
    receive_buffer: int
    send_buffer: int
    max_message: int
    max_chunks: int
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportError:
    code: int
    reason: str | None
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class ReverseHello:
    server_uri: str | None
    endpoint_url: str | None
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureMessage:
    """A whole OPN, CLO or MSG message; ``body`` is None when it is encrypted (an OPN
    under a policy other than None)."""

    msg_type: bytes
    channel_id: int
    token_id: int | None  # MSG/CLO
    policy_uri: str | None  # OPN
    sender_certificate: bytes | None  # OPN
    receiver_thumbprint: bytes | None  # OPN
    sequence_number: int | None
    request_id: int | None
    body: bytes | None
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Encrypted:
    """A MSG/CLO chunk whose body cannot be read (``certain``: the channel is known to
    encrypt; otherwise the policy is unknown, e.g. the capture began mid-connection)."""

    msg_type: bytes
    chunk_type: int
    channel_id: int
    certain: bool
    at: Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Abort:
    """An abort chunk: the sender gave up the message of ``request_id``."""

    msg_type: bytes
    channel_id: int
    request_id: int
    code: int | None
    reason: str | None
    at: Where


ChannelEvent = (
    Hello | Acknowledge | TransportError | ReverseHello | SecureMessage | Encrypted | Abort
)


@dataclass(slots=True)
class _Partial:
    """Chunks of one message under reassembly."""

    msg_type: bytes
    channel_id: int
    token_id: int | None
    first: SecureMessage  # the first chunk's headers
    parts: list[bytes]
    size: int  # body bytes so far
    wire: int  # chunk bytes so far


class SecureChannel:
    """Both directions of one UA TCP connection at the secure channel layer."""

    def __init__(
        self,
        *,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        max_partial: int = DEFAULT_MAX_PARTIAL,
    ) -> None:
        self.max_message = max_message
        self.max_chunks = max_chunks
        self.max_partial = max_partial
        self.policy: str | None = None  # from the latest OPN
        self.readable: bool | None = None  # MSG/CLO bodies in clear (None: undecided)
        self.signature_size = 0
        self._undecided = 0
        self._partial: tuple[OrderedDict[tuple[bytes, int], _Partial], ...] = (
            OrderedDict(),
            OrderedDict(),
        )
        self._dropping: tuple[set[tuple[bytes, int]], ...] = (set(), set())
        self._opn_chunks = [0, 0]  # encrypted OPN chunks before their final one

    @property
    def idle(self) -> bool:
        return not any(self._partial) and not any(self._dropping) and not any(self._opn_chunks)

    @property
    def mode(self) -> str | None:
        """The SecurityMode as far as it shows on the wire."""
        if self.policy == POLICY_NONE:
            return "None"
        if self.policy is None or self.readable is None:
            return None
        return "Sign" if self.readable else "SignAndEncrypt"

    def handle(self, direction: int, chunk: Chunk) -> list[ChannelEvent | Malformed]:
        """Events one chunk completes."""
        t = chunk.msg_type
        try:
            if t in (MSG, CLO):
                return self._symmetric(direction, chunk)
            if t == OPN:
                return self._open(direction, chunk)
            r = Reader(chunk.data, 8)
            at = _where(chunk)
            if t == HEL:
                values = [r.u32() for _ in range(5)]
                return [Hello(**_limits(values), endpoint_url=r.string(), at=at)]
            if t == ACK:
                return [Acknowledge(**_limits([r.u32() for _ in range(5)]), at=at)]
            if t == ERR:
                return [TransportError(code=r.u32(), reason=r.string(), at=at)]
            if t == RHE:
                return [ReverseHello(server_uri=r.string(), endpoint_url=r.string(), at=at)]
        except DecodeError as e:
            return [_malformed(f"{t.decode()} chunk: {e}", chunk)]
        return [_malformed(f"unexpected message type {t!r}", chunk)]

    # --- OPN ---------------------------------------------------------------------------

    def _open(self, direction: int, chunk: Chunk) -> list[ChannelEvent | Malformed]:
        r = Reader(chunk.data, 8)
        channel_id = r.u32()
        raw_policy = r.bytestring()
        sender = r.bytestring()
        thumbprint = r.bytestring()
        policy = raw_policy.decode("utf-8", "replace") if raw_policy is not None else None
        if policy != self.policy:
            self.policy = policy
            self.readable = True if policy == POLICY_NONE else None
            self.signature_size = SIGNATURE_SIZES.get(policy or "", 0)
            self._undecided = 0
        head = SecureMessage(
            msg_type=OPN,
            channel_id=channel_id,
            token_id=None,
            policy_uri=policy,
            sender_certificate=sender,
            receiver_thumbprint=thumbprint,
            sequence_number=None,
            request_id=None,
            body=None,
            at=_where(chunk),
        )
        if policy != POLICY_NONE:
            # Encrypted under the receiver's key, its sequence header too.
            if chunk.chunk_type != FINAL:
                self._opn_chunks[direction] += 1
                if chunk.chunk_type == ABORT:
                    self._opn_chunks[direction] = 0
                    return [_malformed("aborted encrypted OpenSecureChannel chunk", chunk)]
                return []
            count = self._opn_chunks[direction] + 1
            self._opn_chunks[direction] = 0
            return [_replace_at(head, count, chunk)]
        return self._sequenced(direction, chunk, r.pos, len(chunk.data), head)

    # --- MSG / CLO ---------------------------------------------------------------------

    def _symmetric(self, direction: int, chunk: Chunk) -> list[ChannelEvent | Malformed]:
        data = chunk.data
        channel_id = int.from_bytes(data[8:12], "little")
        token_id = int.from_bytes(data[12:16], "little")
        if self.readable is None:
            self._decide(chunk)
        if not self.readable:
            return [
                Encrypted(
                    msg_type=chunk.msg_type,
                    chunk_type=chunk.chunk_type,
                    channel_id=channel_id,
                    certain=self.readable is False,
                    at=_where(chunk),
                )
            ]
        end = len(data)
        if self.policy != POLICY_NONE and self.signature_size:
            end = max(SEQUENCE_AT + 8, end - self.signature_size)
        head = SecureMessage(
            msg_type=chunk.msg_type,
            channel_id=channel_id,
            token_id=token_id,
            policy_uri=None,
            sender_certificate=None,
            receiver_thumbprint=None,
            sequence_number=None,
            request_id=None,
            body=None,
            at=_where(chunk),
        )
        return self._sequenced(direction, chunk, SEQUENCE_AT, end, head)

    def _decide(self, chunk: Chunk) -> None:
        """Observe whether MSG/CLO bodies are readable (see the module docstring)."""
        if peek_type_id(chunk.data, SEQUENCE_AT + 8) in KNOWN_TYPES:
            self.readable = True
        elif self.policy is not None:
            self.readable = False
        else:
            self._undecided += 1
            if self._undecided >= UNDECIDED_LIMIT:
                self.readable = False

    # --- sequence header and reassembly ------------------------------------------------

    def _sequenced(
        self, direction: int, chunk: Chunk, at: int, end: int, head: SecureMessage
    ) -> list[ChannelEvent | Malformed]:
        data = chunk.data
        if end - at < 8:
            return [_malformed(f"{chunk.msg_type.decode()} chunk has no sequence header", chunk)]
        seq = int.from_bytes(data[at : at + 4], "little")
        request_id = int.from_bytes(data[at + 4 : at + 8], "little")
        body = data[at + 8 : end]
        key = (chunk.msg_type, request_id)
        partials = self._partial[direction]
        dropping = self._dropping[direction]
        kind = chunk.chunk_type
        if key in dropping:
            if kind != ord("C"):
                dropping.discard(key)
            return []
        if kind == ABORT:
            partials.pop(key, None)
            r = Reader(body)
            try:
                code: int | None = r.u32()
                reason = r.string()
            except DecodeError:
                code, reason = None, None
            return [
                Abort(
                    msg_type=chunk.msg_type,
                    channel_id=head.channel_id,
                    request_id=request_id,
                    code=code,
                    reason=reason,
                    at=_where(chunk),
                )
            ]
        part = partials.get(key)
        if kind == FINAL and part is None:
            return [_complete(head, seq, request_id, body, _where(chunk))]
        out: list[ChannelEvent | Malformed] = []
        if part is None:
            first = _complete(head, seq, request_id, b"", _where(chunk))
            part = _Partial(chunk.msg_type, head.channel_id, head.token_id, first, [], 0, 0)
            partials[key] = part
            while len(partials) > self.max_partial:
                (_, rid), _old = partials.popitem(last=False)
                out.append(_malformed(f"too many chunked messages in flight; dropped {rid}", chunk))
        part.parts.append(body)
        part.size += len(body)
        part.wire += len(data)
        if part.size > self.max_message or len(part.parts) > self.max_chunks:
            del partials[key]
            if kind != FINAL:
                dropping.add(key)
                while len(dropping) > self.max_partial:
                    dropping.pop()
            limit = f"{self.max_message} bytes / {self.max_chunks} chunks"
            out.append(_malformed(f"message of request {request_id} exceeds {limit}", chunk))
            return out
        if kind != FINAL:
            return out
        del partials[key]
        first = part.first
        at_ = Where(
            offset=first.at.offset,
            frame=chunk.frame,
            ts_ns=chunk.ts_ns,
            size=part.wire,
            chunks=len(part.parts),
        )
        joined = b"".join(part.parts)
        out.append(_complete(first, first.sequence_number or 0, request_id, joined, at_))
        return out

    def flush(self) -> list[Malformed]:
        """Messages still under reassembly at the end of the connection."""
        out: list[Malformed] = []
        for partials in self._partial:
            for (t, rid), part in partials.items():
                w = part.first.at
                out.append(
                    Malformed(
                        reason=f"{t.decode()} message of request {rid} unfinished: "
                        f"{len(part.parts)} chunks, no final chunk",
                        offset=w.offset,
                        frame=w.frame,
                        ts_ns=w.ts_ns,
                    )
                )
            partials.clear()
        for d in self._dropping:
            d.clear()
        self._opn_chunks = [0, 0]
        return out


def _limits(v: list[int]) -> dict[str, int]:
    return {
        "version": v[0],
        "receive_buffer": v[1],
        "send_buffer": v[2],
        "max_message": v[3],
        "max_chunks": v[4],
    }


def _where(chunk: Chunk) -> Where:
    return Where(offset=chunk.offset, frame=chunk.frame, ts_ns=chunk.ts_ns, size=chunk.size)


def _complete(
    head: SecureMessage, seq: int, request_id: int, body: bytes, at: Where
) -> SecureMessage:
    return SecureMessage(
        msg_type=head.msg_type,
        channel_id=head.channel_id,
        token_id=head.token_id,
        policy_uri=head.policy_uri,
        sender_certificate=head.sender_certificate,
        receiver_thumbprint=head.receiver_thumbprint,
        sequence_number=seq,
        request_id=request_id,
        body=body,
        at=at,
    )


def _replace_at(head: SecureMessage, chunks: int, chunk: Chunk) -> SecureMessage:
    at = Where(
        offset=head.at.offset, frame=chunk.frame, ts_ns=chunk.ts_ns, size=chunk.size, chunks=chunks
    )
    return SecureMessage(
        msg_type=head.msg_type,
        channel_id=head.channel_id,
        token_id=None,
        policy_uri=head.policy_uri,
        sender_certificate=head.sender_certificate,
        receiver_thumbprint=head.receiver_thumbprint,
        sequence_number=None,
        request_id=None,
        body=None,
        at=at,
    )


def _malformed(reason: str, chunk: Chunk) -> Malformed:
    return Malformed(
        reason=reason,
        offset=chunk.offset,
        frame=chunk.frame,
        ts_ns=chunk.ts_ns,
        data=chunk.data[:MALFORMED_DATA],
    )
