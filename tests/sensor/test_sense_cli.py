"""`conduit sense` and `conduit sensor status` on bad input: one line, non-zero exit,
nothing already stored lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONDUIT = str(Path(sys.executable).parent / "conduit")


def _run(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [CONDUIT, *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_unknown_interface_names_the_ones_there(tmp_path: Path) -> None:
    res = _run("sense", "-i", "eth-nope9", "--db", str(tmp_path / "x.db"))
    _one_line_error(res, "eth-nope9", "lo")
    assert not (tmp_path / "x.db").exists()


def test_interface_or_follow_exactly_one(tmp_path: Path) -> None:
    _one_line_error(_run("sense", "--db", str(tmp_path / "x.db")), "--interface", "--follow")
    _one_line_error(
        _run("sense", "-i", "lo", "--follow", str(tmp_path), "--db", str(tmp_path / "x.db")),
        "exactly one",
    )


def test_follow_folder_missing(tmp_path: Path) -> None:
    res = _run("sense", "--follow", str(tmp_path / "nope"), "--db", str(tmp_path / "x.db"))
    _one_line_error(res, "does not exist")


def test_ring_folder_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    res = _run("sense", "-i", "lo", "--ring", str(tmp_path / "file" / "ring"),
               "--db", str(tmp_path / "x.db"))  # fmt: skip
    _one_line_error(res, "cannot create ring folder")


def test_bad_engine_and_format(tmp_path: Path) -> None:
    _one_line_error(_run("sense", "-i", "lo", "--engine", "wireshark"), "dumpcap or tcpdump")
    _one_line_error(
        _run("sense", "-i", "lo", "--export-format", "xml", "--export-file", "x"), "jsonl or cef"
    )
    _one_line_error(_run("sense", "-i", "lo", "--syslog", "nohost"), "HOST:PORT")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dumpcap") is None,
                    reason="needs root (to become an unprivileged user) and dumpcap")  # fmt: skip
def test_no_capture_permission_is_one_line(tmp_path: Path) -> None:
    """An unprivileged user without CAP_NET_RAW: dumpcap's own reason, in one line, and
    the sensor marked failed (the database it could write is intact)."""
    import tempfile

    del tmp_path  # its parents are private to root
    work = Path(tempfile.mkdtemp(prefix="conduit-nobody-"))
    try:
        work.chmod(0o777)
        db = work / "x.db"
        res = _run("sense", "-i", "lo", "--db", str(db), "--ring", str(work / "ring"),
                   user="65534")  # fmt: skip
        _one_line_error(res, "dumpcap")
        st = _run("sensor", "status", "--db", str(db), "-f", "json")
        assert '"state": "failed"' in st.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_status_without_sensor(tmp_path: Path) -> None:
    _one_line_error(_run("sensor", "status", "--db", str(tmp_path / "none.db")), "no database")


def test_bad_rules_file_fails_before_capture(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("severity: [unclosed\n")
    res = _run("sense", "-i", "lo", "--rules", str(rules), "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_ring_disk_nearly_full_raises_a_health_alert(tmp_path: Path) -> None:
    """A ring on a disk with little room left: the sensor says so (an alert and a line in
    its status) instead of going blind quietly."""
    import json

    ring = tmp_path / "ring"
    ring.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(ring)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        from otconduit.capture import pcapwriter as pw

        pw.write_pcap(ring / "a.pcap", [(1_000_000_000, bytes(60))])
        db = tmp_path / "x.db"
        res2 = _run("sense", "--follow", str(ring), "--db", str(db), "--duration", "1")
        assert res2.returncode == 0, res2.stderr
        alerts = json.loads(_run("alerts", "--db", str(db), "-f", "json").stdout)
        assert [a["rule"] for a in alerts] == ["sensor-disk-low"]
        assert alerts[0]["severity"] == "high" and "MiB free" in alerts[0]["summary"]
        st = json.loads(_run("sensor", "status", "--db", str(db), "-f", "json").stdout)
        assert any("ring disk nearly full" in p for p in st["problems"])
    finally:
        subprocess.run(["umount", str(ring)], capture_output=True)


def test_drops_in_a_followed_ring_raise_sensor_drops(tmp_path: Path) -> None:
    """Another tool's pcapng ring says, in its Interface Statistics Blocks, what it lost:
    the sensor reports it (status and a sensor-drops alert)."""
    import json
    import struct

    from otconduit.capture import pcapwriter as pw

    ring = tmp_path / "ring"
    ring.mkdir()
    opts = b"".join(struct.pack("<HHQ", code, 8, v) for code, v in ((4, 1000), (5, 7), (7, 3)))
    isb = pw.pcapng_block(5, struct.pack("<III", 0, 0, 0) + opts + bytes(4))
    data = pw.pcapng_shb() + pw.pcapng_idb(pw.Interface(1))
    (ring / "a.pcapng").write_bytes(data + pw.pcapng_epb(0, 5, bytes(60)) + isb)
    db = tmp_path / "x.db"
    res = _run("sense", "--follow", str(ring), "--db", str(db), "--duration", "0")
    assert res.returncode == 0, res.stderr
    st = json.loads(_run("sensor", "status", "--db", str(db), "-f", "json").stdout)
    assert st["drops_kernel"] == 10 and st["drops_capture"] == 0
    alerts = json.loads(_run("alerts", "--db", str(db), "-f", "json").stdout)
    drops = [a for a in alerts if a["rule"] == "sensor-drops"]
    assert drops and "10 packets dropped by the kernel" in drops[0]["summary"]
