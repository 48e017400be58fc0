"""The capture engine behind ``conduit sense --interface``: Wireshark's dumpcap writing
a ring of pcapng files (tcpdump as the fallback), supervised.

Why dumpcap: it is what plant engineers already trust, captures through the kernel's
memory-mapped ring (TPACKET_V3) with a BPF filter applied in the kernel, rotates files
itself, and reports what it lost. We never parse packets here: the ring folder is read
by :class:`otconduit.capture.follow.RingFollower` like any other ring.

A capture engine that exits is restarted with exponential back-off (1 s doubling to a
minute); every exit is reported with the engine's own words, and the drop counters it
prints when it stops are added to the sensor's totals.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
START_WAIT_S = 3.0  # how long a start may take before we call it running
# dumpcap: "Packets received/dropped on interface 'lo': 116/0 (pcap:0/dumpcap:0/flushed:0/
# ps_ifdrop:0) (100.0%)"; pcap is the kernel's count, dumpcap and flushed its own.
_DUMPCAP_DROPS = re.compile(
    r"received/dropped on interface .*?: (\d+)/(\d+) \(pcap:(\d+)/dumpcap:(\d+)/flushed:(\d+)"
    r"(?:/ps_ifdrop:(\d+))?"
)
# tcpdump: "12 packets received by filter", "0 packets dropped by kernel"
_TCPDUMP_KERNEL = re.compile(r"(\d+) packets? dropped by kernel")
_TCPDUMP_IFDROP = re.compile(r"(\d+) packets? dropped by interface")


class CaptureEngineError(Exception):
    """The capture engine cannot run (missing, no permission, unknown interface); one line."""


@dataclass(slots=True)
class EngineState:
    tool: str
    running: bool = False
    restarts: int = 0
    drops_kernel: int = 0
    drops_capture: int = 0
    received: int = 0
    last_error: str | None = None
    events: list[str] = field(default_factory=list)  # exits and restarts, newest last


def find_tool(preferred: str | None = None) -> str:
    """dumpcap if installed, else tcpdump (or the one asked for)."""
    names = [preferred] if preferred else ["dumpcap", "tcpdump"]
    for name in names:
        if name and shutil.which(name):
            return name
    wanted = preferred or "dumpcap (Wireshark) or tcpdump"
    raise CaptureEngineError(
        f"no capture engine: install {wanted} (Debian: apt install wireshark-common tcpdump)"
    )


def ring_prefix() -> str:
    return "conduit-"


class CaptureEngine:
    """One supervised dumpcap/tcpdump process writing ``ring_dir``."""

    def __init__(
        self,
        interface: str,
        ring_dir: Path,
        *,
        bpf: str | None = None,
        ring_size_mb: int = 1024,
        ring_files: int = 16,
        tool: str | None = None,
    ) -> None:
        self.interface = interface
        self.ring_dir = ring_dir
        self.bpf = bpf
        self.file_kb = max(64, ring_size_mb * 1024 // max(ring_files, 2))
        self.ring_files = max(ring_files, 2)
        self.state = EngineState(find_tool(tool))
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self._reader: threading.Thread | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST_S

    def _command(self) -> list[str]:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        if self.state.tool == "dumpcap":
            out = self.ring_dir / f"{ring_prefix()}{stamp}.pcapng"
            cmd = ["dumpcap", "-q", "-i", self.interface, "-w", str(out), "-B", "32"]
            cmd += ["-b", f"filesize:{self.file_kb}", "-b", f"files:{self.ring_files}"]
            if self.bpf:
                cmd += ["-f", self.bpf]
            return cmd
        # tcpdump: -C in millions of bytes, -W files, -U packet-buffered output.
        out = self.ring_dir / f"{ring_prefix()}{stamp}.pcap"
        size_m = max(1, self.file_kb // 1000)
        cmd = ["tcpdump", "-i", self.interface, "-w", str(out), "-U", "-n", "-s", "0"]
        cmd += ["--immediate-mode", "-C", str(size_m), "-W", str(self.ring_files)]
        if os.geteuid() == 0:
            cmd += ["-Z", "root"]  # tcpdump would drop to its own user, who cannot write
        if self.bpf:
            cmd += [self.bpf]
        return cmd

    def start(self) -> None:
        """Start the engine and wait until it captures; raises :class:`CaptureEngineError`
        with the engine's own message when it cannot."""
        self._spawn()
        deadline = time.monotonic() + START_WAIT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                self._reap()
                raise CaptureEngineError(self.state.last_error or "capture engine exited")
            if any(self.ring_dir.glob(f"{ring_prefix()}*")):
                break
            time.sleep(0.05)
        self.state.running = True

    def _spawn(self) -> None:
        self._stderr = []
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C is ours to pass on
            )
        except OSError as exc:
            raise CaptureEngineError(f"cannot start {self.state.tool}: {exc}") from None
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)
                del self._stderr[:-50]

    def _reap(self) -> None:
        """Account for an engine that has exited: its drops, its last words."""
        if self._reader is not None:
            self._reader.join(timeout=2)
        text = "\n".join(self._stderr)
        st = self.state
        m = _DUMPCAP_DROPS.search(text)
        if m:
            st.received += int(m.group(1))
            st.drops_kernel += int(m.group(3)) + int(m.group(6) or 0)
            st.drops_capture += int(m.group(4)) + int(m.group(5))
        else:
            for rx, attr in ((_TCPDUMP_KERNEL, "drops_kernel"), (_TCPDUMP_IFDROP, "drops_kernel")):
                m2 = rx.search(text)
                if m2:
                    setattr(st, attr, getattr(st, attr) + int(m2.group(1)))
        code = self._proc.returncode if self._proc is not None else None
        if code not in (0, None, -signal.SIGINT, -signal.SIGTERM):
            st.last_error = _last_words(self.state.tool, self._stderr, code)
        self._proc = None
        st.running = False

    def poll(self) -> str | None:
        """Check on the engine; restart it when due. Returns an event to report
        (an exit or a restart), or None."""
        now = time.monotonic()
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                return None
            self._reap()
            self._retry_at = now + self._backoff
            event = (
                f"{self.state.tool} exited ({self.state.last_error or 'no message'}); "
                f"restarting in {self._backoff:.0f} s"
            )
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            self.state.events.append(event)
            del self.state.events[:-20]
            return event
        if now >= self._retry_at:
            try:
                self._spawn()
            except CaptureEngineError as exc:
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
                self.state.last_error = str(exc)
                return str(exc)
            self.state.restarts += 1
            self.state.running = True
            return f"{self.state.tool} restarted (restart {self.state.restarts})"
        return None

    def steady(self) -> None:
        """Called after a while of good running: the next failure backs off from scratch."""
        self._backoff = BACKOFF_FIRST_S

    def stop(self) -> None:
        """Stop the engine cleanly (it closes its file and prints its counters)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()


def _last_words(tool: str, lines: list[str], code: int | None) -> str:
    """The engine's error in one line (dumpcap explains at length over several)."""
    useful = [
        ln
        for ln in lines
        if not ln.startswith(("Capturing on", "File:", "Packets", "tcpdump: listening"))
    ]
    text = " ".join(useful[:2]) if useful else f"exit status {code}"
    if text.startswith(f"{tool}: "):
        text = text[len(tool) + 2 :]
    if "permission" in text.lower():
        text += (
            f"; grant the capture capabilities (setcap cap_net_raw,cap_net_admin=eip "
            f"$(command -v {tool})) or run the sensor with them (README: sensor deployment)"
        )
    return f"{tool}: {text}"[:400]
