"""The diode's sender and receiver with real sockets on loopback, and the CLI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from otconduit.gateway.diode import (
    DiodeDecoder,
    DiodeReceiver,
    DiodeSendSink,
    FecParams,
    Gap,
    LinkDown,
    LinkUp,
    SenderDropped,
    SenderSettings,
    generate_key,
    wire,
)
from otconduit.gateway.diode.decoder import Event
from otconduit.gateway.model import Quality, TagSample
from otconduit.gateway.sinks import Sink

KEY = bytes.fromhex("7f4e898147f0f76bef3d4e5c7a75162c5edc396c85beb4707d08297ffe4e0620")


def _samples(n: int, start: int = 1, rng: random.Random | None = None) -> list[TagSample]:
    rng = rng or random.Random(0)
    return [
        TagSample(path=f"acme/s1/area{i % 3}/line/cell/t{i % 97}", value=rng.random() * 100,
                  quality=Quality.GOOD, recv_ts_ns=1_700_000_000_000_000_000 + i, unit="bar",
                  seq=i)
        for i in range(start, start + n)
    ]  # fmt: skip


class Collect:
    def __init__(self) -> None:
        self.samples: list[TagSample] = []
        self.times: list[float] = []

    async def __call__(self, batch: Sequence[TagSample]) -> None:
        self.samples.extend(batch)
        self.times.append(time.monotonic())


def test_udp_loopback_end_to_end() -> None:
    n = 60_000

    async def main() -> tuple[DiodeSendSink, DiodeReceiver, Collect, list[Event], float]:
        got, events = Collect(), []
        rx = DiodeReceiver([KEY], got, on_event=events.append)
        host, port = await rx.start("127.0.0.1", 0)
        tx = DiodeSendSink(
            KEY, host=host, port=port,
            settings=SenderSettings(overflow="block", backlog=20_000),
        )  # fmt: skip
        sink: Sink = tx  # the runtime's interface
        await sink.start()
        data = _samples(n)
        for i in range(0, n, 2000):
            await sink.write(data[i : i + 2000])
        await sink.close()
        for _ in range(100):
            if len(got.samples) >= n:
                break
            await asyncio.sleep(0.02)
        await rx.close()
        return tx, rx, got, events

    tx, rx, got, events = asyncio.run(main())
    assert [s.seq for s in got.samples] == list(range(1, n + 1))
    assert got.samples == _samples(n)
    st = rx.status()
    assert (st["forged"], st["malformed"], st["replayed"], st["lost"], st["gaps"]) == (0,) * 5
    assert st["data"] == tx.stats.data and st["parity"] == tx.stats.parity
    assert tx.stats.parity == -(-tx.stats.data // 8) * 2  # 2 parity per group of 8
    assert not any(isinstance(e, Gap) for e in events)


def test_sender_socket_is_send_only() -> None:
    async def main() -> None:
        tx = DiodeSendSink(KEY, port=9)  # discard port: nothing listens, nothing answers
        await tx.start()
        assert tx._udp is not None
        sock = tx._udp.sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 4608  # kernel minimum
        with pytest.raises(OSError):
            sock.getpeername()  # never connected: ICMP errors do not come back
        await tx.close()

    asyncio.run(main())


def _record(sent: list[tuple[float, bytes]]) -> object:
    def transport(d: bytes) -> None:
        sent.append((time.monotonic(), d))

    return transport


@pytest.mark.parametrize("limit", ["datagrams", "bytes"])
def test_rate_limit_holds(limit: str) -> None:
    sent: list[tuple[float, bytes]] = []
    settings = (
        SenderSettings(rate_datagrams=400, mtu=400, overflow="block")
        if limit == "datagrams"
        else SenderSettings(rate_bytes=400 * 400, mtu=400, overflow="block")
    )

    async def main() -> None:
        tx = DiodeSendSink(KEY, settings=settings, transport=_record(sent))  # type: ignore[arg-type]
        await tx.start()
        await tx.write(_samples(3000))
        await asyncio.sleep(0.6)
        await tx.close()

    asyncio.run(main())
    times = [t for t, _ in sent]
    window = [t for t in times if times[0] + 0.1 <= t <= times[0] + 0.5]
    rate = len(window) / 0.4
    assert 300 <= rate <= 440, rate  # 400 datagrams of at most 400 bytes per second
    if limit == "bytes":
        nbytes = sum(len(d) for t, d in sent if times[0] + 0.1 <= t <= times[0] + 0.5)
        assert nbytes / 0.4 <= 400 * 400 * 1.1


def test_heartbeats_when_idle_and_link_status() -> None:
    sent: list[tuple[float, bytes]] = []

    async def main() -> None:
        tx = DiodeSendSink(
            KEY,
            settings=SenderSettings(heartbeat=0.05),
            transport=_record(sent),  # type: ignore[arg-type]
        )
        await tx.start()
        await asyncio.sleep(0.32)
        await tx.close()

    asyncio.run(main())
    kinds = [d[3] for _, d in sent]
    assert set(kinds) == {wire.Kind.HEARTBEAT} and 6 <= len(kinds) <= 10
    dec = DiodeDecoder(wire.Authenticator(KEY))
    events: list[Event] = []
    for t, d in sent:
        events += dec.feed(d, t)
    assert any(isinstance(e, LinkUp) for e in events) and dec.link_up
    assert dec.stats.heartbeats == len(sent) and dec.stats.samples == 0
    assert dec.link_timeout == pytest.approx(0.65)
    assert any(isinstance(e, LinkDown) for e in dec.tick(sent[-1][0] + 0.7))


def test_slow_writes_are_sent_promptly_and_a_lost_one_is_rebuilt() -> None:
    """One sample every 30 ms: each goes out within the linger time, its group is closed
    soon after, so a datagram lost on the way is rebuilt from that short group's parity."""
    got = Collect()
    dropped: list[int] = []

    async def main() -> list[float]:
        rx = DiodeReceiver([KEY], got)
        host, port = await rx.start("127.0.0.1", 0)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        data_seen = 0

        def lossy(d: bytes) -> None:
            nonlocal data_seen
            if d[3] == wire.Kind.DATA:
                data_seen += 1
                if data_seen == 3:
                    dropped.append(data_seen)
                    return
            udp.sendto(d, (host, port))

        tx = DiodeSendSink(
            KEY, settings=SenderSettings(linger=0.02, fec=FecParams(k=8, m=1)), transport=lossy
        )
        await tx.start()
        latencies = []
        for s in _samples(8):
            t = time.monotonic()
            before = len(got.samples)
            await tx.write([s])
            for _ in range(100):
                await asyncio.sleep(0.005)
                if len(got.samples) > before:
                    break
            latencies.append(time.monotonic() - t)
            await asyncio.sleep(0.03)
        await tx.close()
        await asyncio.sleep(0.05)
        await rx.close()
        udp.close()
        assert rx.status()["recovered"] == 1
        return latencies

    latencies = asyncio.run(main())
    assert dropped == [3]
    assert [s.seq for s in got.samples] == list(range(1, 9))
    assert max(latencies) < 0.25, latencies  # the rebuilt one waits for its parity


