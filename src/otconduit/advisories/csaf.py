"""One CSAF 2.0 document (OASIS CSAF 2.0 §3.2) read into what Conduit keeps of it.

Kept: the document's identity (publisher namespace, ``tracking.id`` and ``version``, the
two release dates, title, the ``self`` reference), every vulnerability's CVE, title, CWE
and CVSS (v3 preferred over v2, §3.2.3.13), its ``product_status`` lists (§3.2.3.9) and
its remediations (§3.2.3.12, expanded through product groups), and the product tree
flattened (:mod:`tree`). Per product and status the importer stores the CVEs, the highest
score and the remediation that applies, so matching never re-reads the document.

Documents come from outside: anything that is not a CSAF 2.0 document, or not one we
can identify, is a :class:`CsafError` with a reason one line long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from otconduit.advisories.tree import ProductEntry, TreeError, flatten, product_groups

MAX_DOCUMENT_BYTES = 64 << 20
# product_status lists (§3.2.3.9) → the status Conduit reasons with.
STATUS_OF = {
    "known_affected": "known_affected",
    "first_affected": "known_affected",
    "last_affected": "known_affected",
    "fixed": "fixed",
    "first_fixed": "fixed",
    "known_not_affected": "known_not_affected",
    "under_investigation": "under_investigation",
}
# Remediation categories (§3.2.3.12.1), most useful first.
REMEDIATION_ORDER = ("vendor_fix", "workaround", "mitigation", "no_fix_planned", "none_available")
MAX_REMEDIATION = 400


def _list(v: Any) -> list[Any]:
    """A JSON array, or nothing: documents come from outside and may say anything."""
    return v if isinstance(v, list) else []


class CsafError(ValueError):
    """Not a CSAF 2.0 document we can use; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Vulnerability:
    cve: str | None
    title: str | None
    cwe: str | None
    cvss: float | None
    vector: str | None
    status: dict[str, list[str]]  # CSAF product_status list name -> product ids
    remediations: list[dict[str, Any]]
    scores: dict[str, tuple[float, str | None]]  # product id -> its highest (score, vector)


@dataclass(frozen=True, slots=True)
class ProductStatus:
    """What the advisory says about one product under one status."""

    product_id: str
    status: str  # known_affected | fixed | known_not_affected | under_investigation
    cves: tuple[str, ...]
    cvss: float | None
    vector: str | None
    remediation: str | None


@dataclass(slots=True)
class Advisory:
    publisher: str
    namespace: str
    tracking_id: str
    version: str
    status: str | None
    title: str
    initial_release: str | None
    current_release: str | None
    url: str | None
    cves: list[str]
    cvss: float | None
    vector: str | None
    vendors: list[str]
    products: dict[str, ProductEntry]
    statuses: list[ProductStatus]
    vulnerabilities: list[Vulnerability] = field(default_factory=list)


