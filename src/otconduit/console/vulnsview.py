"""The console's known vulnerabilities: one page with every asset's advisories sorted by
risk (affected first, by CVSS; then the ``version_unknown`` candidates; fixed last), and
each asset's own list. The rows are ``conduit vulns``'s, computed once per state of the
store and of its advisories."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from otconduit.advisories.vulns import STATUSES, VulnReport, vulnerabilities
from otconduit.console.authdb import User
from otconduit.console.context import Console, console
from otconduit.console.data import fingerprint
from otconduit.console.security import viewer
from otconduit.store import Store
from otconduit.store import advisories as adb

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(viewer)]
Ctx = Annotated[Console, Depends(console)]
PAGE = 50
# Risk order: what is exposed now, then what might be, then what was fixed.
RISK = {"affected": 0, "version_unknown": 1, "fixed": 2}
CONFIDENCE = {"high": 0, "medium": 1, "low": 2}


def report(ctx: Console, store: Store) -> VulnReport:
    """Every confirmed asset's matches, sorted by risk (cached until the captures or the
    advisories change)."""
    key = (*fingerprint(store, alerts=False), *adb.generation(store))

    def make() -> VulnReport:
        rep = vulnerabilities(store)
        rep.rows.sort(
            key=lambda r: (
                RISK[r["status"]],
                -(r["cvss"] or 0.0),
                CONFIDENCE.get(r["confidence"], 9),
                r["ip"],
                r["advisory"],
            )
        )
        return rep

    return ctx.cache.get("vulnerabilities", key, make)


def _matches(row: dict[str, Any], needle: str) -> bool:
    hay = " ".join(
        str(row.get(k) or "") for k in ("ip", "name", "advisory", "title", "product", "vendor")
    )
    return needle in (hay + " " + " ".join(row["cves"])).lower()


@router.get("/vulnerabilities", response_class=HTMLResponse)
def vulnerabilities_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    status: Annotated[str, Query(max_length=20)] = "",
    min_cvss: Annotated[float | None, Query(ge=0, le=10)] = None,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: int = 0,
) -> Response:
    from otconduit.console.pages import _offset, _pages, _qs, render

    offset = _offset(offset)
    rep = report(ctx, ctx.stores.reader())
    rows = rep.rows
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    if status in STATUSES:
        rows = [r for r in rows if r["status"] == status]
    if min_cvss is not None:
        rows = [r for r in rows if r["cvss"] is not None and r["cvss"] >= min_cvss]
    if q.strip():
        rows = [r for r in rows if _matches(r, q.strip().lower())]
    params = {"status": status, "min_cvss": min_cvss, "q": q}
    return render(
        request, "vulns.html", nav="vulnerabilities", items=rows[offset : offset + PAGE],
        p=_pages(len(rows), offset, PAGE), params=params, qs=_qs, counts=counts,
        statuses=STATUSES, advisories=rep.advisories, unmatched=rep.unmatched,
    )  # fmt: skip


@router.get("/assets/{ip}/vulnerabilities", response_class=HTMLResponse)
def asset_vulnerabilities_page(request: Request, ip: str, user: Viewer, ctx: Ctx) -> Response:
    from otconduit.console.pages import render

    rep = report(ctx, ctx.stores.reader())
    rows = [r for r in rep.rows if r["ip"] == ip]
    unmatched = any(a["ip"] == ip for a in rep.unmatched)
    return render(
        request, "asset_vulns.html", nav="assets", ip=ip, items=rows,
        advisories=rep.advisories, unmatched=unmatched,
    )  # fmt: skip


__all__ = ["report", "router"]