def test_drop_mode_sheds_oldest_and_tells_the_receiver() -> None:
    sent: list[tuple[float, bytes]] = []

    async def main() -> DiodeSendSink:
        tx = DiodeSendSink(
            KEY,
            settings=SenderSettings(backlog=100, rate_datagrams=50),
            transport=_record(sent),  # type: ignore[arg-type]
        )
        with pytest.raises(RuntimeError, match="before start"):
            await tx.write(_samples(1))
        await tx.start()
        await tx.write(_samples(1000))
        await tx.close()
        return tx

    tx = asyncio.run(main())
    assert tx.stats.dropped == 900 and tx.status()["dropped"] == 900
    dec = DiodeDecoder(wire.Authenticator(KEY))
    events = [e for t, d in sent for e in dec.feed(d, t)]
    assert [s.seq for e in events if hasattr(e, "samples") for s in e.samples] == list(  # type: ignore[attr-defined]
        range(901, 1001)
    )
    assert any(isinstance(e, SenderDropped) and e.total == 900 for e in events)


# -- CLI --------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "otconduit.cli.diode_cmd"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli_run(
    tmp_path: Path, lines: list[str], *receive_args: str, send_args: tuple[str, ...] = ()
) -> tuple[dict, Path]:
    """Receive in one process, send ``lines`` from another; the sender's summary and
    the receiver's event log."""
    key = tmp_path / "diode.key"
    if not key.exists():
        res = subprocess.run([*CLI, "keygen", str(key)], capture_output=True, check=False)
        assert res.returncode == 0 and key.stat().st_mode & 0o777 == 0o600
    port = _free_port()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    ev = tmp_path / "events.jsonl"
    ev.unlink(missing_ok=True)
    rx = subprocess.Popen(
        [*CLI, "receive", "-k", str(key), "--listen", f"127.0.0.1:{port}",
         "--events", str(ev), "--duration", "30", *receive_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            if ev.exists() and "listening" in ev.read_text():
                break
            time.sleep(0.05)
        res = subprocess.run(
            [*CLI, "send", "--to", f"127.0.0.1:{port}", "-k", str(key), "-i", str(src),
             "--rate", "5000", *send_args],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        summary = json.loads(res.stderr.strip().splitlines()[-1])
        summary["returncode"], summary["stderr"] = res.returncode, res.stderr
    finally:
        rx.terminate()
        rx.wait(timeout=10)
    return summary, ev


HAVE_HISTORIAN = importlib.util.find_spec("otconduit.gateway.historian") is not None


def test_cli_send_receive_json_lines_and_historian(tmp_path: Path) -> None:
    lines = [
        json.dumps({"path": f"acme/s1/a/l/c/t{i % 9}", "value": i, "unit": "rpm",
                    "ts": "2024-05-01T10:00:00Z"})
        for i in range(3000)
    ]  # fmt: skip
    lines.insert(10, "{not json")
    out, status, db = tmp_path / "out.jsonl", tmp_path / "st.json", tmp_path / "hist.db"
    extra = ["--historian", str(db)] if HAVE_HISTORIAN else []
    sent, ev = _cli_run(tmp_path, lines, "-o", str(out), "--status-file", str(status), *extra)
    assert sent["returncode"] == 1, sent["stderr"]  # one bad input line
    assert "input line 11" in sent["stderr"]
    assert sent["samples"] == 3000 and sent["bad_lines"] == 1
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [g["value"] for g in got] == list(range(3000))
    assert got[0]["ts"] == "2024-05-01T10:00:00Z" and got[0]["unit"] == "rpm"
    events = [json.loads(x) for x in ev.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[:3] == ["listening", "session", "link_up"] and names[-1] == "summary"
    sessions = tmp_path / "out.jsonl.diode-sessions"  # beside the output, kept across restarts
    assert events[0]["sessions"] == str(sessions) and sent["session"] in sessions.read_text()
    assert names[-2] == "session_end" and events[-2]["reason"] == "receiver stopped"
    assert events[-1]["samples"] == 3000 and events[-1]["gaps"] == 0
    assert events[-1]["sinks"][0] == {"sink": "jsonl", "written": 3000}
    assert json.loads(status.read_text())["samples"] == 3000
    if HAVE_HISTORIAN:  # the embedded historian, when this build has it
        hist = events[-1]["sinks"][1]
        assert hist["sink"] == "historian" and hist["samples_written"] == 3000
        assert db.exists()


def test_cli_encrypted_round_trip(tmp_path: Path) -> None:
    lines = [json.dumps({"path": f"acme/s1/a/l/c/t{i % 9}", "value": i}) for i in range(500)]
    out = tmp_path / "out.jsonl"
    sent, ev = _cli_run(tmp_path, lines, "-o", str(out), "--encrypt", send_args=("--encrypt",))
    assert sent["returncode"] == 0 and sent["encrypted"], sent["stderr"]
    assert [json.loads(x)["value"] for x in out.read_text().splitlines()] == list(range(500))
    summary = json.loads(ev.read_text().splitlines()[-1])
    assert summary["samples"] == 500 and summary["malformed"] == summary["forged"] == 0


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from otconduit.cli.diode_cmd import diode_app

    runner = CliRunner()
    loose = tmp_path / "loose.key"
    loose.write_text("ab" * 32)
    loose.chmod(0o644)
    res = runner.invoke(diode_app, ["send", "--to", "127.0.0.1:9", "-k", str(loose)])
    assert res.exit_code == 2 and "chmod 600" in res.output
    key = generate_key(tmp_path / "k")
    for args, text in (
        (["send", "--to", "127.0.0.1:9", "-k", str(key), "--fec", "8-2"], "K:M"),
        (["send", "--to", "127.0.0.1:99999", "-k", str(key)], "port must be"),
        (["send", "--to", "127.0.0.1:9", "-k", str(key), "--mtu", "100"], "mtu 100"),
        (["receive", "-k", str(key), "--window", "10"], "window >= 64"),
        (["keygen", str(key)], "exists"),
    ):
        res = runner.invoke(diode_app, args)
        assert res.exit_code == 2 and text in res.output, (args, res.output)


def test_gateway_runtime_sends_a_real_plc_through_the_diode() -> None:
    """The runtime's own sink slot: a Modbus collector polls the lab's conveyor PLC (a
    real pymodbus server) and the diode delivers, sample for sample, what an in-process
    sink next to it saw."""
    pytest.importorskip("pymodbus")
    from otconduit.gateway.config import GatewayConfig
    from otconduit.gateway.plantconfig import plant_gateway
    from otconduit.gateway.runtime import Gateway, MemorySink
    from otconduit.lab.devices_modbus import ModbusDevice, RegisterImage, identity
    from otconduit.lab.register_maps import CONVEYOR_MAP

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    raw = plant_gateway(port=port, hosts={"conveyor-plc": "127.0.0.1"})
    raw["devices"] = [d | {"interval": 0.1} for d in raw["devices"] if d["name"] == "conveyor-plc"]
    raw["status_file"] = None
    cfg = GatewayConfig.model_validate(raw)

    async def main() -> tuple[list[TagSample], list[TagSample]]:
        image = RegisterImage(CONVEYOR_MAP)
        image.load({"actual_speed": 24.7, "motor_current": 12.34, "good_count": 123456})
        plc = ModbusDevice("conveyor-plc", "127.0.0.1", port, image,
                           identity("Test", "plc", "plc", "1.0", "conduit-test"))  # fmt: skip
        await plc.start()
        got = Collect()
        rx = DiodeReceiver([KEY], got)
        host, rport = await rx.start("127.0.0.1", 0)
        memory = MemorySink()
        await Gateway(cfg, [DiodeSendSink(KEY, host=host, port=rport), memory]).run(duration=0.8)
        await asyncio.sleep(0.1)
        await rx.close()
        await plc.stop()
        return got.samples, memory.samples

    via_diode, direct = asyncio.run(main())
    assert via_diode == direct and len(direct) >= len(CONVEYOR_MAP)
    last = {s.path: s for s in via_diode}
    speed = last["acme/plant1/packaging/line1/conveyor/actual_speed"]
    assert speed.quality is Quality.GOOD and speed.value == pytest.approx(24.7, abs=0.01)


def test_cli_default_port_is_the_diode_port() -> None:
    """The CLI names the port without loading the diode (its modules load per command)."""
    from otconduit.cli.diode_cmd import DIODE_PORT
    from otconduit.gateway.diode import DEFAULT_PORT

    assert DIODE_PORT == DEFAULT_PORT
