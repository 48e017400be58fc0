"""``conduit diode keygen|send|receive``: the data-diode mode on the command line.

Thin wrappers over :mod:`otconduit.gateway.diode`; a bad key, address or option is one
line on stderr and exit 2. Register with ``app.add_typer(diode_app, name="diode")``;
``python -m otconduit.cli.diode_cmd`` runs the same commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from otconduit.cli.output import err, fail

# The diode's modules load when a diode command runs: every other command (analyze among
# them) starts without them.
if TYPE_CHECKING:
    from otconduit.gateway.diode import DiodeSendSink
    from otconduit.gateway.diode.decoder import Event
    from otconduit.gateway.model import TagSample
    from otconduit.gateway.sinks import Sink

DIODE_PORT = 47110  # otconduit.gateway.diode.DEFAULT_PORT (a test holds them equal)

diode_app = typer.Typer(
    help=(
        "Data-diode mode: tag samples from OT to IT over one-way UDP (FEC, HMAC, "
        "heartbeats, optional encryption). A software diode is a policy control, not the "
        "physical guarantee of a hardware data diode."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
REJECT_LOG_EVERY = 10.0  # s: at most REJECT_LOG_MAX rejected datagrams logged per period
REJECT_LOG_MAX = 20

KeyOpt = Annotated[Path, typer.Option("--key", "-k", help="Shared key file (diode keygen).")]


def _key(path: Path) -> bytes:
    from otconduit.gateway.diode import KeyFileError, load_key

    try:
        return load_key(path)
    except KeyFileError as exc:
        raise fail(str(exc)) from None


def _address(text: str, default_host: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``:PORT`` or ``[v6]:PORT``."""
    host, port = text, str(DIODE_PORT)
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        port = rest[1:] if rest.startswith(":") else port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise fail(f"address {text!r}: port must be 1-65535")
    return host or default_host, int(port)


@diode_app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="Key file to create (mode 0600).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a new random 256-bit key. Copy it to the IT side out of band."""
    from otconduit.gateway.diode import KeyFileError, generate_key

    try:
        generate_key(path, overwrite=force)
    except KeyFileError as exc:
        raise fail(str(exc)) from None
    err.print(f"wrote {path} (mode 0600): copy it to the receiver out of band", markup=False)


# -- send -----------------------------------------------------------------------------


class _LineReader:
    """Reads JSON lines on a thread (stdin may block) and hands them over in batches."""

    def __init__(self, stream: IO[str], loop: asyncio.AbstractEventLoop) -> None:
        self.lines: deque[tuple[int, str]] = deque()
        self.eof = False
        self.ready = asyncio.Event()
        self._loop = loop
        self._stream = stream
        threading.Thread(target=self._read, daemon=True, name="diode-input").start()

    def _read(self) -> None:
        for n, line in enumerate(self._stream, 1):
            was_empty = not self.lines
            self.lines.append((n, line))
            if was_empty:
                self._loop.call_soon_threadsafe(self.ready.set)
            while len(self.lines) > 100_000:  # the sender is rate limited: wait for it
                time.sleep(0.01)
        self.eof = True
        self._loop.call_soon_threadsafe(self.ready.set)


async def _send_lines(sink: DiodeSendSink, stream: IO[str]) -> int:
    from otconduit.gateway.diode.jsonl import sample_from_dict

    reader = _LineReader(stream, asyncio.get_running_loop())
    bad = 0
    seq = 0
    while True:
        await reader.ready.wait()
        reader.ready.clear()
        batch: list[TagSample] = []
        while reader.lines:
            n, line = reader.lines.popleft()
            if not line.strip():
                continue
            seq += 1
            try:
                batch.append(sample_from_dict(json.loads(line), seq=seq))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                bad += 1
                if bad <= 20:
                    err.print(f"input line {n}: {exc}; skipped", highlight=False, markup=False)
        if batch:
            await sink.write(batch)
        if reader.eof and not reader.lines:
            return bad


