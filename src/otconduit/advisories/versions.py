"""Firmware versions and the version ranges advisories state, compared the way vendors mean
them.

Devices and advisories write versions many ways: Siemens ``V3.2.6``, Rockwell revisions
``2.003`` (major 2, minor 3: ``2.3`` is the same revision), ``Rev 4.1``, ``V4.7 HF33``,
``V16 Update 2``, ``3.40 R5 build 571848``; a wildcard component (``< V3.X.17`` in
Siemens advisories) takes the device's own value. Ranges come as ``vers:`` strings
(``vers:all/>=V7.80<V9.40``; the vers specification, with the ``|`` CISA sometimes leaves
out) or as text (``All versions < V4.33``, ``prior to v2.3``, ``>= 4.4 | <= 4.12``,
``1.3.0 | 1.3.1``). Anything we cannot read is kept as text and decides nothing: a match
against it is ``version_unknown``, never a guess.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from enum import StrEnum

Part = int | None  # None: a wildcard component (X)

_PREFIX = re.compile(
    r"^(?:version|ver\.?|v|revision|rev\.?|release|r|firmware|fw|sv)?\s*", re.IGNORECASE
)
# What may follow the dotted main part: service packs, updates, hot fixes, patches,
# builds, a bracketed or dashed sub-release, or one letter (2.6A).
_TAIL = re.compile(
    r"\s*(?:"
    r"(?:sp|service\s*pack|update|upd|u|hf|hotfix|patch|p|build|b|rs|r)\s*\.?\s*(?P<n>\d+)"
    r"|\((?P<b>\d+)\)"
    r"|-(?P<d>\d+)"
    r"|(?P<l>[a-z])(?![a-z])"
    r")",
    re.IGNORECASE,
)


def _cmp_parts(a: tuple[Part, ...], b: tuple[Part, ...]) -> int | None:
    """Compare component lists padded with zeros; None when a trailing wildcard ends
    the comparison (``8.1.x`` equals every ``8.1.*``)."""
    n = max(len(a), len(b))
    for i in range(n):
        x = a[i] if i < len(a) else 0
        y = b[i] if i < len(b) else 0
        if x is None or y is None:
            last_a = i == len(a) - 1 and x is None
            last_b = i == len(b) - 1 and y is None
            if last_a or last_b:
                return None
            continue
        if x != y:
            return -1 if x < y else 1
    return 0


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version: dotted ``main`` components, then ``extra`` numbers (service pack,
    update, patch, build) that order releases of the same main version."""

    main: tuple[Part, ...]
    extra: tuple[int, ...]
    text: str

    def compare(self, other: Version) -> int:
        """-1, 0 or 1; wildcards compare equal to anything."""
        c = _cmp_parts(self.main, other.main)
        if c is None:
            return 0
        if c:
            return c
        return _cmp_parts(tuple(self.extra), tuple(other.extra)) or 0

    def __str__(self) -> str:
        return self.text


def parse_version(text: str | None, *, lenient: bool = False) -> Version | None:
    """The version in ``text``, or None. Strict (the default, for advisories): the whole
    text must be a version. ``lenient`` (for what a device states) ignores trailing text."""
    if text is None:
        return None
    raw = str(text).strip()
    s = raw.replace("_", " ").strip()
    s = _PREFIX.sub("", s, count=1)
    m = re.match(r"(\d+|[xX])((?:\.(?:\d+|[xX]))*)", s)
    if m is None or not (m.group(1).isdigit() or m.group(2)):
        return None
    comps = [m.group(1), *m.group(2).split(".")[1:]]
    main: tuple[Part, ...] = tuple(None if c.lower() == "x" else int(c) for c in comps)
    rest = s[m.end() :]
    extra: list[int] = []
    while rest.strip():
        t = _TAIL.match(rest)
        if t is None:
            if lenient:
                break
            return None
        if t.group("l"):
            extra.append(ord(t.group("l").lower()) - ord("a") + 1)
        else:
            extra.append(int(t.group("n") or t.group("b") or t.group("d")))
        rest = rest[t.end() :]
    return Version(main, tuple(extra), raw)


class RangeKind(StrEnum):
    all = "all"  # every version
    constraints = "constraints"  # comparators we can evaluate
    unparsed = "unparsed"  # text we cannot read: decides nothing
    unspecified = "unspecified"  # the advisory names no version


@dataclass(frozen=True, slots=True)
class Constraint:
    op: str  # = != < <= > >=
    version: Version

    def holds(self, v: Version) -> bool:
        c = v.compare(self.version)
        return {
            "=": c == 0,
            "!=": c != 0,
            "<": c < 0,
            "<=": c <= 0,
            ">": c > 0,
            ">=": c >= 0,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op}{self.version.text}"


def _by_version(a: Constraint, b: Constraint) -> int:
    return a.version.compare(b.version)


