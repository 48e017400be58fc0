"""``conduit evidence ALERT -w out.pcap``: just the packets an alert stands on, cut from
the original capture files, so an analyst (or Wireshark) sees exactly what we saw."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from otconduit.capture.pcapwriter import write_pcap
from otconduit.capture.reader import CaptureError, open_capture
from otconduit.detect.alerts import AlertError
from otconduit.store import alerts as stored
from otconduit.store.sensing import kept_evidence
from otconduit.store.sqlite import Store


@dataclass(slots=True)
class EvidenceReport:
    packets: int = 0
    captures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # capture files no longer readable


def evidence_frames(store: Store, alert_id: int) -> dict[tuple[str, str], set[int]]:
    """Frames per (capture sha256, path) that the alert cites."""
    if not stored.exists(store, alert_id):
        raise AlertError(f"no alert with id {alert_id}: list them with `conduit alerts`")
    frames: dict[tuple[str, str], set[int]] = {}
    for sha, path, text in stored.evidence_frames(store, alert_id):
        # A sensor's detection keys its epochs "<sensor sha>#<epoch>"; the packets it
        # kept are filed under the sensor's own key.
        frames.setdefault((sha.split("#", 1)[0], path), set()).update(json.loads(text))
    return frames


def write_evidence(store: Store, alert_id: int, out: str | Path) -> EvidenceReport:
    """Write the alert's evidence frames (in capture order) to a pcap file."""
    wanted = evidence_frames(store, alert_id)
    rep = EvidenceReport()
    packets: list[tuple[int, bytes]] = []
    linktypes: set[int] = set()
    for (sha, path), frames in wanted.items():
        if not frames:
            continue
        if sha.startswith("sensor:"):  # copied out of the ring when the alert was raised
            kept = kept_evidence(store, sha, frames)
            for ts, lt, data in kept:
                packets.append((ts, data))
                linktypes.add(lt)
            (rep.captures if kept else rep.missing).append(path)
            continue
        last = max(frames)
        try:
            with open_capture(path) as reader:
                for block in reader:
                    lo = block.first_frame
                    if lo > last:
                        break
                    for fr in sorted(f for f in frames if lo <= f < lo + len(block)):
                        i = fr - lo
                        packets.append((int(block.ts_ns[i]), block.data(i)))
                        linktypes.add(int(block.linktypes[i]))
        except (CaptureError, OSError):
            rep.missing.append(path)
            continue
        rep.captures.append(path)
    if not packets:
        where = f" ({', '.join(rep.missing)} not readable)" if rep.missing else ""
        raise AlertError(f"alert {alert_id} has no packet evidence to write{where}")
    if len(linktypes) > 1:
        raise AlertError(
            f"alert {alert_id}'s evidence mixes link types {sorted(linktypes)}; "
            "pcap holds one: export per capture with tshark instead"
        )
    rep.packets = write_pcap(out, packets, linktype=linktypes.pop(), nanosecond=True)
    return rep
