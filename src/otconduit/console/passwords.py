"""Password policy for console accounts: long enough, not common, not the user name.

Length is what makes an offline guess expensive, and the common-password list is what
an online guesser tries first; both checks are cheap and run only when a password is
set (``conduit user add``, the Users page, ``POST /api/users``)."""

from __future__ import annotations

import functools
import re
from importlib import resources

PASSWORD_MIN = 12
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits/symbols people add around a word
_SEQUENCES = (
    "01234567890123456789012345678901234567890",
    "09876543210987654321098765432109876543210",
    "abcdefghijklmnopqrstuvwxyz",
    "zyxwvutsrqponmlkjihgfedcba",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "1q2w3e4r5t6y7u8i9o0p",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "zaq12wsxcde34rfvbgt56yhnmju78ik",
)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (``common_passwords.txt``), case-folded."""
    text = resources.files("otconduit.console").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def _period(s: str) -> int:
    """Length of the shortest unit ``s`` repeats (``len(s)`` when it repeats none)."""
    for n in range(1, len(s) // 2 + 1):
        if len(s) % n == 0 and s[:n] * (len(s) // n) == s:
            return n
    return len(s)


def _is_common(pw: str) -> bool:
    listed = common_passwords()
    core = _EDGES.sub("", pw)
    if pw in listed or core in listed:
        return True
    unit = pw[: _period(pw)]
    if len(unit) < len(pw) and (len(unit) <= 4 or unit in listed or _EDGES.sub("", unit) in listed):
        return True  # 111111111111, abcabcabcabc, passwordpassword
    return any(pw in seq for seq in _SEQUENCES)  # 123456789012, qwertyuiopas


def password_problem(password: str, user: str) -> str | None:
    """Why ``password`` is not acceptable for ``user`` (one line), or None."""
    if len(password) < PASSWORD_MIN:
        return f"password must be at least {PASSWORD_MIN} characters"
    pw = password.strip().casefold()
    name = user.strip().casefold()
    if pw == name or _EDGES.sub("", pw) == name or (name and pw.replace(name, "") == ""):
        return "password must not be the user name"
    if _is_common(pw):
        return "password is too common (it is on the list of common passwords): choose another"
    return None
