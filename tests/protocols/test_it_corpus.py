"""Every corpus capture holding an IT protocol goes through every IT decoder: the list
of such captures is complete (tshark's protocol hierarchy of every capture), nothing
is reported malformed, and the one SMB message in the corpus (joined mid-session)
agrees with tshark."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from otconduit.protocols.events import Malformed
from otconduit.protocols.it import FRAME_DECODERS, SPECS, frame_decoder_for
from otconduit.protocols.it import smb as itsmb
from otconduit.protocols.it.claims import ItClaim
from tests.streams import flows

from .it_helpers import CORPUS, IT_CAPTURES, IT_PROTOCOLS, needs_corpus, needs_tshark, packets
from .it_helpers import tshark as tshark_rows

pytestmark = [needs_corpus, pytest.mark.shared]


def _hierarchy(capture: Path) -> set[str]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-T", "fields", "-e", "frame.protocols"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return {p for line in out.splitlines() for p in line.split(":")}


@needs_tshark
@pytest.mark.slow
@pytest.mark.tshark
def test_it_corpus_list_is_complete() -> None:
    found = {}
    for capture in sorted(CORPUS.rglob("*")):
        if capture.suffix not in (".pcap", ".pcapng", ".cap"):
            continue
        protocols = _hierarchy(capture) & IT_PROTOCOLS
        if protocols:
            found[str(capture.relative_to(CORPUS))] = protocols
    assert found == IT_CAPTURES


def _decode_all(capture: Path) -> list[object]:
    events: list[object] = []
    for spec in SPECS:
        ports = {s.port for s in spec.well_known}
        for flow in flows(capture, ports):
            if flow.endpoints.transport not in spec.transports:
                continue
            dec = spec.factory(flow.endpoints)
            for d, data, n, frame, ts in flow.chunks:
                if data is None:
                    dec.gap(d, n, frame, ts)
                else:
                    dec.feed(d, data, frame, ts)
            events += dec.finish()
    decoders = {k: cls() for k, cls in FRAME_DECODERS.items()}
    for p in packets(capture):
        kind = frame_decoder_for(p.ethertype, p.payload)
        if kind:
            decoders[kind].feed_frame(p.src_mac or "", p.payload, p.frame, p.ts_ns)
    for dec in decoders.values():
        events += dec.finish()
    return events


@pytest.mark.parametrize("rel", sorted(IT_CAPTURES), ids=lambda r: Path(r).name)
def test_every_decoder_on_every_capture(rel: str) -> None:
    events = _decode_all(CORPUS / rel)
    assert not [e for e in events if isinstance(e, Malformed)]
    assert all(isinstance(e, ItClaim) for e in events)


@needs_tshark
@pytest.mark.tshark
def test_mid_session_smb_agrees_with_tshark() -> None:
    capture = CORPUS / "iti/hart/hart_ip.pcap"
    mine: dict[int, list[list[str]]] = {}
    for flow in flows(capture, {445}):
        dec = itsmb.SmbDecoder(flow.endpoints)
        for d, data, _, frame, ts in flow.chunks:
            if data is not None:
                dec.feed(d, data, frame, ts)
        for _, frame, m in dec.messages:
            mine.setdefault(frame, [[]])[0].append(f"0x{m.command:02x}")
    assert mine == tshark_rows(capture, ["smb.cmd"], "smb")  # Check Directory, frame 115
