"""Advisory product entries against an asset's identity claims.

An entry matches an asset of the same vendor in one of three ways, strongest first:

1. ``order_number``: a part number the asset states (Siemens order number, Rockwell
   catalog number, Schneider reference) equals one the entry names, or fits its
   wildcard. When both sides state part numbers and none agree, the entry is about
   another variant and nothing weaker is tried.
2. ``model``: the asset's model or product name appears, word for word, in the entry's
   product name.
3. ``family``: the asset's part number or model places it in a family (an S7-300 CPU),
   and the entry names that whole family rather than one member.

Then the firmware decides the status: inside the affected range is ``affected``, past
its end ``fixed`` (as is a version the advisory lists as fixed), before its start no
match at all; an unknown firmware, or a range we cannot read, gives ``version_unknown``,
a candidate kept apart from confirmed matches. An entry marked ``known_not_affected``
that covers the asset's version clears the advisory. Every match says which identity
claim met which product entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from otconduit.advisories import normalise as nz
from otconduit.advisories.versions import RangeKind, Version, VersionRange, parse_range
from otconduit.advisories.versions import parse_version as _parse_version

FIRMWARE_FROM = ("firmware", "revision", "firmware_version", "software_version")
PART_FROM = ("order_number", "catalog_number", "model", "product_code", "product_name")
MODEL_FROM = ("product_name", "model", "model_name", "product_code")
UNTRUSTED = frozenset({"oui"})  # a NIC maker, not the device's vendor
CONFIDENCE_RANK = {"high": 0, "medium": 1, "low": 2}
STATUS_RANK = {"affected": 0, "fixed": 1, "version_unknown": 2}


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """One stored product entry under one status, with its advisory's identity."""

    advisory: str
    title: str
    url: str | None
    product_id: str
    status: str
    vendor_key: str
    vendor: str | None
    family: str | None
    product: str | None
    version: str | None
    version_source: str | None
    full_name: str
    part_numbers: tuple[str, ...]
    cves: tuple[str, ...]
    cvss: float | None
    vector: str | None
    remediation: str | None


@dataclass(frozen=True, slots=True)
class Claim:
    attribute: str
    value: str
    source: str

    def __str__(self) -> str:
        return f"{self.attribute} {self.value!r} ({self.source})"


@dataclass(slots=True)
class Identity:
    """What an asset says about itself, prepared for matching."""

    vendors: set[str] = field(default_factory=set)
    parts: list[tuple[str, Claim]] = field(default_factory=list)
    models: list[tuple[tuple[str, ...], Claim]] = field(default_factory=list)
    families: list[tuple[str, Claim]] = field(default_factory=list)
    firmware: Claim | None = None
    version: Version | None = None

    @property
    def usable(self) -> bool:
        return bool(self.vendors) and bool(self.parts or self.models or self.families)

    def signature(self) -> tuple[Any, ...]:
        """Identical devices share a signature, and so their matches."""
        return (
            tuple(sorted(self.vendors)),
            tuple(self.parts),
            tuple(self.models),
            tuple(self.families),
        )


