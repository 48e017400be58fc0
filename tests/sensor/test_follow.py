"""The ring follower: files in order, frames numbered on, growing files read as they
grow, restarts resumed from a cursor, rotated-away files counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from otconduit.capture import pcapwriter as pw
from otconduit.capture.follow import Cursor, RingFollower
from otconduit.capture.reader import open_capture
from tests.conftest import CORPUS, needs_shared

MODBUS = CORPUS / "iti" / "ModbusTCP" / "ModbusTCP.pcap"
needs_editcap = pytest.mark.skipif(
    shutil.which("editcap") is None, reason="editcap (Wireshark) is not installed"
)


def _split(src: Path, folder: Path, per_file: int) -> list[Path]:
    """Split a capture into a ring the way a capture tool writes one (editcap -c)."""
    folder.mkdir()
    subprocess.run(["editcap", "-c", str(per_file), str(src), str(folder / "ring.pcap")],
                   check=True)  # fmt: skip
    old = time.time() - 5  # written a while ago: finished files
    files = sorted(folder.iterdir())
    for i, f in enumerate(files):
        os.utime(f, (old + i * 0.01, old + i * 0.01))
    return files


def _stamps(src: Path) -> np.ndarray:
    with open_capture(src) as r:
        return np.concatenate([b.ts_ns for b in r])


def _follow_all(f: RingFollower) -> tuple[np.ndarray, list[int]]:
    ts, firsts = [], []
    for b in f.poll():
        ts.append(b.ts_ns.copy())
        firsts.append(b.first_frame)
    return (np.concatenate(ts) if ts else np.zeros(0, np.int64)), firsts


@needs_shared
@needs_editcap
def test_split_ring_reads_as_the_original(tmp_path: Path) -> None:
    _split(MODBUS, tmp_path / "ring", 1000)
    f = RingFollower(tmp_path / "ring")
    f.stopping = True  # the writer is done: every file to its end
    got, firsts = _follow_all(f)
    want = _stamps(MODBUS)
    assert len(got) == len(want) and (got == want).all()
    assert firsts[0] == 1 and f.stats.files_done == 16
    # frames number on across files, as in the capture itself
    assert f.cursor.next_frame == len(want) + 1


@needs_shared
@needs_editcap
def test_last_file_is_followed_not_finished(tmp_path: Path) -> None:
    _split(MODBUS, tmp_path / "ring", 1000)
    f = RingFollower(tmp_path / "ring")
    got, _ = _follow_all(f)
    # Every file but the newest is finished; the newest may still grow.
    assert f.stats.files_done == 15 and len(got) == len(_stamps(MODBUS))
    assert f.cursor.file.startswith("ring_00015") and f.cursor.packets == 387


@needs_shared
@needs_editcap
def test_resume_from_cursor_neither_loses_nor_repeats(tmp_path: Path) -> None:
    _split(MODBUS, tmp_path / "ring", 1000)
    want = _stamps(MODBUS)
    f = RingFollower(tmp_path / "ring")
    part = []
    for b in f.poll():
        part.append(b.ts_ns.copy())
        if sum(len(p) for p in part) > 5000:
            break
    cur = f.cursor
    f.close()
    g = RingFollower(tmp_path / "ring", start=Cursor(cur.file, cur.packets, cur.first_frame))
    g.stopping = True
    rest, firsts = _follow_all(g)
    got = np.concatenate([*part, rest])
    assert len(got) == len(want) and (got == want).all()
    assert firsts[0] == cur.next_frame


@needs_shared
@needs_editcap
def test_file_rotated_away_before_restart_is_counted(tmp_path: Path) -> None:
    files = _split(MODBUS, tmp_path / "ring", 1000)
    files[3].unlink()
    cur = Cursor(files[3].name, 10, 3001)
    g = RingFollower(tmp_path / "ring", start=cur)
    g.stopping = True
    got, firsts = _follow_all(g)
    assert g.stats.files_lost == 1
    assert firsts[0] == 3011  # numbering goes on as if the rest of the lost file was there
    assert len(got) == len(_stamps(MODBUS)) - 4000


def test_growing_file_is_read_as_it_grows(tmp_path: Path) -> None:
    """A writer mid-record: the follower waits for the rest, never reports damage."""
    ring = tmp_path / "ring"
    ring.mkdir()
    frames = [bytes(range(60)) + bytes([i]) * 40 for i in range(30)]
    data = pw.pcapng_shb() + pw.pcapng_idb(pw.Interface(1))
    records = [pw.pcapng_epb(0, 1_000_000 + i, fr) for i, fr in enumerate(frames)]
    path = ring / "live.pcapng"
    path.write_bytes(data)
    f = RingFollower(ring)
    assert _follow_all(f)[0].size == 0
    body = b"".join(records)
    cut = len(records[0]) * 10 + 17  # ten records and part of the eleventh
    with path.open("ab") as fh:
        fh.write(body[:cut])
    got1, _ = _follow_all(f)
    assert len(got1) == 10
    with path.open("ab") as fh:
        fh.write(body[cut:])
    got2, firsts = _follow_all(f)
    assert len(got2) == 20 and firsts == [11]
    assert f.stats.errors == [] and f.stats.files_done == 0
    # A newer file appears and the old one stops growing: it is finished.
    (ring / "live2.pcapng").write_bytes(data + records[0])
    time.sleep(0.35)
    _follow_all(f)
    _got3, _ = _follow_all(f)
    assert f.stats.files_done == 1 and f.cursor.file == "live2.pcapng"


def test_not_a_capture_in_the_ring_is_skipped_and_said(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "a.txt").write_bytes(b"hello, not a capture" * 300)
    data = pw.pcapng_shb() + pw.pcapng_idb(pw.Interface(1))
    (ring / "b.pcapng").write_bytes(data + pw.pcapng_epb(0, 5, bytes(60)))
    old = time.time() - 5
    os.utime(ring / "a.txt", (old, old))
    f = RingFollower(ring)
    f.stopping = True
    got, _ = _follow_all(f)
    assert len(got) == 1 and f.stats.files_unreadable == 1
    assert "not a pcap or pcapng" in f.stats.errors[0]
