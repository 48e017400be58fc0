"""Diode hardening on real loopback sockets: recorded sessions replayed to a restarted
or a running receiver, sender clocks beyond the skew bound, payload encryption, and weak
keys refused by the library and the CLI."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from otconduit.gateway.diode import (
    DiodeReceiver,
    DiodeSendSink,
    LinkDown,
    ReceiverSettings,
    Rejected,
    SenderSettings,
    WeakKeyError,
    batch,
    generate_key,
    load_key,
    wire,
)
from otconduit.gateway.diode.decoder import Event
from otconduit.gateway.diode.encoder import DiodeEncoder
from otconduit.gateway.diode.ledger import ENDED, LedgerError, SessionLedger
from otconduit.gateway.model import Quality, TagSample

KEY = bytes.fromhex("9c2b7e04d1a85f36e0c4b9172d8a6f53c1e07b92a4d6f8310b5e2c7d9a04f61e")
OTHER = bytes.fromhex("2d7f1a94c0e3b8566a1fd2c4e97b0385f1a62d4c8e0b7f9316d5a2e4c07b9f18")
RX_HOST = "127.0.91.1"  # receivers listen here; senders send from the kernel's choice


def _samples(n: int, start: int = 1) -> list[TagSample]:
    return [
        TagSample(path=f"acme/s1/area/line/cell/secret_tag{i % 5}", value=i, unit="bar",
                  quality=Quality.GOOD, recv_ts_ns=1_700_000_000_000_000_000 + i, seq=i)
        for i in range(start, start + n)
    ]  # fmt: skip


class Collect:
    def __init__(self) -> None:
        self.samples: list[TagSample] = []

    async def __call__(self, samples: Sequence[TagSample]) -> None:
        self.samples.extend(samples)


async def until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


def processed(rx: DiodeReceiver) -> int:
    """Datagrams the receiver has judged, accepted or not."""
    st = rx.status()
    return int(st["datagrams"] + st["forged"] + st["malformed"] + st["replayed"])


async def send_session(
    key: bytes, host: str, port: int, samples: list[TagSample],
    settings: SenderSettings | None = None,
) -> list[bytes]:  # fmt: skip
    """One sender session over UDP to ``host:port``; every datagram as it went out (what
    anyone on the link can record)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: list[bytes] = []

    def tap(d: bytes) -> None:
        sent.append(d)
        udp.sendto(d, (host, port))

    tx = DiodeSendSink(key, settings=settings or SenderSettings(linger=0.005), transport=tap)
    await tx.start()
    await tx.write(samples)
    await tx.close()
    udp.close()
    return sent