def _str(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def _score(s: dict[str, Any]) -> tuple[float, str | None] | None:
    for key in ("cvss_v3", "cvss_v2"):
        c = s.get(key)
        if isinstance(c, dict):
            base = c.get("baseScore")
            if isinstance(base, int | float) and not isinstance(base, bool) and 0 <= base <= 10:
                return float(base), _str(c.get("vectorString"))
    return None


def _remediation_text(r: dict[str, Any]) -> str:
    text = f"{r['category']}: {r.get('details') or ''}".strip()
    if len(text) > MAX_REMEDIATION:
        text = text[: MAX_REMEDIATION - 1] + "…"
    if r.get("url"):
        text += f" ({r['url']})"
    return text


def _vulnerability(v: dict[str, Any], groups: dict[str, list[str]]) -> Vulnerability:
    status: dict[str, list[str]] = {}
    ps = v.get("product_status")
    if isinstance(ps, dict):
        for name, ids in ps.items():
            if name in STATUS_OF and isinstance(ids, list):
                status[name] = [i for i in ids if isinstance(i, str)]
    best: tuple[float, str | None] | None = None
    scored: dict[str, tuple[float, str | None]] = {}
    for s in _list(v.get("scores")):
        if not isinstance(s, dict) or (sc := _score(s)) is None:
            continue
        if best is None or sc[0] > best[0]:
            best = sc
        for pid in _list(s.get("products")):
            if isinstance(pid, str) and (pid not in scored or sc[0] > scored[pid][0]):
                scored[pid] = sc
    rems: list[dict[str, Any]] = []
    for r in _list(v.get("remediations")):
        if not isinstance(r, dict) or _str(r.get("category")) not in REMEDIATION_ORDER:
            continue
        ids = [i for i in _list(r.get("product_ids")) if isinstance(i, str)]
        for g in _list(r.get("group_ids")):
            ids.extend(groups.get(g, []) if isinstance(g, str) else [])
        rems.append(
            {
                "category": r["category"],
                "details": _str(r.get("details")),
                "url": _str(r.get("url")),
                "product_ids": ids,
            }
        )
    cwe = v.get("cwe")
    return Vulnerability(
        cve=_str(v.get("cve")),
        title=_str(v.get("title")),
        cwe=_str(cwe.get("id")) if isinstance(cwe, dict) else None,
        cvss=best[0] if best else None,
        vector=best[1] if best else None,
        status=status,
        remediations=rems,
        scores=scored,
    )


def _statuses(vulns: list[Vulnerability]) -> list[ProductStatus]:
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for v in vulns:
        for list_name, ids in v.status.items():
            status = STATUS_OF[list_name]
            for pid in ids:
                a = acc.setdefault(
                    (pid, status), {"cves": [], "cvss": None, "vector": None, "rem": None}
                )
                if v.cve and v.cve not in a["cves"]:
                    a["cves"].append(v.cve)
                sc = v.scores.get(pid) or ((v.cvss, v.vector) if v.cvss is not None else None)
                if sc is not None and (a["cvss"] is None or sc[0] > a["cvss"]):
                    a["cvss"], a["vector"] = sc
                for r in v.remediations:
                    if pid not in r["product_ids"]:
                        continue
                    rank = REMEDIATION_ORDER.index(r["category"])
                    if a["rem"] is None or rank < a["rem"][0]:
                        a["rem"] = (rank, _remediation_text(r))
    return [
        ProductStatus(
            product_id=pid,
            status=status,
            cves=tuple(a["cves"]),
            cvss=a["cvss"],
            vector=a["vector"],
            remediation=a["rem"][1] if a["rem"] else None,
        )
        for (pid, status), a in acc.items()
    ]


def parse(data: bytes | str | dict[str, Any]) -> Advisory:
    """Read a CSAF 2.0 document (bytes, text, or already decoded JSON)."""
    if isinstance(data, bytes | str):
        if len(data) > MAX_DOCUMENT_BYTES:
            raise CsafError(f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB")
        try:
            doc = json.loads(data)
        except RecursionError:
            raise CsafError("JSON nested too deeply") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CsafError(f"not JSON: {exc}") from None
    else:
        doc = data
    if not isinstance(doc, dict):
        raise CsafError("not a JSON object")
    d = doc.get("document")
    if not isinstance(d, dict):
        raise CsafError("no 'document' object: not a CSAF document")
    if d.get("csaf_version") != "2.0":
        raise CsafError(f"csaf_version is {d.get('csaf_version')!r}, not '2.0'")
    tracking = d.get("tracking")
    if not isinstance(tracking, dict):
        raise CsafError("no document.tracking")
    tid, version = _str(tracking.get("id")), tracking.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    version = _str(version)
    if tid is None or version is None:
        raise CsafError("document.tracking has no id or no version")
    if len(tid) > 200:
        raise CsafError("document.tracking.id longer than 200 characters")
    pub: dict[str, Any] = d["publisher"] if isinstance(d.get("publisher"), dict) else {}
    namespace = _str(pub.get("namespace")) or _str(pub.get("name"))
    if namespace is None:
        raise CsafError("document.publisher has no namespace")
    url = None
    for ref in _list(d.get("references")):
        if isinstance(ref, dict) and ref.get("category") == "self" and _str(ref.get("url")):
            url = _str(ref.get("url"))
            break
    tree = doc.get("product_tree")
    try:
        products = flatten(tree)
    except TreeError as exc:
        raise CsafError(f"product tree: {exc}") from None
    groups = product_groups(tree)
    vulns = [
        _vulnerability(v, groups) for v in _list(doc.get("vulnerabilities")) if isinstance(v, dict)
    ]
    cves = list(dict.fromkeys(v.cve for v in vulns if v.cve))
    top = max((v for v in vulns if v.cvss is not None), key=lambda v: v.cvss or 0, default=None)
    vendors = list(dict.fromkeys(p.vendor for p in products.values() if p.vendor))
    return Advisory(
        publisher=_str(pub.get("name")) or namespace,
        namespace=namespace,
        tracking_id=tid,
        version=version,
        status=_str(tracking.get("status")),
        title=_str(d.get("title")) or tid,
        initial_release=_str(tracking.get("initial_release_date")),
        current_release=_str(tracking.get("current_release_date")),
        url=url,
        cves=cves,
        cvss=top.cvss if top else None,
        vector=top.vector if top else None,
        vendors=vendors,
        products=products,
        statuses=_statuses(vulns),
        vulnerabilities=vulns,
    )


def is_feed_or_metadata(doc: Any) -> bool:
    """A ROLIE feed or provider metadata file: found beside advisories, not one of them."""
    return isinstance(doc, dict) and (
        "feed" in doc or ("canonical_url" in doc and "metadata_version" in doc)
    )


__all__ = [
    "Advisory",
    "CsafError",
    "ProductStatus",
    "Vulnerability",
    "is_feed_or_metadata",
    "parse",
]