def identity_of(asset: dict[str, Any]) -> Identity:
    """An asset row (``views.assets`` shape: ``identity_claims``) as an :class:`Identity`."""
    claims = [
        Claim(str(c["attribute"]), str(c["value"]).strip(), str(c["source"]))
        for c in asset.get("identity_claims", [])
        if c.get("value") not in (None, "")
    ]
    ident = Identity()
    trusted = [c for c in claims if c.source not in UNTRUSTED]
    # The NIC maker (OUI) counts only when the device itself names no vendor.
    stated = [c for c in trusted if c.attribute == "vendor"] or [
        c for c in claims if c.attribute == "vendor"
    ]
    ident.vendors = {k for c in stated for k in nz.vendor_keys(c.value)}
    seen_parts: set[str] = set()
    for c in trusted:
        if c.attribute not in PART_FROM:
            continue
        found = nz.find_part_numbers(c.value)
        if c.attribute in ("order_number", "catalog_number") and not found:
            found = [c.value]
        for p in found:
            key = nz.part_key(p)
            if len(key) >= 5 and key not in seen_parts:
                seen_parts.add(key)
                ident.parts.append((key, c))
    seen_models: set[tuple[str, ...]] = set()
    for c in trusted:
        if c.attribute in MODEL_FROM and nz.model_like(c.value):
            toks = nz.tokens(c.value)
            if toks not in seen_models:
                seen_models.add(toks)
                ident.models.append((toks, c))
    for vendor in sorted(ident.vendors):
        for key, c in ident.parts:
            for fam in nz.families(vendor, [key]):
                if fam not in [f for f, _ in ident.families]:
                    ident.families.append((fam, c))
        for _, c in ident.models:
            for fam in nz.families(vendor, [c.value]):
                if fam not in [f for f, _ in ident.families]:
                    ident.families.append((fam, c))
    for name in FIRMWARE_FROM:
        for c in trusted:
            if c.attribute == name and ident.firmware is None:
                v = _parse_version(c.value, lenient=True)
                if v is not None:
                    ident.firmware, ident.version = c, v
    return ident


@lru_cache(maxsize=8192)
def _range(text: str | None) -> VersionRange:
    return parse_range(text)


@dataclass(slots=True)
class _Prepared:
    rec: ProductRecord
    patterns: tuple[tuple[str, str], ...]  # (pattern, as written)
    product_tokens: tuple[str, ...]
    name_tokens: tuple[str, ...]
    range: VersionRange


def _prepare(rec: ProductRecord) -> _Prepared:
    return _Prepared(
        rec=rec,
        patterns=tuple((nz.part_pattern(p), p) for p in rec.part_numbers if nz.part_pattern(p)),
        product_tokens=nz.tokens(" ".join(x for x in (rec.family, rec.product) if x)),
        name_tokens=nz.tokens(rec.full_name),
        range=_range(rec.version),
    )


