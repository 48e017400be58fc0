"""The console on a hub database: a Sites page (per-site overview and health: last
message, delay, backlog, drops, refusals) and the assets and alerts of every site with a
site column and a site filter. The pages appear in the navigation once any site has sent
anything (:func:`hub_mode`); the queries are the hub's own (``store/hub.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from otconduit.console.authdb import User
from otconduit.console.context import Console, console
from otconduit.console.security import viewer
from otconduit.detect.rules import Severity
from otconduit.store import hub as hub_q

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(viewer)]
Ctx = Annotated[Console, Depends(console)]
SiteParam = Annotated[str, Query(max_length=64)]
PAGE = 50


def hub_mode(request: Request) -> bool:
    """Whether the console's database is a hub's (any site sent anything)."""
    ctx = getattr(request.app.state, "console", None)
    if ctx is None:
        return False
    try:
        return hub_q.has_hub_rows(ctx.stores.reader())
    except Exception:  # an old or foreign database: no hub pages, never a broken page
        return False


@router.get("/sites", response_class=HTMLResponse)
def sites_page(request: Request, user: Viewer, ctx: Ctx) -> Response:
    from otconduit.console.pages import render

    store = ctx.stores.reader()
    return render(
        request, "sites.html", nav="sites", items=hub_q.sites(store),
        rejects=hub_q.rejects(store, 20), reasons=hub_q.reject_counts(store),
    )  # fmt: skip


@router.get("/api/hub/sites")
def sites_api(user: Viewer, ctx: Ctx) -> Response:
    return JSONResponse({"sites": hub_q.sites(ctx.stores.reader())})


@router.get("/sites/assets", response_class=HTMLResponse)
def hub_assets_page(
    request: Request, user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0
) -> Response:
    return _listing(request, ctx, "hub_assets.html", "site-assets", site, offset)


@router.get("/sites/alerts", response_class=HTMLResponse)
def hub_alerts_page(
    request: Request, user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0
) -> Response:
    return _listing(request, ctx, "hub_alerts.html", "site-alerts", site, offset)


def _severity(n: Any) -> str:
    try:
        return Severity(int(n)).label
    except ValueError:
        return str(n)


def _listing(
    request: Request, ctx: Console, template: str, nav: str, site: str, offset: int
) -> Response:
    from otconduit.console.pages import _offset, _pages, _qs, render

    offset = _offset(offset)
    store = ctx.stores.reader()
    chosen = site or None
    if nav == "site-assets":
        total = hub_q.asset_count(store, chosen)
        items: list[dict[str, Any]] = hub_q.asset_page(store, chosen, PAGE, offset)
    else:
        total = hub_q.alert_count(store, chosen)
        items = hub_q.alert_page(store, chosen, PAGE, offset)
        for a in items:
            a["severity"] = _severity(a["severity"])
    params = {"site": site}
    return render(
        request, template, nav=nav, items=items, p=_pages(total, offset, PAGE), qs=_qs,
        params=params, sites=hub_q.site_names(store),
    )  # fmt: skip