async def _send_gateway(sink: DiodeSendSink, config: Path, duration: float | None) -> None:
    from otconduit.gateway.config import load_gateway
    from otconduit.gateway.runtime import Gateway
    from otconduit.yamlconf import ConfigError

    try:
        cfg = load_gateway(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    stop = asyncio.Event()
    _on_signals(stop)
    # The gateway starts and closes its sinks: here the diode is its only sink.
    await Gateway(cfg, [sink]).run(stop, duration)


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


@diode_app.command("send")
def send(
    to: Annotated[str, typer.Option("--to", help="Receiver HOST[:PORT] (UDP).")],
    key: KeyOpt,
    input_: Annotated[
        Path,
        typer.Option("--input", "-i", help="JSON lines of samples ('-': stdin)."),
    ] = Path("-"),
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Collect from this gateway.yaml's devices."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="With --config: stop after S seconds.")
    ] = None,
    fec: Annotated[
        str, typer.Option("--fec", help="K:M data:parity datagrams per group, or 'off'.")
    ] = "8:2",
    rate: Annotated[
        float | None, typer.Option("--rate", help="Rate limit, datagrams per second.")
    ] = None,
    rate_bytes: Annotated[
        float | None, typer.Option("--rate-bytes", help="Rate limit, bytes per second.")
    ] = None,
    heartbeat: Annotated[float, typer.Option("--heartbeat", help="Heartbeat every S s.")] = 1.0,
    linger: Annotated[
        float, typer.Option("--linger", help="Wait up to S s to fill a datagram.")
    ] = 0.02,
    mtu: Annotated[int, typer.Option("--mtu", help="Largest datagram, bytes.")] = 1400,
    backlog: Annotated[
        int, typer.Option("--backlog", help="Samples held while rate limited.")
    ] = 100_000,
    bind: Annotated[str | None, typer.Option("--bind", help="Source address to send from.")] = None,
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Encrypt the samples (ChaCha20-Poly1305).")
    ] = False,
) -> None:
    """OT side: send samples over UDP only (never reads the network).

    Samples come from --input (JSON lines: path, value, quality, unit, ts, ...) or from
    the devices of a gateway config (--config). Prints a summary (JSON) on stderr."""
    from otconduit.gateway.diode import DiodeSendSink, FecParams, SenderSettings

    secret = _key(key)
    host, port = _address(to, "127.0.0.1")
    try:
        settings = SenderSettings(
            fec=FecParams.parse(fec), mtu=mtu, rate_datagrams=rate, rate_bytes=rate_bytes,
            heartbeat=heartbeat, linger=linger, backlog=backlog,
            overflow="drop" if config else "block", encrypt=encrypt,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None

    async def main() -> int:
        sink = DiodeSendSink(secret, host=host, port=port, settings=settings, bind=bind)
        bad = 0
        started = time.monotonic()
        if config is not None:
            await _send_gateway(sink, config, duration)
        else:
            await sink.start()
            try:
                if str(input_) == "-":
                    bad = await _send_lines(sink, sys.stdin)
                else:
                    with input_.open(encoding="utf-8") as f:
                        bad = await _send_lines(sink, f)
            finally:
                await sink.close()
        elapsed = round(time.monotonic() - started, 3)
        summary = {"event": "summary", **sink.status(), "bad_lines": bad, "elapsed_s": elapsed}
        sys.stderr.write(json.dumps(summary) + "\n")
        return 1 if bad else 0

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except OSError as exc:
        raise fail(f"{input_ if config is None else config}: {exc.strerror or exc}") from None
    raise typer.Exit(code)


# -- receive --------------------------------------------------------------------------


class _EventLog:
    """Events as JSON lines; rejected datagrams are rate limited (a flood stays a count)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._window = 0.0
        self._logged = 0
        self._suppressed = 0

    def __call__(self, e: Event) -> None:
        from otconduit.gateway.diode import Rejected
        from otconduit.gateway.diode.jsonl import event_to_dict

        if isinstance(e, Rejected):
            now = time.monotonic()
            if now - self._window >= REJECT_LOG_EVERY:
                if self._suppressed:
                    self._write({"event": "rejected_suppressed", "count": self._suppressed})
                self._window, self._logged, self._suppressed = now, 0, 0
            if self._logged >= REJECT_LOG_MAX:
                self._suppressed += 1
                return
            self._logged += 1
        self._write(event_to_dict(e))

    def _write(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj) + "\n")
        self.stream.flush()


def _status(sink: Sink) -> dict[str, Any]:
    try:
        return {"sink": sink.name, **sink.status()}
    except Exception as exc:  # a status is a report, never a reason to fail
        return {"sink": sink.name, "error": str(exc)}


def _historian(path: Path) -> Sink:
    """The embedded historian's sink for ``path`` (looked up at run time: the historian
    is an optional part of the gateway)."""
    try:
        mod = importlib.import_module("otconduit.gateway.historian")
        factory = mod.HistorianSink.sqlite
    except (ImportError, AttributeError):
        raise fail(
            "--historian: the embedded historian is not part of this build; "
            "use --output and load the JSON lines"
        ) from None
    from otconduit.gateway.config import Historian

    sink: Sink = factory(Historian(path=path))
    return sink


def _session_file(
    state: Path | None, output: str, historian: Path | None, status_file: Path | None, port: int
) -> Path:
    """Where the receiver keeps the sessions it has seen: --state, else beside its
    output, historian or status file, else in the user's state folder (per port)."""
    if state is not None:
        return state
    out = Path(output) if output not in ("-", "none") else None
    for beside in (out, historian, status_file):
        if beside is not None:
            return beside.with_name(beside.name + ".diode-sessions")
    home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    folder = Path(home) / "conduit"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise fail(f"{folder}: {exc.strerror or exc} (choose a file with --state)") from None
    return folder / f"diode-{port}.sessions"


