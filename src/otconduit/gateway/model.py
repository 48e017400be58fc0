"""Tag samples: the one record every collector produces and every sink consumes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Quality(StrEnum):
    GOOD = "good"
    BAD = "bad"  # the device answered with an error, or the value could not be decoded
    STALE = "stale"  # no fresh value within the tag's staleness limit (device unreachable)


Value = float | int | bool | str | None


@dataclass(slots=True)
class TagSample:
    """One value of one tag. ``path`` is the full ISA-95 path
    (enterprise/site/area/line/cell/tag); ``source_ts_ns`` is the device's timestamp when
    the protocol gives one (OPC UA), else None; ``recv_ts_ns`` is when the gateway got it.
    ``historical`` marks samples replayed from the store-and-forward buffer.

    Treat a sample as immutable once emitted: only the runtime writes ``seq``, before any
    sink sees it. (Not ``frozen``: a frozen dataclass takes 3.5x as long to build, and
    every sample of a 100k/s gateway is built once.)"""

    path: str
    value: Value
    quality: Quality
    recv_ts_ns: int
    unit: str = ""
    source_ts_ns: int | None = None
    reason: str = ""  # why quality is not good
    historical: bool = False
    seq: int = 0  # per-gateway sample sequence (store-and-forward / diode ordering)

    @property
    def ts_ns(self) -> int:
        """The sample's time of record: the source's if known, else the gateway's."""
        return self.source_ts_ns if self.source_ts_ns is not None else self.recv_ts_ns


# PackML (ISA-TR88.00.02) state numbers: what a machine's state tag means when its
# config says ``states: packml`` (or says nothing). The lab's packaging machine uses the
# same numbers (otconduit.lab.packml.State); the console must not import the lab.
PACKML_STATES: dict[int, str] = {
    0: "UNDEFINED",
    1: "CLEARING",
    2: "STOPPED",
    3: "STARTING",
    4: "IDLE",
    5: "SUSPENDED",
    6: "EXECUTE",
    7: "STOPPING",
    8: "ABORTING",
    9: "ABORTED",
    10: "HOLDING",
    11: "HELD",
    12: "UNHOLDING",
    13: "SUSPENDING",
    14: "UNSUSPENDING",
    15: "RESETTING",
    16: "COMPLETING",
    17: "COMPLETE",
}