async def replay(datagrams: list[bytes], host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i, d in enumerate(datagrams):
            udp.sendto(d, (host, port))
            if i % 32 == 31:
                await asyncio.sleep(0.001)


def _reasons(events: list[Event]) -> set[str]:
    return {e.reason for e in events if isinstance(e, Rejected)}


# -- replay -------------------------------------------------------------------------------


def test_recorded_session_replayed_to_a_restarted_receiver_is_refused(tmp_path: Path) -> None:
    sessions = tmp_path / "out.jsonl.diode-sessions"

    async def main() -> tuple[Collect, Collect, dict, list[Event], list[bytes]]:
        first = Collect()
        rx = DiodeReceiver([KEY], first, session_file=sessions)
        host, port = await rx.start(RX_HOST, 0)
        recording = await send_session(KEY, host, port, _samples(300))
        await until(lambda: processed(rx) == len(recording), what="the live session")
        await rx.close()
        # A new receiver process: same key, same session file, never saw these bytes.
        again, events = Collect(), []
        rx2 = DiodeReceiver([KEY], again, on_event=events.append, session_file=sessions)
        host, port = await rx2.start(RX_HOST, 0)
        await replay(recording, host, port)
        await until(lambda: processed(rx2) == len(recording), what="the replay")
        await rx2.close()
        return first, again, rx2.status(), events, recording

    first, again, st, events, recording = asyncio.run(main())
    assert [s.seq for s in first.samples] == list(range(1, 301))
    assert again.samples == [], "a replayed session was delivered again"
    assert st["replayed"] == len(recording) and st["sessions"] == 0 and st["datagrams"] == 0
    assert _reasons(events) == {
        f"counter {c} accepted before the receiver restarted" for c in range(len(recording))
    }
    assert sessions.stat().st_mode & 0o777 == 0o600
    assert recording[0][4:12].hex() in sessions.read_text()


def test_replay_to_a_running_receiver_after_its_sender_went_quiet_is_refused(
    tmp_path: Path,
) -> None:
    """Session A is recorded; the receiver restarts, sender B runs and goes quiet for the
    link timeout (when a sender with a stepped-back clock may take over): A is refused."""
    sessions = tmp_path / "rx.diode-sessions"

    async def main() -> tuple[Collect, dict, list[Event], list[bytes]]:
        rx = DiodeReceiver([KEY], Collect(), session_file=sessions)
        host, port = await rx.start(RX_HOST, 0)
        recording = await send_session(KEY, host, port, _samples(100))
        await until(lambda: processed(rx) == len(recording))
        await rx.close()

        got, events = Collect(), []
        rx = DiodeReceiver(
            [KEY], got, on_event=events.append, session_file=sessions,
            settings=ReceiverSettings(link_timeout=0.3),
        )  # fmt: skip
        host, port = await rx.start(RX_HOST, 0)
        live = await send_session(KEY, host, port, _samples(50, start=1001))
        await until(lambda: any(isinstance(e, LinkDown) for e in events), what="link down")
        before = processed(rx)
        await replay(recording, host, port)
        await until(lambda: processed(rx) == before + len(recording), what="the replay")
        await asyncio.sleep(0.1)
        await rx.close()
        assert before == len(live)
        return got, rx.status(), events, recording

    got, st, events, recording = asyncio.run(main())
    assert [s.seq for s in got.samples] == list(range(1001, 1051)), "only the live session"
    assert st["replayed"] == len(recording) and st["sessions"] == 1
    assert _reasons(events) == {"datagram of an ended or older session"}


def test_a_live_sender_carries_on_across_a_receiver_restart(tmp_path: Path) -> None:
    """The session file must not cost availability: a sender that keeps running while
    the receiver restarts is resumed above the last counter the receiver accepted."""
    sessions = tmp_path / "rx.diode-sessions"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((RX_HOST, 0))
        port = int(probe.getsockname()[1])

    async def main() -> tuple[Collect, Collect, dict]:
        tx = DiodeSendSink(KEY, host=RX_HOST, port=port, settings=SenderSettings(linger=0.005))
        await tx.start()
        first, second = Collect(), Collect()
        rx = DiodeReceiver([KEY], first, session_file=sessions)
        await rx.start(RX_HOST, port)
        await tx.write(_samples(100))
        await until(lambda: len(first.samples) == 100)
        await rx.close()
        rx = DiodeReceiver([KEY], second, session_file=sessions)
        await rx.start(RX_HOST, port)
        await tx.write(_samples(100, start=101))
        await until(lambda: len(second.samples) == 100)
        await tx.close()
        await rx.close()
        return first, second, rx.status()

    first, second, st = asyncio.run(main())
    assert [s.seq for s in first.samples] == list(range(1, 101))
    assert [s.seq for s in second.samples] == list(range(101, 201))
    assert st["sessions"] == 1 and st["replayed"] == 0 and st["lost"] == 0


def test_session_file_is_bounded_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "s"
    ledger = SessionLedger(path, limit=3)
    for i in range(5):
        ledger.started(bytes([i]) * 8, i)
    ledger.save()
    again = SessionLedger(path, limit=3)
    assert len(again) == 3 and again.floor(bytes([0]) * 8) is None
    assert again.floor(bytes([4]) * 8) == 4 and again.floor(bytes([3]) * 8) == ENDED
    again.advance(bytes([4]) * 8, 9, 70)
    assert (again.floor(bytes([4]) * 8), again.next_seq(bytes([4]) * 8)) == (9, 70)
    path.write_text("something else\n")
    with pytest.raises(LedgerError, match="not a diode session file"):
        SessionLedger(path)


def _old_session(offset_s: float, n: int = 40) -> list[bytes]:
    """A complete session whose sender clock is ``offset_s`` from now."""
    enc = DiodeEncoder(wire.Authenticator(KEY))
    ms = time.time_ns() // 1_000_000 + int(offset_s * 1000)
    out = [enc.heartbeat(ms, interval_ms=1000, dropped=0)]
    for i in range(0, n, 4):
        out += enc.data(batch.encode(_samples(4, start=i + 1)), ms)
    return [*out, *enc.flush(ms), enc.heartbeat(ms, interval_ms=1000, dropped=0)]


def test_sessions_outside_the_clock_bound_are_refused_by_default() -> None:
    """A receiver that has never seen a session and keeps no session file still refuses
    one recorded an hour ago (or dated an hour ahead): max_skew is on by default."""
    stale, ahead, fresh = _old_session(-3600), _old_session(+3600), _old_session(-5)

    async def main() -> tuple[Collect, dict, list[Event]]:
        got, events = Collect(), []
        rx = DiodeReceiver([KEY], got, on_event=events.append)
        host, port = await rx.start(RX_HOST, 0)
        await replay(stale + ahead, host, port)
        await until(lambda: processed(rx) == len(stale) + len(ahead))
        assert got.samples == []
        await replay(fresh, host, port)  # control: five seconds off is within the bound
        await until(lambda: len(got.samples) == 40, what="the fresh session")
        await rx.close()
        return got, rx.status(), events

    got, st, events = asyncio.run(main())
    assert st["skewed"] == st["replayed"] == len(stale) + len(ahead)
    assert st["sessions"] == 1 and [s.seq for s in got.samples] == list(range(1, 41))
    reasons = _reasons(events)
    assert any(r.startswith("sender clock +3600") and "max skew 300 s" in r for r in reasons)
    assert any(r.startswith("sender clock -3600") for r in reasons)
    assert ReceiverSettings().max_skew == 300.0


# -- encryption ---------------------------------------------------------------------------


def test_encrypted_datagrams_hide_the_samples_and_need_the_key() -> None:
    samples = _samples(200)
    sealed = SenderSettings(encrypt=True, compress=False, mtu=400, linger=0.005)
    clear = SenderSettings(compress=False, mtu=400, linger=0.005)

    async def main() -> tuple[list[bytes], list[bytes], Collect, dict, Collect, dict]:
        got = Collect()
        rx = DiodeReceiver([KEY], got, settings=ReceiverSettings(require_encryption=True))
        host, port = await rx.start(RX_HOST, 0)
        secret = await send_session(KEY, host, port, samples, sealed)
        await until(lambda: processed(rx) == len(secret))
        plain = await send_session(KEY, host, port, _samples(20, 501), clear)
        await until(lambda: processed(rx) == len(secret) + len(plain))
        await rx.close()

        wrong = Collect()  # someone who recorded the link, with a key of their own
        spy = DiodeReceiver([OTHER], wrong)
        host, port = await spy.start(RX_HOST, 0)
        await replay(secret, host, port)
        await until(lambda: processed(spy) == len(secret))
        await spy.close()
        return secret, plain, got, rx.status(), wrong, spy.status()

    secret, plain, got, st, wrong, spy = asyncio.run(main())
    assert got.samples == samples, "round trip through encryption"
    assert max(len(d) for d in secret) <= 400, "the tag fits in the MTU"
    data = [d for d in plain if d[3] == wire.Kind.DATA]
    assert data and all(b"secret_tag" in d for d in data), "control: clear text is readable"
    for d in secret:
        assert d[3] & wire.SEALED
        assert b"secret_tag" not in d and b"acme/s1" not in d
    assert st["malformed"] == len(plain), "this receiver requires encryption"
    assert wrong.samples == [] and spy["forged"] == len(secret)
    res = wire.parse(secret[1], wire.Authenticator(OTHER))
    assert isinstance(res, wire.Invalid) and res.category == "forged"


# -- weak keys ----------------------------------------------------------------------------

WEAK = {
    "password": b"passwordpassword",
    "password-newline": b"passwordpassword\n",
    "zeros": bytes(32),
    "short": b"k3y!",
    "counting": bytes(range(32)),
    "pattern": bytes.fromhex("deadbeef") * 8,
    "few-values": bytes([1, 2, 3, 4] * 3 + [4, 3, 2, 1] * 3),
    "typed": b"plant1-diode-2024",
}


@pytest.mark.parametrize("name", sorted(WEAK))
def test_weak_keys_are_refused_by_the_library(name: str) -> None:
    key = WEAK[name]
    with pytest.raises(WeakKeyError, match="weak diode key"):
        wire.Authenticator(key)
    with pytest.raises(WeakKeyError):
        DiodeSendSink(key)
    with pytest.raises(WeakKeyError):
        DiodeReceiver([KEY, key], Collect())  # an old key kept for rotation is checked too


def test_strong_keys_are_accepted(tmp_path: Path) -> None:
    wire.Authenticator(load_key(generate_key(tmp_path / "k")), OTHER)
    wire.Authenticator(bytes.fromhex("45c1b0d4e6a2f39807bd5c6e1f2a3b4c"))  # 128 random bits
    wire.Authenticator(b"Wq7#pZ2!vR9@kL4$mN8%xT3^bJ6&cF1*")  # typed, but random characters


CLI = [sys.executable, "-m", "otconduit.cli.diode_cmd"]


@pytest.mark.parametrize("name", ["password-newline", "zeros", "pattern"])
def test_weak_key_files_exit_2_with_one_line(tmp_path: Path, name: str) -> None:
    from typer.testing import CliRunner

    from otconduit.cli.diode_cmd import diode_app

    path = tmp_path / "weak.key"
    path.write_bytes(WEAK[name] if name != "zeros" else b"00" * 32 + b"\n")  # hex text
    path.chmod(0o600)
    runner = CliRunner()
    for args in (["send", "--to", "127.0.0.1:9"], ["receive", "--listen", f"{RX_HOST}:9"]):
        res = runner.invoke(diode_app, [*args, "-k", str(path)])
        assert res.exit_code == 2, res.output
        assert "weak key" in res.output and "conduit diode keygen" in res.output
    if name == "zeros":  # and as a real process: exit 2, one line on stderr, no traceback
        res2 = subprocess.run(
            [*CLI, "send", "--to", "127.0.0.1:9", "-k", str(path)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert res2.returncode == 2
        lines = res2.stderr.strip().splitlines()
        assert len(lines) == 1 and "one byte value repeated" in lines[0], res2.stderr
