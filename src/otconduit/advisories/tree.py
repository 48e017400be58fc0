"""A CSAF product tree (CSAF 2.0 §3.1.3 and §3.2.2) flattened into one entry per product id.

Branches nest vendor → product family → product name → product version or version range
(CISA's advisories: vendor → product name → version, three levels); products may also be
listed in ``full_product_names`` or built by ``relationships`` (firmware ``installed_on``
hardware), and each may carry identification helpers (CPE, PURL, model numbers, SKUs).
The tree comes from outside: it is walked without recursion, to a bounded depth and
product count, and anything of the wrong type is skipped rather than trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from otconduit.advisories.normalise import find_part_numbers
from otconduit.advisories.versions import RangeKind, parse_range

MAX_DEPTH = 32
MAX_PRODUCTS = 50_000


def _list(v: Any) -> list[Any]:
    """A JSON array, or nothing: documents come from outside and may say anything."""
    return v if isinstance(v, list) else []


class TreeError(ValueError):
    """The product tree is unusable as a whole (too deep, too many products)."""


@dataclass(frozen=True, slots=True)
class ProductEntry:
    """One product of an advisory, with what identifies it."""

    product_id: str
    full_name: str
    vendor: str | None = None
    family: str | None = None
    product: str | None = None  # the product_name branch, or the full name
    version: str | None = None  # version or range text as written
    version_source: str | None = None  # product_version | product_version_range | cpe | purl
    part_numbers: tuple[str, ...] = ()
    cpe: str | None = None
    purl: str | None = None


def _str(v: Any) -> str | None:
    """Text with its whitespace (no-break spaces, line breaks) folded to single spaces."""
    return " ".join(v.split()) if isinstance(v, str) and v.strip() else None


def _strs(v: Any) -> list[str]:
    return [t for s in v if (t := _str(s))] if isinstance(v, list) else []


def cpe_parts(cpe: str) -> tuple[str | None, str | None, str | None]:
    """(vendor, product, version) of a CPE 2.3 or 2.2 name; ``*`` and ``-`` are None."""
    body = cpe[len("cpe:2.3:") :] if cpe.startswith("cpe:2.3:") else cpe.removeprefix("cpe:/")
    fields = re.split(r"(?<!\\):", body)

    def pick(i: int) -> str | None:
        if i >= len(fields) or fields[i] in ("", "*", "-"):
            return None
        return fields[i].replace("\\", "").replace("_", " ")

    return pick(1), pick(2), pick(3)


def purl_parts(purl: str) -> tuple[str | None, str | None, str | None]:
    """(namespace, name, version) of a package URL."""
    m = re.match(r"^pkg:[^/]+/(?:(?P<ns>[^@?#]+)/)?(?P<name>[^/@?#]+)(?:@(?P<v>[^?#]+))?", purl)
    if m is None:
        return None, None, None
    return m.group("ns"), m.group("name"), m.group("v")


def _helper(product: dict[str, Any]) -> tuple[list[str], str | None, str | None]:
    h = product.get("product_identification_helper")
    if not isinstance(h, dict):
        return [], None, None
    parts = _strs(h.get("model_numbers")) + _strs(h.get("skus"))
    return parts, _str(h.get("cpe")), _str(h.get("purl"))


def _entry(product: dict[str, Any], path: dict[str, str]) -> ProductEntry | None:
    pid, name = _str(product.get("product_id")), _str(product.get("name"))
    if pid is None:
        return None
    name = name or pid
    parts, cpe, purl = _helper(product)
    vendor, family, prod = path.get("vendor"), path.get("product_family"), path.get("product_name")
    version: str | None = None
    source: str | None = None
    for cat in ("product_version", "product_version_range"):
        if cat in path:
            version, source = path[cat], cat
    # CISA's extraction sometimes files a model under product_version ("M221",
    # "1783-SAD4T0SBK9"): text that is no version and no range belongs to the name.
    if (
        source == "product_version"
        and version is not None
        and parse_range(version).kind is RangeKind.unparsed
        and not re.search(r"[<>=]", version)
    ):
        prod = f"{prod} {version}" if prod else version
        version, source = None, None
    for extra in ("architecture", "patch_level", "service_pack", "specification"):
        if extra in path:
            prod = f"{prod} {path[extra]}" if prod else path[extra]
    if cpe:
        c_vendor, c_product, c_version = cpe_parts(cpe)
        vendor = vendor or c_vendor
        prod = prod or c_product
        if version is None and c_version:
            version, source = c_version, "cpe"
    if purl:
        p_ns, p_name, p_version = purl_parts(purl)
        vendor = vendor or p_ns
        prod = prod or p_name
        if version is None and p_version:
            version, source = p_version, "purl"
    found = []
    for text in (prod or "", name):
        found.extend(find_part_numbers(text))
    for p in found:
        if p not in parts:
            parts.append(p)
    return ProductEntry(
        product_id=pid,
        full_name=name,
        vendor=vendor,
        family=family,
        product=prod or name,
        version=version,
        version_source=source,
        part_numbers=tuple(parts),
        cpe=cpe,
        purl=purl,
    )


def flatten(tree: Any) -> dict[str, ProductEntry]:
    """Every product in a product tree by its id (the first definition wins)."""
    out: dict[str, ProductEntry] = {}
    if not isinstance(tree, dict):
        return out

    def add(entry: ProductEntry | None) -> None:
        if entry is not None and entry.product_id not in out:
            if len(out) >= MAX_PRODUCTS:
                raise TreeError(f"more than {MAX_PRODUCTS} products")
            out[entry.product_id] = entry

    stack: list[tuple[Any, dict[str, str], int]] = [(tree.get("branches"), {}, 0)]
    while stack:
        branches, path, depth = stack.pop()
        if not isinstance(branches, list):
            continue
        if depth > MAX_DEPTH:
            raise TreeError(f"branches nested deeper than {MAX_DEPTH}")
        for b in reversed(branches):
            if not isinstance(b, dict):
                continue
            cat, name = _str(b.get("category")), _str(b.get("name"))
            here = dict(path)
            if cat and name:
                if cat == "product_family" and cat in here:
                    here[cat] = f"{here[cat]} / {name}"
                else:
                    here[cat] = name
            if isinstance(b.get("product"), dict):
                add(_entry(b["product"], here))
            stack.append((b.get("branches"), here, depth + 1))
    for fpn in _list(tree.get("full_product_names")):
        if isinstance(fpn, dict):
            add(_entry(fpn, {}))
    for rel in _list(tree.get("relationships")):
        if isinstance(rel, dict):
            add(_relationship(rel, out))
    return out


def _relationship(rel: dict[str, Any], known: dict[str, ProductEntry]) -> ProductEntry | None:
    """A product made of two (``installed_on``, ``default_component_of``, ...): vendor and
    version from the component, names and part numbers from both."""
    fpn = rel.get("full_product_name")
    if not isinstance(fpn, dict):
        return None
    pid, name = _str(fpn.get("product_id")), _str(fpn.get("name"))
    ref = known.get(_str(rel.get("product_reference")) or "")
    on = known.get(_str(rel.get("relates_to_product_reference")) or "")
    if pid is None:
        return None
    name = name or pid
    parts = [*(ref.part_numbers if ref else ()), *(on.part_numbers if on else ())]
    prods = [e.product for e in (ref, on) if e is not None and e.product]
    return ProductEntry(
        product_id=pid,
        full_name=name,
        vendor=(ref.vendor if ref else None) or (on.vendor if on else None),
        family=(ref.family if ref else None) or (on.family if on else None),
        product=" / ".join(prods) if prods else name,
        version=ref.version if ref else None,
        version_source=ref.version_source if ref else None,
        part_numbers=tuple(dict.fromkeys(parts)),
        cpe=ref.cpe if ref else None,
        purl=ref.purl if ref else None,
    )


def product_groups(tree: Any) -> dict[str, list[str]]:
    """Group id → product ids (remediations may name groups instead of products)."""
    out: dict[str, list[str]] = {}
    if not isinstance(tree, dict):
        return out
    for g in _list(tree.get("product_groups")):
        if isinstance(g, dict) and (gid := _str(g.get("group_id"))):
            out[gid] = _strs(g.get("product_ids"))
    return out


__all__ = ["ProductEntry", "TreeError", "cpe_parts", "flatten", "product_groups", "purl_parts"]
