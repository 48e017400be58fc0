"""Rewrite a capture's timestamps: the same packets, slower or later (time-stretched lab
recordings stand for longer real periods)."""

from __future__ import annotations

from pathlib import Path

from otconduit.capture.pcapwriter import write_pcap
from otconduit.capture.reader import open_capture


def stretch(src: Path, dst: Path, factor: float, shift_s: float = 0.0) -> None:
    """Gaps between packets multiplied by ``factor``, everything moved by ``shift_s``."""
    packets = []
    with open_capture(src) as reader:
        for block in reader:
            for i in range(len(block)):
                packets.append((int(block.ts_ns[i]), block.data(i), int(block.linktypes[i])))
    t0 = packets[0][0]
    write_pcap(
        dst,
        [(t0 + int((t - t0) * factor + shift_s * 1e9), data) for t, data, _ in packets],
        linktype=packets[0][2],
        nanosecond=True,
    )
