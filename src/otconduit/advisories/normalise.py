"""How vendors write who they are and what they make, reduced to keys that compare.

- Vendors: ``Rockwell Automation/Allen-Bradley`` (CIP identity), ``Rockwell Automation``
  (advisory), ``Siemens AG`` and ``Siemens``, ``Schneider Electric Software, LLC``: one key
  per company.
- Order and catalog numbers: Siemens order numbers (MLFB, ``6ES7 315-2EH14-0AB0`` from the
  SZL, ``6ES7315-2EH14-0AB0`` in advisories), Rockwell catalog numbers with a series
  (``1756-ENBT/A`` from CIP identity, ``1756-ENBT`` in advisories), Schneider references
  (``BMX P34 2020`` from Modbus 43/14, ``BMXP34*`` in advisories): spaces, dashes and
  case do not count, a Rockwell series letter is dropped, ``*`` and a lower-case ``x`` in
  an advisory's number are wildcards.
- Names: word sequences compared at word boundaries with the spacing squeezed out, so
  ``CPU 315-2 PN/DP`` is found in ``SIMATIC S7-300 CPU 315-2 PN/DP (6ES7315-2EH14-0AB0)``
  but not in ``... CPU 315-2F ...``.
- Families: an order number or model tells the product family advisories are often
  written against (``6ES7 315-...`` and ``CPU 315-2 PN/DP`` are an S7-300 CPU).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

_PUNCT = re.compile(r"[^a-z0-9&]+")
_SUFFIXES = frozenset(
    [
        "ag",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "ltd",
        "limited",
        "llc",
        "gmbh",
        "sa",
        "se",
        "plc",
        "kg",
        "bv",
        "nv",
        "oy",
        "ab",
        "spa",
        "srl",
        "as",
        "kk",
        "the",
    ]
)
# Companies that write their name several ways (first words after normalisation -> key).
_VENDOR_ALIASES: tuple[tuple[str, str], ...] = (
    ("rockwell", "rockwell automation"),
    ("allen bradley", "rockwell automation"),
    ("schneider", "schneider electric"),
    ("telemecanique", "schneider electric"),
    ("modicon", "schneider electric"),
    ("siemens healthineers", "siemens healthineers"),
    ("siemens", "siemens"),
    ("general electric", "general electric"),
    ("ge digital", "general electric"),
    ("ge vernova", "general electric"),
    ("ge grid", "general electric"),
    ("ge", "general electric"),
    ("mitsubishi electric", "mitsubishi electric"),
    ("phoenix contact", "phoenix contact"),
    ("wago", "wago"),
    ("omron", "omron"),
    ("moxa", "moxa"),
    ("abb", "abb"),
    ("honeywell", "honeywell"),
    ("emerson", "emerson"),
    ("yokogawa", "yokogawa"),
    ("beckhoff", "beckhoff"),
    ("hitachi energy", "hitachi energy"),
    ("delta electronics", "delta electronics"),
)


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def vendor_key(text: str | None) -> str | None:
    """One key per company, or None for an empty name."""
    if not text:
        return None
    words = [w for w in _norm(text).split() if w not in _SUFFIXES]
    if not words:
        return None
    name = " ".join(words)
    for prefix, key in _VENDOR_ALIASES:
        if name == prefix or name.startswith(prefix + " "):
            return key
    return name


def vendor_keys(text: str | None) -> frozenset[str]:
    """Keys of every company a vendor branch names (``ABB, Phoenix Contact, Siemens, and
    WAGO`` names four; ``Rockwell Automation/Allen-Bradley`` one)."""
    if not text:
        return frozenset()
    keys = {k for p in re.split(r",|;|\band\b", text) if (k := vendor_key(p)) is not None}
    return frozenset(keys)


# -- order and catalog numbers ------------------------------------------------
_MLFB = re.compile(r"\b\d[A-Z]{2}\d\s?\d{3}-?[0-9A-Z]{4,5}-?[0-9A-Z]{4}\b")
_CATALOG = re.compile(r"\b\d{4}[A-Z]?-[A-Z0-9x*]{2,}(?:-[A-Z0-9x*]+)*(?:/[A-Z])?(?![\w*])")
_SCHNEIDER = re.compile(
    r"\b(?:BM[XEH]\s?[A-Z]{1,3}[0-9]{0,2}(?:\s?[0-9]{2,4})?[0-9A-Zx*]*|TM\d{3}[A-Z0-9x*]+"
    r"|140\s?CPU\s?\d{3}\s?\d{2})"
    r"(?![\w*])"
)
_WILDCARD = re.compile(r"(?<![\w*])[A-Z0-9][A-Z0-9-]{2,}\*[A-Z0-9*]*")
_SERIES = re.compile(r"/[A-Z]$|\s+SER(?:IES)?\.?\s*[A-Z]$", re.I)


def squash(text: str) -> str:
    """Upper-case letters, digits and wildcards only: how part numbers compare."""
    return re.sub(r"[^A-Z0-9*?]", "", text.upper())


def part_key(text: str) -> str:
    """The comparable key of a part number a device states (series letter dropped)."""
    return squash(_SERIES.sub("", text.strip()))


def part_pattern(text: str) -> str:
    """The comparable pattern of a part number an advisory states: a lower-case ``x``
    in it is a wildcard (``BMX P34x``, ``1756-L7x``)."""
    text = _SERIES.sub("", text.strip())
    text = re.sub(r"(?<=[0-9A-Z])x|x(?=[0-9A-Z])", "*", text)
    return squash(text)


def _catalog_ok(hit: str) -> bool:
    return bool(re.search(r"-[^-]*[A-Za-z]", hit))


def find_part_numbers(text: str) -> list[str]:
    """Order, catalog and reference numbers written in a name, as found."""
    found: list[str] = []
    for rx in (_MLFB, _CATALOG, _SCHNEIDER, _WILDCARD):
        for m in rx.finditer(text):
            hit = m.group(0).strip()
            if rx is _CATALOG and not _catalog_ok(hit):
                continue
            if not re.search(r"[0-9*]|x$", hit):
                continue
            if not any(hit in f or f in hit for f in found):
                found.append(hit)
    return found


def part_matches(key: str, pattern: str) -> bool:
    """A device's part key against an advisory's pattern (wildcards allowed)."""
    if not key or not pattern:
        return False
    if "*" in pattern or "?" in pattern:
        return fnmatchcase(key, pattern)
    return key == pattern


# -- names ----------------------------------------------------------------------
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


def phrase_in(needle: tuple[str, ...], hay: tuple[str, ...]) -> bool:
    """The needle's words, spacing squeezed out, run from a word boundary to a word
    boundary of the haystack (``BMX P34 2020`` is in ``... BMXP342020 ...``)."""
    want = "".join(needle)
    if not want:
        return False
    n = len(hay)
    for i in range(n):
        if not want.startswith(hay[i][:1]):
            continue
        acc = ""
        for j in range(i, n):
            acc += hay[j]
            if len(acc) > len(want) or not want.startswith(acc):
                break
            if acc == want:
                return True
    return False


def model_like(text: str) -> bool:
    """A name specific enough to match on: a digit in it and four characters or more
    (``CPU 315-2 PN/DP``, ``M340``; not ``PLC`` or a CIP product code ``58``)."""
    squashed = "".join(tokens(text))
    return len(squashed) >= 4 and any(c.isdigit() for c in squashed) and not squashed.isdigit()


# -- families ---------------------------------------------------------------------
# (vendor key, regex on a part key or a model name, family phrases advisories use).
_FAMILIES: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    ("siemens", re.compile(r"^(?:6ES7|6AG1)3[01]\d"), ("S7-300",)),
    # ET 200 CPUs (IM151-8, IM154-8) count as S7-300 CPUs in Siemens advisories.
    ("siemens", re.compile(r"^(?:6ES7|6AG1)15[14]8"), ("S7-300",)),
    ("siemens", re.compile(r"^(?:6ES7|6AG1)41\d"), ("S7-400",)),
    ("siemens", re.compile(r"^(?:6ES7|6AG1)21\d"), ("S7-1200",)),
    ("siemens", re.compile(r"^(?:6ES7|6AG1)51\d"), ("S7-1500",)),
    ("siemens", re.compile(r"^CPU\s?3[01]\d", re.I), ("S7-300",)),
    ("siemens", re.compile(r"^CPU\s?41\d", re.I), ("S7-400",)),
    ("siemens", re.compile(r"^CPU\s?12\d\d", re.I), ("S7-1200",)),
    ("siemens", re.compile(r"^CPU\s?15\d\d", re.I), ("S7-1500",)),
    ("rockwell automation", re.compile(r"^1756"), ("ControlLogix",)),
    ("rockwell automation", re.compile(r"^1769"), ("CompactLogix",)),
    ("rockwell automation", re.compile(r"^1766"), ("MicroLogix 1400",)),
    ("rockwell automation", re.compile(r"^1763"), ("MicroLogix 1100",)),
    ("rockwell automation", re.compile(r"^1762"), ("MicroLogix 1200",)),
    ("rockwell automation", re.compile(r"^1761"), ("MicroLogix 1000",)),
    ("rockwell automation", re.compile(r"^1747"), ("SLC 500", "SLC-500")),
    ("rockwell automation", re.compile(r"^1785"), ("PLC-5",)),
    ("schneider electric", re.compile(r"^BMXP34"), ("Modicon M340", "M340")),
    ("schneider electric", re.compile(r"^BME[PH]58"), ("Modicon M580", "M580")),
    ("schneider electric", re.compile(r"^TM221"), ("Modicon M221", "M221")),
    ("schneider electric", re.compile(r"^TM241"), ("Modicon M241", "M241")),
    ("schneider electric", re.compile(r"^TM251"), ("Modicon M251", "M251")),
    ("schneider electric", re.compile(r"^140CPU"), ("Modicon Quantum", "Quantum")),
)
# Words that say nothing about which member of a family an entry means.
FAMILY_NOISE = frozenset(
    [
        "simatic",
        "siplus",
        "modicon",
        "allen",
        "bradley",
        "cpu",
        "cpus",
        "plc",
        "plcs",
        "controller",
        "controllers",
        "family",
        "families",
        "incl",
        "including",
        "related",
        "variants",
        "variant",
        "and",
        "all",
        "versions",
        "series",
        "module",
        "modules",
        "firmware",
        "with",
        "the",
        "of",
        "programmable",
        "logic",
    ]
)


def families(vendor: str, values: list[str]) -> list[str]:
    """Family phrases a device belongs to, from its part keys and model names."""
    out: list[str] = []
    for key, rx, names in _FAMILIES:
        if key != vendor:
            continue
        for v in values:
            if rx.search(v) or rx.search(squash(v)):
                out.extend(n for n in names if n not in out)
    return out


def is_family_entry(text: str, family: str) -> bool:
    """An advisory entry that names a whole family (``SIMATIC S7-300 CPU family (incl.
    related ET200 CPUs and SIPLUS variants)``, ``Modicon M340``) rather than one member
    of it (``SIMATIC S7-300 CPU 314C-2 PN/DP``)."""
    hay, fam = tokens(text), tokens(family)
    if not phrase_in(fam, hay):
        return False
    if "family" in hay:
        return True
    rest = [t for t in hay if t not in FAMILY_NOISE and t not in fam]
    return not any(any(c.isdigit() for c in t) for t in rest)


__all__ = [
    "families",
    "find_part_numbers",
    "is_family_entry",
    "model_like",
    "part_key",
    "part_matches",
    "part_pattern",
    "phrase_in",
    "squash",
    "tokens",
    "vendor_key",
    "vendor_keys",
]
