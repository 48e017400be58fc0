"""The console on a hub database: a Sites page (per-site overview and health: last
message, delay, backlog, drops, refusals) and the assets and alerts of every site with a
site column and a site filter, and likewise their conversations (with operations from
the per-minute counts) and policy violations, as pages and as JSON. The pages appear in
the navigation once any site has sent anything (:func:`hub_mode`); the queries are the
hub's own (``store/hub.py``)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from otconduit.console.authdb import User
from otconduit.console.context import Console, console
from otconduit.console.security import viewer
from otconduit.console.timefmt import ZuluJSONResponse
from otconduit.detect.rules import Severity
from otconduit.store import hub as hub_q

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(viewer)]
Ctx = Annotated[Console, Depends(console)]
SiteParam = Annotated[str, Query(max_length=64)]
PAGE = 50
RECENT_S = 3600  # "operations in the last hour" on the conversations page
FUNCTIONS_SHOWN = 6  # the busiest functions of a conversation listed, the rest counted


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


@router.get("/sites/conversations", response_class=HTMLResponse)
def hub_conversations_page(
    request: Request, user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0
) -> Response:
    return _listing(request, ctx, "hub_conversations.html", "site-conversations", site, offset)


@router.get("/sites/violations", response_class=HTMLResponse)
def hub_violations_page(
    request: Request, user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0
) -> Response:
    return _listing(request, ctx, "hub_violations.html", "site-violations", site, offset)


@router.get("/api/hub/conversations")
def hub_conversations_api(
    user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0
) -> Response:
    return ZuluJSONResponse(_rows(ctx, "site-conversations", site, offset))


@router.get("/api/hub/violations")
def hub_violations_api(user: Viewer, ctx: Ctx, site: SiteParam = "", offset: int = 0) -> Response:
    return ZuluJSONResponse(_rows(ctx, "site-violations", site, offset))


def _functions(text: Any) -> dict[str, int] | str | None:
    """A conversation's ``{function: count}`` as a mapping; text a site sent that is not
    one is shown as it is rather than breaking the page."""
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except (TypeError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested deep
        return str(text)
    if not isinstance(doc, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in doc.values()
    ):
        return str(text)
    return {str(k): n for k, n in sorted(doc.items(), key=lambda kv: (-kv[1], str(kv[0])))}


def _rows(ctx: Console, nav: str, site: str, offset: int) -> dict[str, Any]:
    """One page of a site listing (assets, alerts, conversations or violations): what
    the page and the API show."""
    from otconduit.console.pages import _offset

    offset = _offset(offset)
    store = ctx.stores.reader()
    chosen = site or None
    items: list[dict[str, Any]]
    if nav == "site-assets":
        total = hub_q.asset_count(store, chosen)
        items = hub_q.asset_page(store, chosen, PAGE, offset)
    elif nav == "site-alerts":
        total = hub_q.alert_count(store, chosen)
        items = hub_q.alert_page(store, chosen, PAGE, offset)
        for a in items:
            a["severity"] = _severity(a["severity"])
    elif nav == "site-conversations":
        total = hub_q.conversation_count(store, chosen)
        since = int(time.time()) - RECENT_S
        items = hub_q.conversation_page(store, chosen, PAGE, offset, since)
        for c in items:
            c["functions"] = _functions(c["functions"])
    else:
        total = hub_q.violation_count(store, chosen)
        items = hub_q.violation_page(store, chosen, PAGE, offset)
    return {"site": site, "total": total, "offset": offset, "limit": PAGE, "items": items}


def _severity(n: Any) -> str:
    try:
        return Severity(int(n)).label
    except ValueError:
        return str(n)


def _listing(
    request: Request, ctx: Console, template: str, nav: str, site: str, offset: int
) -> Response:
    from otconduit.console.pages import _pages, _qs, render

    names = hub_q.site_names(ctx.stores.reader())
    unknown = bool(site) and site not in names  # an empty list and a note, not an error
    got = _rows(ctx, nav, site, offset)
    return render(
        request, template, nav=nav, items=got["items"], sites=names, unknown=unknown,
        p=_pages(got["total"], got["offset"], PAGE), qs=_qs, params={"site": site},
        shown=FUNCTIONS_SHOWN,
    )  # fmt: skip