@dataclass(frozen=True, slots=True)
class VersionRange:
    """What versions a product entry covers."""

    kind: RangeKind
    constraints: tuple[Constraint, ...]
    text: str

    def contains(self, v: Version | None) -> bool | None:
        """True or False when it can tell; None for an unknown version or a range we
        could not read. The containment walk follows the vers specification: equality
        first, then an open lower end, an open upper end, and ``>=``/``<`` pairs."""
        if self.kind is RangeKind.all:
            return True
        if v is None or self.kind is not RangeKind.constraints:
            return None
        for c in self.constraints:
            if c.op == "=" and c.holds(v):
                return True
            if c.op == "!=" and not c.holds(v):
                return False
        rest = sorted(
            (c for c in self.constraints if c.op not in ("=", "!=")),
            key=functools.cmp_to_key(_by_version),
        )
        if not rest:
            return not any(c.op == "=" for c in self.constraints)
        if rest[0].op in ("<", "<=") and rest[0].holds(v):
            return True
        if rest[-1].op in (">", ">=") and rest[-1].holds(v):
            return True
        for cur, nxt in itertools.pairwise(rest):
            if cur.op in (">", ">=") and nxt.op in ("<", "<=") and cur.holds(v) and nxt.holds(v):
                return True
        return False

    def beyond(self, v: Version | None) -> bool:
        """The version is newer than every version the range covers: it has the fix
        (``< V3.2.17`` and V3.2.17 or later). A range open at the top never is."""
        if v is None or self.kind is not RangeKind.constraints or self.contains(v):
            return False
        tops = [c for c in self.constraints if c.op in ("<", "<=", "=")]
        if not tops or any(c.op == "!=" for c in self.constraints):
            return False
        return all(
            v.compare(c.version) > 0 or (c.op == "<" and v.compare(c.version) == 0) for c in tops
        )

    def __str__(self) -> str:
        return self.text


ALL = VersionRange(RangeKind.all, (), "*")
_OPS = re.compile(r"(<=|>=|!=|==|=|<|>)")
_ALL_WORDS = re.compile(
    r"^all\s+(?:(?:firmware|software|bios|hardware)\s+)?versions?\b\s*[:,]?\s*", re.I
)
_BEFORE = re.compile(r"\b(?:prior\s+to|before|earlier\s+than|older\s+than|below)\s+", re.I)
_UPTO = re.compile(r"\b(?:up\s+to(?:\s+and\s+including)?|until)\s+", re.I)
_OR_EARLIER = re.compile(
    r"(?P<v>[^\s|,;]+)\s+(?:and|or)\s+(?:earlier|prior|older|before|below|lower)\b", re.I
)
_OR_LATER = re.compile(
    r"(?P<v>[^\s|,;]+)(?:\s+(?:and|or)\s+(?:later|above|newer|higher|after)\b|\s*\+(?=\s|$))",
    re.I,
)
_SPAN = re.compile(r"^(?P<a>.+?)\s+(?:to|through|-)\s+(?P<b>.+)$", re.I)
_SPLIT = re.compile(r"\s*(?:\||,|;|\band\b|\bor\b)\s*", re.I)
_NOISE = re.compile(r"^(?:(?:firmware|software|bios|fw)\s*)?(?:versions?\s*)?", re.I)


def _unparsed(text: str) -> VersionRange:
    return VersionRange(RangeKind.unparsed, (), text)


def _piece(piece: str) -> list[Constraint] | None:
    """Constraints in one piece of a range (``>=V7.80<V9.40`` holds two), or None."""
    piece = _NOISE.sub("", piece.strip()).strip()
    if not piece:
        return []
    parts = _OPS.split(piece)
    out: list[Constraint] = []
    head = parts[0].strip()
    if head:  # no comparator in front: one version, or "A to B"
        if len(parts) > 1:
            return None
        span = _SPAN.match(head)
        if span:
            a, b = parse_version(span.group("a")), parse_version(span.group("b"))
            if a is None or b is None:
                return None
            return [Constraint(">=", a), Constraint("<=", b)]
        v = parse_version(head)
        return None if v is None else [Constraint("=", v)]
    for i in range(1, len(parts) - 1, 2):
        op = "=" if parts[i] == "==" else parts[i]
        v = parse_version(parts[i + 1].strip())
        if v is None:
            return None
        out.append(Constraint(op, v))
    return out


def parse_range(text: str | None) -> VersionRange:
    """A product entry's version or range, as written in a ``product_version`` or
    ``product_version_range`` branch (``vers:`` or plain text)."""
    if text is None or not str(text).strip():
        return VersionRange(RangeKind.unspecified, (), "")
    raw = str(text).strip()
    s = raw
    if s.lower().startswith("vers:"):
        _, _, s = s.partition("/")
    s = s.strip()
    if s in ("*", "") or s.lower() in ("all", "all versions", "any"):
        return VersionRange(RangeKind.all, (), raw)
    s = _ALL_WORDS.sub("", s).strip()
    if s in ("*", ""):
        return VersionRange(RangeKind.all, (), raw)
    s = _BEFORE.sub("<", s)
    s = _UPTO.sub("<=", s)
    s = _OR_EARLIER.sub(lambda m: "<=" + m.group("v"), s)
    s = _OR_LATER.sub(lambda m: ">=" + m.group("v"), s)
    out: list[Constraint] = []
    for piece in _SPLIT.split(s):
        got = _piece(piece)
        if got is None:
            return _unparsed(raw)
        out.extend(got)
    if not out:
        return _unparsed(raw)
    return VersionRange(RangeKind.constraints, tuple(out), raw)


__all__ = [
    "ALL",
    "Constraint",
    "RangeKind",
    "Version",
    "VersionRange",
    "parse_range",
    "parse_version",
]