@diode_app.command("receive")
def receive(
    key: Annotated[
        list[Path],
        typer.Option("--key", "-k", help="Key file; repeat to accept old and new keys."),
    ],
    listen: Annotated[
        str, typer.Option("--listen", "-l", help="HOST[:PORT] to listen on (UDP).")
    ] = f"0.0.0.0:{DIODE_PORT}",
    output: Annotated[
        str, typer.Option("--output", "-o", help="JSON lines of samples: FILE, '-' or 'none'.")
    ] = "-",
    historian: Annotated[
        Path | None, typer.Option("--historian", help="Also store samples in this historian.")
    ] = None,
    events: Annotated[
        Path | None, typer.Option("--events", help="Events (gaps, rejects) here, not stderr.")
    ] = None,
    status_file: Annotated[
        Path | None, typer.Option("--status-file", help="Counters as JSON, every second.")
    ] = None,
    reorder_timeout: Annotated[
        float, typer.Option("--reorder-timeout", help="S to wait for a late datagram.")
    ] = 0.3,
    window: Annotated[
        int, typer.Option("--window", help="Replay and reorder window, datagrams.")
    ] = 4096,
    link_timeout: Annotated[
        float | None,
        typer.Option("--link-timeout", help="S of silence = link down (3 heartbeats)."),
    ] = None,
    max_skew: Annotated[
        float,
        typer.Option("--max-skew", help="Refuse sender clocks off by > S s (0: off; NTP both)."),
    ] = 300.0,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Sessions seen, kept to refuse replays after a restart."),
    ] = None,
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Refuse datagrams that are not encrypted.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after S seconds.")
    ] = None,
) -> None:
    """IT side: verify, reorder, repair and deliver; report gaps and rejected datagrams.

    Never sends anything. Stops on Ctrl-C / SIGTERM (or --duration), then delivers what
    it holds, reports what is missing and prints a summary (JSON) to the event log."""
    from otconduit.gateway.diode import DiodeReceiver, LedgerError, ReceiverSettings, SinkFanout
    from otconduit.gateway.diode.jsonl import JsonLinesSink

    keys = [_key(k) for k in key]
    host, port = _address(listen, "0.0.0.0")
    try:
        settings = ReceiverSettings(
            reorder_timeout=reorder_timeout, window=window, link_timeout=link_timeout,
            max_skew=max_skew, require_encryption=encrypt,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    sessions = _session_file(state, output, historian, status_file, port)
    with contextlib.ExitStack() as stack:
        sinks: list[Sink] = []
        if output == "-":
            sinks.append(JsonLinesSink(sys.stdout))
        elif output != "none":
            sinks.append(JsonLinesSink(stack.enter_context(open(output, "a", encoding="utf-8"))))
        if historian is not None:
            sinks.append(_historian(historian))
        log_stream = (
            stack.enter_context(events.open("a", encoding="utf-8")) if events else sys.stderr
        )
        log = _EventLog(log_stream)

        async def main() -> None:
            fanout = SinkFanout(sinks)
            await fanout.start()
            try:
                rx = DiodeReceiver(
                    keys, fanout, settings=settings, on_event=log, status_file=status_file,
                    session_file=sessions,
                )  # fmt: skip
                bound = await rx.start(host, port)
            except LedgerError as exc:
                raise fail(str(exc)) from None
            except OSError as exc:
                raise fail(f"cannot listen on {listen}: {exc.strerror or exc}") from None
            log._write(
                {"event": "listening", "address": f"{bound[0]}:{bound[1]}",
                 "sessions": str(sessions)}
            )  # fmt: skip
            stop = asyncio.Event()
            _on_signals(stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
            await rx.close()
            await fanout.close()
            log._write({"event": "summary", **rx.status(), "sinks": [_status(s) for s in sinks]})

        asyncio.run(main())


if __name__ == "__main__":
    diode_app()
