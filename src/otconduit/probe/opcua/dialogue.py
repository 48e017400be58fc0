"""The OPC UA identification dialogue: HEL, OPN (SecurityPolicy None), GetEndpoints,
CLO. No session is created and nothing in the address space is read."""

from __future__ import annotations

from otconduit.probe.base import (
    ANSWERED,
    IDENTIFIED,
    REFUSED,
    Dialogue,
    Message,
    Outcome,
    ProbeError,
)
from otconduit.probe.opcua.codec import (
    Endpoint,
    UaError,
    close_secure_channel,
    get_endpoints,
    hello,
    message_length,
    open_secure_channel,
    parse_ack,
    parse_get_endpoints,
    parse_open,
    symmetric_body,
)

FILLED = "secure channel id and token id (zero here) are taken from the server's OPN answer"
MORE = Message(b"", "(the answer continues in another chunk)")


class OpcUaProbe(Dialogue):
    protocol = "opcua"
    title = "OPC UA"
    default_port = 4840

    def __init__(self, ip: str, port: int) -> None:
        super().__init__(ip, port)
        host = f"[{ip}]" if ":" in ip else ip
        self.url = f"opc.tcp://{host}:{port}"
        self._step = 0
        self._channel = (0, 0)
        self._chunks: list[bytes] = []
        self._claims: list[tuple[str, str]] = []
        self._refused: str | None = None
        self._answered = False

    def plan(self) -> list[Message]:
        return [
            Message(hello(self.url), f"OPC UA Hello, endpoint {self.url}"),
            Message(open_secure_channel(), "OPC UA OpenSecureChannel, SecurityPolicy None"),
            Message(get_endpoints(self.url), "OPC UA GetEndpoints (no session)", note=FILLED),
            Message(
                close_secure_channel(),
                "OPC UA CloseSecureChannel (no answer expected)",
                expects_answer=False,
                note=FILLED,
            ),
        ]

    def first(self) -> Message:
        return self.plan()[0]

    def frame(self, buf: bytes) -> int | None:
        try:
            return message_length(buf)
        except UaError as exc:
            raise ProbeError(str(exc)) from None

    def answer(self, data: bytes) -> Message | None:
        try:
            return self._answer(data)
        except UaError as exc:
            if self._step == 0:
                raise ProbeError(str(exc)) from None
            self._refused = str(exc)
            return None

    def _answer(self, data: bytes) -> Message | None:
        chan, token = self._channel
        if self._step == 0:
            ack = parse_ack(data)
            if ack.error:
                self._refused = f"Hello refused: 0x{ack.error:08x} {ack.reason}".strip()
                return None
            self._answered = True
            self._step = 1
            return Message(open_secure_channel(), "OPC UA OpenSecureChannel, SecurityPolicy None")
        if self._step == 1:
            ch = parse_open(data)
            if ch.status:
                self._refused = f"OpenSecureChannel refused: status 0x{ch.status:08x}"
                return None
            self._channel = (ch.channel_id, ch.token_id)
            self._step = 2
            return Message(
                get_endpoints(self.url, ch.channel_id, ch.token_id),
                "OPC UA GetEndpoints (no session)",
            )
        if data[:3] == b"MSG" and data[3:4] == b"C":
            self._chunks.append(data)
            return MORE
        if data[:3] != b"MSG" or data[3:4] != b"F":
            raise UaError(f"expected the GetEndpoints answer, got {data[:4]!r}")
        self._chunks.append(data)
        found = parse_get_endpoints(symmetric_body(self._chunks))
        if found.status:
            self._refused = f"GetEndpoints refused: status 0x{found.status:08x}"
        self._claims = _claims(found.endpoints)
        self._step = 3
        return Message(
            close_secure_channel(chan, token),
            "OPC UA CloseSecureChannel (no answer expected)",
            expects_answer=False,
        )

    def outcome(self) -> Outcome:
        if self._claims:
            return Outcome(IDENTIFIED, "GetEndpoints", list(self._claims))
        if self._refused:
            return Outcome(REFUSED, self._refused)
        return Outcome(ANSWERED, "no endpoints described")


def _claims(endpoints: list[Endpoint]) -> list[tuple[str, str]]:
    """The server's application description and the security it offers."""
    out: list[tuple[str, str]] = []
    for attr, key in (
        ("application_name", "application_name"),
        ("product_uri", "product_uri"),
        ("application_uri", "application_uri"),
    ):
        value = next((getattr(e, key) for e in endpoints if getattr(e, key)), None)
        if value:
            out.append((attr, value))
    modes = sorted({e.security_mode for e in endpoints})
    if modes:
        out.append(("security_modes", ", ".join(modes)))
    policies = sorted({(e.security_policy or "").rsplit("#", 1)[-1] for e in endpoints} - {""})
    if policies:
        out.append(("security_policies", ", ".join(policies)))
    return out
