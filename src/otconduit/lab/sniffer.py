"""Record loopback traffic to a classic pcap file.

The lab needs ground-truth captures of the traffic it generates. tcpdump is preferred
because it is what an operator would use; when it is missing we fall back to an AF_PACKET
socket so that the lab still works in minimal containers (root is needed either way).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
_SNAPLEN = 262144
_TCPDUMP_BUFFER_KIB = 32768
_SOL_PACKET = getattr(socket, "SOL_PACKET", 263)
_PACKET_STATISTICS = 6


class CaptureUnavailable(RuntimeError):
    """Raised when neither tcpdump nor an AF_PACKET socket can capture on loopback."""


class CaptureIncomplete(RuntimeError):
    """Raised when the kernel dropped packets: such a capture is no ground truth."""


class PcapWriter:
    """Minimal classic-pcap writer (microsecond timestamps).

    Kept here rather than shared with the monitor: the lab must not trust monitor code.
    """

    def __init__(self, path: str | Path, linktype: int = LINKTYPE_ETHERNET) -> None:
        self._fh: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(struct.pack("<IHHiIII", _PCAP_MAGIC_US, 2, 4, 0, 0, _SNAPLEN, linktype))
        self.count = 0

    def write(self, ts_us: int, frame: bytes, orig_len: int | None = None) -> None:
        """Append one record; ``ts_us`` is an integer count of microseconds since the epoch."""
        sec, usec = divmod(ts_us, 1_000_000)
        olen = len(frame) if orig_len is None else orig_len
        self._fh.write(struct.pack("<IIII", sec, usec, len(frame), olen))
        self._fh.write(frame)
        self.count += 1

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_pcap(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(ts_us, frame)`` from a classic pcap (either byte order, us or ns)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: truncated pcap header")
        for endian in ("<", ">"):
            (magic,) = struct.unpack(endian + "I", head[:4])
            if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
                break
        else:
            raise ValueError(f"{path}: not a classic pcap file")
        nano = magic == _PCAP_MAGIC_NS
        rec = struct.Struct(endian + "IIII")
        while True:
            hdr = fh.read(16)
            if len(hdr) < 16:
                return
            sec, frac, caplen, _olen = rec.unpack(hdr)
            frame = fh.read(caplen)
            if len(frame) < caplen:
                return
            yield sec * 1_000_000 + (frac // 1000 if nano else frac), frame


def pcap_linktype(path: str | Path) -> int:
    """Return the link type of a classic pcap file."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    endian = "<" if struct.unpack("<I", head[:4])[0] in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS) else ">"
    return int(struct.unpack(endian + "I", head[20:24])[0])


def _check_loopback(addrs: set[str] | None) -> None:
    """The lab only ever touches 127/8; refuse anything else early."""
    for addr in addrs or ():
        if not ipaddress.IPv4Address(addr).is_loopback:
            raise ValueError(f"lab captures are restricted to loopback, got {addr}")


def bpf_filter(addrs: set[str] | None, ports: set[int] | None) -> str:
    """Build the tcpdump filter equivalent to :func:`frame_matches`."""
    parts = []
    if addrs:
        parts.append("(" + " or ".join(f"host {a}" for a in sorted(addrs)) + ")")
    if ports:
        parts.append("(" + " or ".join(f"port {p}" for p in sorted(ports)) + ")")
    return " and ".join(parts)


def frame_matches(frame: bytes, addrs: set[str] | None, ports: set[int] | None) -> bool:
    """Python twin of :func:`bpf_filter` for Ethernet/IPv4 frames (the AF_PACKET backend)."""
    if not addrs and not ports:
        return True
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return False
    ihl = (frame[14] & 0x0F) * 4
    if addrs:
        src = socket.inet_ntoa(frame[26:30])
        dst = socket.inet_ntoa(frame[30:34])
        if src not in addrs and dst not in addrs:
            return False
    if ports:
        proto = frame[23]
        fragment = struct.unpack("!H", frame[20:22])[0] & 0x1FFF
        if proto not in (6, 17) or fragment or len(frame) < 14 + ihl + 4:
            return False
        sport, dport = struct.unpack("!HH", frame[14 + ihl : 18 + ihl])
        if sport not in ports and dport not in ports:
            return False
    return True


def capture_unavailable_reason() -> str | None:
    """Explain why live capture cannot work here, or ``None`` if it can."""
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET sockets on this platform"
    if os.geteuid() != 0 and shutil.which("tcpdump") is None:
        return "live capture needs root (AF_PACKET) or a tcpdump binary"
    if os.geteuid() != 0:
        return "live capture on lo needs root privileges"
    return None