class ProductIndex:
    """Product entries by vendor key, prepared once for many assets."""

    def __init__(self, records: Iterable[ProductRecord]) -> None:
        self.by_vendor: dict[str, list[_Prepared]] = {}
        for rec in records:
            self.by_vendor.setdefault(rec.vendor_key, []).append(_prepare(rec))
        self._identified: dict[tuple[Any, ...], list[tuple[_Prepared, str, str, str]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_vendor.values())

    def identified(self, ident: Identity) -> list[tuple[_Prepared, str, str, str]]:
        """Entries this identity matches: (entry, how, detail, confidence). Cached per
        signature: a plant has many identical devices."""
        sig = ident.signature()
        hit = self._identified.get(sig)
        if hit is None:
            hit = []
            pools = [self.by_vendor.get(v, []) for v in sorted(ident.vendors)]
            if ident.parts:  # entries naming no vendor: exact part numbers only
                pools.append(self.by_vendor.get("", []))
            for pool in pools:
                for e in pool:
                    got = _identify(ident, e, anonymous=not e.rec.vendor_key)
                    if got is not None:
                        hit.append((e, *got))
            if len(self._identified) < 4096:
                self._identified[sig] = hit
        return hit


def _identify(ident: Identity, e: _Prepared, *, anonymous: bool) -> tuple[str, str, str] | None:
    if e.patterns and ident.parts:
        for key, claim in ident.parts:
            for pat, written in e.patterns:
                if anonymous and ("*" in pat or "?" in pat):
                    continue
                if nz.part_matches(key, pat):
                    wild = "*" in pat or "?" in pat
                    how = "part number pattern" if wild else "part number"
                    return (
                        "order_number",
                        f"{claim} = {how} {written}",
                        ("medium" if wild else "high"),
                    )
        return None
    if anonymous:
        return None
    for toks, claim in ident.models:
        if nz.phrase_in(toks, e.product_tokens) or nz.phrase_in(toks, e.name_tokens):
            return "model", f"{claim} in product {e.rec.product or e.rec.full_name!r}", "medium"
    if not e.patterns:
        for fam, claim in ident.families:
            text = " ".join(x for x in (e.rec.family, e.rec.product) if x)
            if nz.is_family_entry(text, fam):
                return (
                    "family",
                    f"{claim} places it in the {fam} family; the entry names the family {text!r}",
                    "low",
                )
    return None


def _decide(e: _Prepared, ident: Identity) -> tuple[str | None, str]:
    """(status, reason) for a matched entry; status None when the version is outside."""
    rng, v, fw = e.range, ident.version, ident.firmware
    said = f"firmware {fw.value!r} ({fw.source})" if fw is not None else "firmware unknown"
    status = e.rec.status
    if rng.kind in (RangeKind.all, RangeKind.unspecified):
        covers = "all versions" if rng.kind is RangeKind.all else "no version named"
        return {
            "known_affected": "affected",
            "fixed": "fixed" if v is not None else None,
            "known_not_affected": "not_affected",
        }.get(status), f"{covers} ({rng.text or '-'})"
    if rng.kind is RangeKind.unparsed:
        if status != "known_affected":
            return None, ""
        return "version_unknown", f"{said}; range not machine-readable: {rng.text!r}"
    inside = rng.contains(v)
    if inside is None:
        return (
            "version_unknown" if status == "known_affected" else None
        ), f"{said}; range {rng.text}"
    if status == "known_affected":
        if inside:
            return "affected", f"{said} in {rng.text}"
        if rng.beyond(v):
            return "fixed", f"{said} past the affected range {rng.text}"
        return None, ""
    if status == "fixed":
        if inside or (
            v is not None
            and all(c.op == "=" for c in rng.constraints)
            and all(v.compare(c.version) >= 0 for c in rng.constraints)
        ):
            return "fixed", f"{said} is a fixed version ({rng.text})"
        return None, ""
    if status == "known_not_affected" and inside:
        return "not_affected", f"{said} not affected ({rng.text})"
    return None, ""


@dataclass(frozen=True, slots=True)
class Match:
    """One advisory that concerns one asset, with why."""

    record: ProductRecord
    status: str  # affected | fixed | version_unknown
    confidence: str  # high | medium | low
    how: str  # order_number | model | family
    matched_on: str

    def rank(self) -> tuple[int, int, int, float]:
        """Lower is stronger: surer identity, then status, then what the advisory states
        outright (a listed fixed version over one inferred past a range), then severity."""
        inferred = (self.status == "fixed") != (self.record.status == "fixed")
        return (
            CONFIDENCE_RANK[self.confidence],
            STATUS_RANK[self.status],
            int(inferred),
            -(self.record.cvss or 0.0),
        )


def match_identity(ident: Identity, index: ProductIndex) -> list[Match]:
    """The advisories concerning an identity, one match each (the strongest), most
    severe first."""
    if not ident.usable:
        return []
    best: dict[str, Match] = {}
    cleared: dict[str, int] = {}  # advisory -> strongest not-affected confidence
    for e, how, detail, conf in index.identified(ident):
        status, why = _decide(e, ident)
        if status is None:
            continue
        if status == "not_affected":
            rank = CONFIDENCE_RANK[conf]
            cleared[e.rec.advisory] = min(rank, cleared.get(e.rec.advisory, 9))
            continue
        m = Match(e.rec, status, conf, how, f"{detail}; {why}")
        old = best.get(e.rec.advisory)
        if old is None or m.rank() < old.rank():
            best[e.rec.advisory] = m
    out = [
        m
        for adv, m in best.items()
        if adv not in cleared or cleared[adv] > CONFIDENCE_RANK[m.confidence]
    ]
    out.sort(key=lambda m: (STATUS_RANK[m.status], -(m.record.cvss or 0.0), m.record.advisory))
    return out


def match_asset(asset: dict[str, Any], index: ProductIndex) -> list[Match]:
    """:func:`match_identity` for an asset row."""
    return match_identity(identity_of(asset), index)


__all__ = [
    "Claim",
    "Identity",
    "Match",
    "ProductIndex",
    "ProductRecord",
    "identity_of",
    "match_asset",
    "match_identity",
]
