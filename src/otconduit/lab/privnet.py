"""A worker thread in a network namespace of its own, for sockets no capture should see.

Network namespaces belong to threads: a thread that calls ``unshare(CLONE_NEWNET)`` gets a
fresh namespace with only a loopback interface, and every socket it (or a thread it
starts) creates lives there, whichever thread uses it later. The lab puts the client leg
of its :mod:`source relays <otconduit.lab.source_relay>` there: a capture on the plant's
``lo`` (the lab's own, ``conduit sense -i lo``, tcpdump) then never sees the same bytes
twice, once from 127.0.0.1 and once from the role's address. Needs CAP_SYS_ADMIN (the lab
runs as root); without it :func:`private_net` returns None and the relay stays on the
plant's loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_executor: ThreadPoolExecutor | None = None
_unavailable: str | None = None


def _enter() -> None:
    """Move this thread into a new network namespace and bring its loopback up."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {errno.errorcode.get(err, err)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def private_net() -> ThreadPoolExecutor | None:
    """The one worker thread in the private namespace (started on first use), or None
    where namespaces cannot be made (:func:`why_not` says why)."""
    global _executor, _unavailable
    if _executor is None and _unavailable is None:
        ex = ThreadPoolExecutor(1, thread_name_prefix="lab-privnet", initializer=_enter)
        try:
            ex.submit(lambda: None).result(timeout=10)
        except (BrokenThreadPool, OSError, TimeoutError) as exc:
            ex.shutdown(wait=False)
            _unavailable = str(exc) or type(exc).__name__
            return None
        _executor = ex
    return _executor


def why_not() -> str | None:
    return _unavailable


def run_private(fn: Callable[[], T]) -> T:
    """Run ``fn`` in the private namespace's thread (in this one if there is none)."""
    ex = private_net()
    return ex.submit(fn).result() if ex is not None else fn()


def listener(host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on ``host`` in the private namespace (or the plant's)."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(8)
        s.setblocking(False)
        return s

    return run_private(make)
