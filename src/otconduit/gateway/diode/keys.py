"""The shared diode key: a file on each side, readable by its owner only.

``conduit diode keygen FILE`` writes 32 random bytes as hex (mode 0600). Copy the file
to the IT side out of band (it must not travel over the diode's own network in clear,
and never from IT to OT over a channel the diode is meant to close). A key file may hold
hex text (whitespace ignored) or at least 16 raw bytes. A file that others can read is
refused, as ssh refuses a private key with loose permissions, and so is a key that can
be guessed (``keycheck``: a typed password, a pattern, zero bytes).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from otconduit.gateway.diode.keycheck import WeakKeyError, key_weakness

KEY_BYTES = 32


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, too open or weak; one line."""


class WeakKeyFileError(KeyFileError, WeakKeyError):
    """A key file whose key can be guessed."""


def load_key(path: str | Path) -> bytes:
    """The key in ``path``; :class:`KeyFileError` (one line) if it must not be used."""
    p = Path(path)
    try:
        st = p.stat()
        raw = p.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"key file {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key file {p}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"key file {p} is accessible by others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"chmod 600 {p}"
        )
    text = raw.strip()
    key = raw
    if text and len(text) % 2 == 0:
        try:
            key = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            key = raw
    why = key_weakness(key)
    if why:
        raise WeakKeyFileError(
            f"key file {p}: weak key ({why}): make one with `conduit diode keygen`"
        )
    return key


def generate_key(path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a fresh random key (hex, mode 0600); refuses to replace a file unless told."""
    p = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {p} exists (use --force to replace it)") from None
    except OSError as exc:
        raise KeyFileError(f"key file {p}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return p
