"""Data-diode mode: tag samples from OT to IT over one-way UDP.

    OT: collectors -> DiodeSendSink --UDP only--> DiodeReceiver -> sinks (historian, MQTT)

- ``wire``: datagram layout (magic, version, session, counter, kinds DATA / PARITY /
  HEARTBEAT), HMAC-SHA256 (16 bytes) on every datagram.
- ``batch``: a batch of samples as one compact payload (binary records, zlib).
- ``fec``: Reed-Solomon erasure code; ``k`` data + ``m`` parity datagrams per group,
  any ``m`` losses per group recovered.
- ``encoder`` / ``decoder``: the two halves of the protocol, sans-I/O. The decoder
  verifies, refuses forged/garbled/replayed datagrams and counts them, reorders within
  a window, rebuilds from parity and reports exact gaps (DATA sequence ranges, and the
  sample ``seq`` range when known) beyond the FEC budget, then carries on.
- ``sender`` (OT side, a gateway ``Sink``) and ``receiver`` (IT side): asyncio + UDP.
- ``keys``: the shared key file, ``keycheck``: weak keys refused; ``seal``: optional
  payload encryption (ChaCha20-Poly1305); ``ledger``: the sessions a receiver has seen,
  on disk, so replays are refused across restarts; ``jsonl``: samples and events as
  JSON lines.

A software diode is a policy control, not a physical guarantee. The sender never reads
from the network and the receiver never sends, and a firewall (nftables) can drop every
packet from IT to OT; but a compromised host, a misconfiguration or a firewall change
can open the return path again. A hardware data diode (an optical link with no
return fibre) makes the return path physically impossible. Where IEC 62443 zone
requirements or a regulator call for unidirectional gateways, use hardware and run this
protocol across it: it needs nothing back, which is exactly what a hardware diode
allows.
"""

from otconduit.gateway.diode.decoder import (
    DiodeDecoder,
    Event,
    Gap,
    LinkDown,
    LinkUp,
    ReceiverSettings,
    Rejected,
    Samples,
    SenderDropped,
    SessionEnded,
    SessionStarted,
)
from otconduit.gateway.diode.encoder import DiodeEncoder, FecParams
from otconduit.gateway.diode.keycheck import WeakKeyError
from otconduit.gateway.diode.keys import KeyFileError, WeakKeyFileError, generate_key, load_key
from otconduit.gateway.diode.ledger import LedgerError, SessionLedger
from otconduit.gateway.diode.receiver import DiodeReceiver, SinkFanout
from otconduit.gateway.diode.sender import DEFAULT_PORT, DiodeSendSink, SenderSettings

__all__ = [
    "DEFAULT_PORT",
    "DiodeDecoder",
    "DiodeEncoder",
    "DiodeReceiver",
    "DiodeSendSink",
    "Event",
    "FecParams",
    "Gap",
    "KeyFileError",
    "LedgerError",
    "LinkDown",
    "LinkUp",
    "ReceiverSettings",
    "Rejected",
    "Samples",
    "SenderDropped",
    "SenderSettings",
    "SessionEnded",
    "SessionLedger",
    "SessionStarted",
    "SinkFanout",
    "WeakKeyError",
    "WeakKeyFileError",
    "generate_key",
    "load_key",
]