class LoopbackCapture:
    """Context manager recording loopback traffic into ``path``.

    ``backend`` is ``"auto"`` (tcpdump if installed, else AF_PACKET), ``"tcpdump"`` or
    ``"afpacket"``. On entry the capture is guaranteed to be running; on exit every packet
    sent inside the block has been written and the file is closed.
    """

    def __init__(
        self,
        path: str | Path,
        addrs: set[str] | None = None,
        ports: set[int] | None = None,
        *,
        backend: str = "auto",
        iface: str = "lo",
        settle: float = 0.2,
        own_process_group: bool = False,
    ) -> None:
        _check_loopback(addrs)
        if backend not in ("auto", "tcpdump", "afpacket"):
            raise ValueError(f"unknown capture backend {backend!r}")
        self.path = Path(path)
        self.addrs = set(addrs) if addrs else None
        self.ports = set(ports) if ports else None
        self.iface = iface
        self.settle = settle
        self.requested_backend = backend
        # tcpdump in its own process group does not see a terminal's Ctrl-C, so the owner
        # can stop it last and keep the packets of its own orderly shutdown.
        self.own_process_group = own_process_group
        self.backend = ""
        self.packets = 0
        self.dropped = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self._stderr_thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._writer: PcapWriter | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> LoopbackCapture:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self.dropped:
            raise CaptureIncomplete(f"{self.dropped} packets dropped while capturing {self.path}")

    def start(self) -> None:
        """Start capturing; returns only once packets are really being recorded."""
        tcpdump = shutil.which("tcpdump")
        if self.requested_backend in ("auto", "tcpdump") and tcpdump:
            try:
                self._start_tcpdump(tcpdump)
                self.backend = "tcpdump"
                return
            except CaptureUnavailable:
                if self.requested_backend == "tcpdump":
                    raise
        elif self.requested_backend == "tcpdump":
            raise CaptureUnavailable("tcpdump is not installed")
        self._start_afpacket()
        self.backend = "afpacket"

    def stop(self) -> None:
        """Flush outstanding packets and close the capture."""
        if self.backend == "tcpdump":
            self._stop_tcpdump()
        elif self.backend == "afpacket":
            self._stop_afpacket()
        if self._error is not None:
            raise CaptureUnavailable(f"capture failed: {self._error}") from self._error

    # -- tcpdump backend -------------------------------------------------------------------
    def _start_tcpdump(self, binary: str) -> None:
        cmd = [binary, "-i", self.iface, "-w", str(self.path), "-U", "-s", "0", "-n"]
        cmd.append("--immediate-mode")  # no 1 s TPACKET_V3 block timeout before writing
        # Immediate mode uses one ring slot per packet sized for -s 0 (lo MTU 64 KiB): the
        # default 2 MiB ring holds ~30 packets and drops bursts. 32 MiB holds ~500.
        cmd += ["-B", str(_TCPDUMP_BUFFER_KIB)]
        if os.geteuid() == 0:
            cmd += ["-Z", "root"]  # keep write access to root-owned output directories
        expr = bpf_filter(self.addrs, self.ports)
        if expr:
            cmd.append(expr)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0 if self.own_process_group else None,
        )
        assert proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 10.0
        buf = b""
        try:
            # tcpdump prints "listening on" after the socket is bound and the filter is set.
            while b"listening on" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise CaptureUnavailable("tcpdump did not start listening in time")
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    raise CaptureUnavailable(
                        f"tcpdump exited: {buf.decode(errors='replace').strip()}"
                    )
                buf += chunk
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            proc.stderr.close()
            raise
        finally:
            sel.close()
        self._stderr.append(buf.decode(errors="replace"))
        self._proc = proc
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.decode(errors="replace"))

    def _wait_file_quiet(self) -> None:
        """Wait until the file stops growing: tcpdump may still be writing the tail."""
        deadline = time.monotonic() + 5.0
        last = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            size = self.path.stat().st_size if self.path.exists() else 0
            now = time.monotonic()
            if size != last:
                last, quiet_since = size, now
            elif now - quiet_since >= self.settle:
                return
            time.sleep(0.02)

    def _stop_tcpdump(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._wait_file_quiet()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
        self._proc = None
        text = "".join(self._stderr)
        for line in text.splitlines():
            words = line.split()
            if (
                line.endswith("packets dropped by kernel")
                and words[0].isascii()
                and words[0].isdigit()
            ):
                self.dropped = int(words[0])
        self.packets = sum(1 for _ in read_pcap(self.path))

    # -- AF_PACKET backend -----------------------------------------------------------------
    def _start_afpacket(self) -> None:
        if not hasattr(socket, "AF_PACKET"):
            raise CaptureUnavailable("AF_PACKET sockets are not available")
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        except PermissionError as exc:
            raise CaptureUnavailable("AF_PACKET capture needs root") from exc
        sock.bind((self.iface, 0))
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.settimeout(0.05)
        self._sock = sock
        self._writer = PcapWriter(self.path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._afpacket_loop, daemon=True)
        self._thread.start()

    def _afpacket_loop(self) -> None:
        assert self._sock is not None and self._writer is not None
        writer = self._writer
        anc = socket.CMSG_SPACE(16)
        last_rx = time.monotonic()
        try:
            while True:
                try:
                    data, ancdata, _flags, addr = self._sock.recvmsg(_SNAPLEN, anc)
                except TimeoutError:
                    if self._stop.is_set() and time.monotonic() - last_rx >= self.settle:
                        return
                    continue
                last_rx = time.monotonic()
                if addr[2] == _PACKET_OUTGOING:
                    continue  # lo shows every packet twice: outgoing copy and host copy
                if not frame_matches(data, self.addrs, self.ports):
                    continue
                ts_us = time.time_ns() // 1000
                for level, kind, payload in ancdata:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP:
                        sec, usec = struct.unpack("qq", payload[:16])
                        ts_us = sec * 1_000_000 + usec
                writer.write(ts_us, data)
                writer.flush()
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    def _stop_afpacket(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                stats = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
                self.dropped = struct.unpack("II", stats)[1]
            self._sock.close()
            self._sock = None
        if self._writer is not None:
            self.packets = self._writer.count
            self._writer.close()
            self._writer = None
