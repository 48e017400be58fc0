"""The HTML pages: server-rendered (Jinja2) from the same functions the API uses, with
small scripts for the live overview, the map, and nothing else. Forms work without
JavaScript; every form that changes something carries the session's CSRF token."""

from __future__ import annotations

import math
from datetime import UTC
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup

from otconduit.console.alertsview import (
    ALERT_SORTS,
    DEFAULT_SORT,
    SEVERITIES,
    AlertQuery,
    ViolationQuery,
    alert_detail,
    list_alerts,
    list_violations,
)
from otconduit.console.assets import SORTS as ASSET_SORTS
from otconduit.console.assets import AssetQuery, count_unconfirmed, list_assets
from otconduit.console.assetview import Sections, asset_detail
from otconduit.console.authdb import User
from otconduit.console.context import Console, console
from otconduit.console.conversations import SORTS as CONV_SORTS
from otconduit.console.conversations import ConversationQuery, list_conversations
from otconduit.console.errors import ApiError
from otconduit.console.incidents import STATUSES
from otconduit.console.loginguard import Refused
from otconduit.console.ops import OpQuery, page_operations
from otconduit.console.overview import overview
from otconduit.console.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    admin,
    analyst,
    check_csrf,
    client_addr,
    cookie_kwargs,
    current_session,
    new_login_csrf,
    viewer,
)
from otconduit.console.sitesview import hub_mode
from otconduit.console.sitesview import router as sites_router
from otconduit.console.timefmt import time_tag, zone_label, zone_name
from otconduit.console.vulnsview import router as vulns_router

templates = Jinja2Templates(
    directory=str(resources.files("otconduit.console").joinpath("templates"))
)
router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(viewer)]
Ctx = Annotated[Console, Depends(console)]
PAGE = 50
SORT_LABELS = {"severity": "severity", "newest": "time", "count": "count", "rule": "rule"}
MAX_OFFSET = 10_000_000  # as the API's ``offset``


@pass_context
def _when(jctx: Any, value: Any) -> Markup:
    """``{{ t | when }}``: a time in the plant zone, to the second (see timefmt)."""
    return time_tag(value, jctx.get("tz") or UTC)


templates.env.filters["when"] = _when


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    s = current_session(request)
    ctx.setdefault("user", s.user if s else None)
    ctx.setdefault("csrf_token", s.csrf_token if s else "")
    ctx.setdefault("nav", "")
    if "hub" not in ctx:
        ctx["hub"] = hub_mode(request)  # the Sites pages show in the menu
    zone = getattr(getattr(request.app.state, "console", None), "tz", None) or UTC
    ctx.setdefault("tz", zone)
    ctx.setdefault("tz_label", zone_label(zone))
    ctx.setdefault("tz_name", zone_name(zone))
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def error_page(request: Request, status: int, message: str) -> Response:
    try:
        return render(request, "error.html", status=status, status_code=status, message=message)
    except Exception:  # the error page must never fail itself
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


def _safe_next(nxt: str | None) -> str:
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    return nxt


def _offset(offset: int) -> int:
    """Clamped to what the API accepts: SQLite takes no integer beyond 2**63 - 1."""
    return min(max(0, offset), MAX_OFFSET)


def _pages(total: int, offset: int, limit: int) -> dict[str, Any]:
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "page": offset // limit + 1,
        "pages": max(1, math.ceil(total / limit)),
        "prev": max(0, offset - limit) if offset > 0 else None,
        "next": offset + limit if offset + limit < total else None,
    }


def _qs(params: dict[str, Any], **change: Any) -> str:
    merged = {k: v for k, v in {**params, **change}.items() if v not in (None, "", False)}
    return "?" + urlencode(merged) if merged else "?"


# -- login ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if current_session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = new_login_csrf()
    resp = render(request, "login.html", login_csrf=token, next=_safe_next(next), error=None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_kwargs(request))
    return resp


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    import secrets

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    who = client_addr(request)

    def again(message: str, status: int) -> Response:
        token = new_login_csrf()
        resp = render(
            request, "login.html", status=status, login_csrf=token, next=_safe_next(next),
            error=message,
        )  # fmt: skip
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_kwargs(request))
        return resp

    if not cookie or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        return again("The login form expired; please try again.", 403)

    def check() -> str | None:
        user = ctx.auth.authenticate(username, password)
        if user is None:
            ctx.auth.audit(username[:64] or None, "login", outcome="failed", client=who)
            return None
        token, _ = ctx.auth.create_session(user, who)
        ctx.auth.audit(user.name, "login", client=who, detail={"via": "page"})
        return token

    try:
        token = await ctx.throttle.attempt(who, username, check)
    except Refused as exc:
        return again(exc.message[:1].upper() + exc.message[1:] + ".", exc.status)
    if token is None:
        return again("Wrong user name or password.", 401)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE, token, max_age=ctx.auth.session_seconds, **cookie_kwargs(request)
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


@router.post("/logout")
def logout(
    request: Request, ctx: Ctx, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    s = current_session(request)
    if s is not None:
        check_csrf(request, csrf_token)
        ctx.auth.end_session(request.cookies.get(SESSION_COOKIE))
        ctx.auth.audit(s.user.name, "logout", client=client_addr(request))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# -- pages ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, user: Viewer, ctx: Ctx) -> Response:
    store = ctx.stores.reader()
    data = overview(store, ctx.zoning, ctx.map_assets(store), ctx.production.status())
    return render(request, "overview.html", nav="overview", o=data)


@router.get("/assets", response_class=HTMLResponse)
def assets_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    q: str = "",
    role: str = "",
    protocol: str = "",
    zone: str = "",
    sort: str = "ip",
    desc: bool = False,
    offset: int = 0,
    all: bool = False,
) -> Response:
    if sort not in ASSET_SORTS:
        sort = "ip"
    offset = _offset(offset)
    aq = AssetQuery(q[:200] or None, role or None, protocol or None, zone or None, None, sort,
                    desc, offset, PAGE, all)  # fmt: skip
    store = ctx.stores.reader()
    total, items = list_assets(store, ctx.zoning, aq)
    params = {"q": q, "role": role, "protocol": protocol, "zone": zone, "sort": sort,
              "desc": desc, "all": all}  # fmt: skip
    hidden = 0 if all else count_unconfirmed(store)
    return render(
        request, "assets.html", nav="assets", items=items, p=_pages(total, offset, PAGE),
        params=params, qs=_qs, sorts=list(ASSET_SORTS), zones=ctx.zoning.zones(),
        hidden=hidden,
    )  # fmt: skip


@router.get("/assets/{ip}", response_class=HTMLResponse)
def asset_page(
    request: Request,
    ip: str,
    user: Viewer,
    ctx: Ctx,
    conv_offset: int = 0,
    alert_offset: int = 0,
    vio_offset: int = 0,
    ops_cursor: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """Each list pages on its own (``conv_offset``, ``alert_offset``, ``vio_offset``,
    ``ops_cursor``), the others staying where they are."""
    at = Sections(_offset(conv_offset), _offset(alert_offset), _offset(vio_offset),
                  ops_cursor or None)  # fmt: skip
    d = asset_detail(ctx, ip, at)
    params = {"conv_offset": at.conversations, "alert_offset": at.alerts,
              "vio_offset": at.violations, "ops_cursor": ops_cursor}  # fmt: skip
    pages = {
        "conversations": _pages(d["conversations_total"], at.conversations, at.limit),
        "alerts": _pages(d["alerts_total"], at.alerts, at.limit),
        "violations": _pages(d["violations_total"], at.violations, at.limit),
    }
    return render(request, "asset.html", nav="assets", d=d, a=d["asset"], pg=pages,
                  params=params, qs=_qs)  # fmt: skip


@router.get("/conversations", response_class=HTMLResponse)
def conversations_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    ip: str = "",
    peer: str = "",
    protocol: str = "",
    sort: str = "packets",
    offset: int = 0,
) -> Response:
    if sort not in CONV_SORTS:
        sort = "packets"
    offset = _offset(offset)
    cq = ConversationQuery(ip=ip or None, peer=peer or None, protocol=protocol or None,
                           sort=sort, offset=offset, limit=PAGE)  # fmt: skip
    total, items = list_conversations(ctx.stores.reader(), cq, ctx.zoning.plant)
    params = {"ip": ip, "peer": peer, "protocol": protocol, "sort": sort}
    return render(
        request, "conversations.html", nav="conversations", items=items,
        p=_pages(total, offset, PAGE), params=params, qs=_qs, sorts=list(CONV_SORTS),
    )  # fmt: skip


@router.get("/operations", response_class=HTMLResponse)
def operations_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    ip: str = "",
    protocol: str = "",
    operation: str = "",
    function: str = "",
    status: str = "",
    conversation: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    cursor: str = "",
) -> Response:
    oq = OpQuery(protocol or None, ip or None, None, None, operation or None, function or None,
                 status or None, conversation, cursor or None, PAGE)  # fmt: skip
    store = ctx.stores.reader()
    page = page_operations(store, oq, ctx.chunk_index(store))
    params = {"ip": ip, "protocol": protocol, "operation": operation, "function": function,
              "status": status, "conversation": conversation}  # fmt: skip
    return render(request, "operations.html", nav="operations", page=page, params=params, qs=_qs)


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    zone: Annotated[str, Query(max_length=80)] = "",
    protocol: Annotated[str, Query(max_length=64)] = "",
    industrial: bool = False,
    violations: bool = False,
    unconfirmed: bool = False,
) -> Response:
    """The page holds the filters; map.js sends the same query to /api/map."""
    from otconduit.store.seen import protocols as seen_protocols

    params = {"zone": zone, "protocol": protocol, "industrial": industrial,
              "violations": violations, "unconfirmed": unconfirmed}  # fmt: skip
    return render(
        request, "map.html", nav="map", zone=zone, policy=ctx.zoning.plant, params=params,
        qs=_qs, protocols=sorted(seen_protocols(ctx.stores.reader())),
    )  # fmt: skip


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    user: Viewer,
    ctx: Ctx,
    severity: str = "",
    rule: str = "",
    status: str = "",
    asset: str = "",
    technique: str = "",
    sort: str = DEFAULT_SORT,
    offset: int = 0,
    changed: Annotated[int, Query(ge=0, le=500)] = 0,
    refused: Annotated[int, Query(ge=0, le=500)] = 0,
) -> Response:
    if severity and severity not in SEVERITIES:
        severity = ""
    if status not in ("", "open", "acknowledged", "closed"):
        status = ""
    if sort not in ALERT_SORTS:
        sort = DEFAULT_SORT
    offset = _offset(offset)
    aq = AlertQuery(severity or None, rule or None, status or None, asset or None,
                    technique or None, None, None, sort, offset, PAGE)  # fmt: skip
    total, items = list_alerts(ctx.stores.reader(), aq)
    params = {"severity": severity, "rule": rule, "status": status, "asset": asset,
              "technique": technique, "sort": sort if sort != DEFAULT_SORT else ""}  # fmt: skip
    return render(
        request, "alerts.html", nav="alerts", items=items, p=_pages(total, offset, PAGE),
        params=params, qs=_qs, severities=SEVERITIES, sort=sort, sorts=SORT_LABELS,
        can_change=user.can("analyst"), changed=changed, refused=refused,
        back=_qs(params, offset=offset),
    )  # fmt: skip


@router.post("/alerts/bulk")
def alerts_bulk(
    request: Request,
    ctx: Ctx,
    ids: Annotated[list[int], Form(max_length=500)] = [],  # noqa: B006 (FastAPI copies it)
    action: Annotated[str, Form(pattern="^(ack|close|reopen)$")] = "ack",
    comment: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "?",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The alerts page's "acknowledge selected": each alert as its own change."""
    from otconduit.console.api import ACTIONS, change_many

    viewer(request)
    check_csrf(request, csrf_token)
    user = analyst(request)
    done = change_many(ctx, request, user, ids, ACTIONS[action], comment)
    # Back to the same list (filters, sort, page), saying how it went.
    keep = [(k, v) for k, v in parse_qsl(back.lstrip("?")) if k not in ("changed", "refused")]
    keep += [("changed", str(len(done["changed"]))), ("refused", str(len(done["refused"])))]
    return RedirectResponse("/alerts?" + urlencode(keep), status_code=303)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: int, user: Viewer, ctx: Ctx) -> Response:
    if not 1 <= alert_id < 2**62:
        raise ApiError(404, f"no alert with id {alert_id}")
    from otconduit.console.processview import enrich

    store = ctx.stores.reader()
    a = enrich(ctx, store, alert_detail(store, alert_id))  # process terms with --gateway
    return render(request, "alert.html", nav="alerts", a=a, can_change=user.can("analyst"))


@router.post("/alerts/{alert_id}/status")
def alert_status(
    request: Request,
    alert_id: int,
    ctx: Ctx,
    action: Annotated[str, Form(pattern="^(ack|close|reopen)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from otconduit.console.api import change_status

    user = viewer(request)
    check_csrf(request, csrf_token)
    user = analyst(request)
    status = {"ack": "acknowledged", "close": "closed", "reopen": "open"}[action]
    change_status(ctx, request, user, alert_id, status, comment)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request, user: Viewer, ctx: Ctx, include_closed: bool = False, offset: int = 0
) -> Response:
    from otconduit.console.incidents import history

    offset = _offset(offset)
    store = ctx.stores.reader()
    every = ctx.incidents(store, ctx.settings.incident_window, include_closed)
    items = [{**inc, "history": history(store, inc["number"])[-5:] if inc["number"] else []}
             for inc in every[offset : offset + PAGE]]  # fmt: skip
    params = {"include_closed": include_closed}
    can_change = user.can("analyst")
    owners = [u["name"] for u in ctx.auth.users() if not u["disabled"]] if can_change else []
    return render(
        request, "incidents.html", nav="incidents", items=items,
        window=ctx.settings.incident_window, include_closed=include_closed,
        p=_pages(len(every), offset, PAGE), params=params, qs=_qs, can_change=can_change,
        owners=owners, statuses=STATUSES, back=_qs(params, offset=offset),
    )  # fmt: skip


@router.post("/incidents/{incident_id}")
def incident_change(
    request: Request,
    incident_id: str,
    ctx: Ctx,
    owner: Annotated[str, Form(max_length=64)] = "",
    status: Annotated[str, Form(pattern="^(open|investigating|resolved)$")] = "open",
    comment: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "?",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The incidents page's owner/status form (the form always sends both)."""
    from otconduit.console.incidentview import change_incident, number_of

    viewer(request)
    check_csrf(request, csrf_token)
    user = analyst(request)
    change_incident(ctx, user.name, client_addr(request), incident_id, owner=owner,
                    status=status, comment=comment)  # fmt: skip
    keep = [(k, v) for k, v in parse_qsl(back.lstrip("?"))]
    anchor = f"#INC-{number_of(incident_id)}"
    return RedirectResponse("/incidents?" + urlencode(keep) + anchor, status_code=303)


@router.get("/violations", response_class=HTMLResponse)
def violations_page(
    request: Request, user: Viewer, ctx: Ctx, rule: str = "", asset: str = "", offset: int = 0
) -> Response:
    offset = _offset(offset)
    vq = ViolationQuery(ctx.zoning.plant, rule or None, asset or None, None, offset, PAGE)
    total, items = list_violations(ctx.stores.reader(), vq)
    return render(
        request, "violations.html", nav="violations", items=items,
        p=_pages(total, offset, PAGE), params={"rule": rule, "asset": asset}, qs=_qs,
        policy=ctx.zoning.plant,
    )  # fmt: skip


@router.post("/violations/check")
def violations_check(
    request: Request, ctx: Ctx, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    viewer(request)
    check_csrf(request, csrf_token)
    user = admin(request)
    ctx.check_policy(user.name, client_addr(request))
    return RedirectResponse("/violations", status_code=303)


@router.get("/production", response_class=HTMLResponse)
def production_page(
    request: Request, user: Viewer, ctx: Ctx, site: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    import logging

    from otconduit.console.prodcharts import production_charts

    prod = ctx.production.status(site or None)  # site: the hub pages' filter
    try:  # trends, state timelines, OEE and energy: the page stands without them
        charts = production_charts(ctx.production, ctx.settings.gateway, prod)
    except Exception as exc:
        logging.getLogger("otconduit.console").warning(
            "production charts unavailable: %s: %s", type(exc).__name__, exc
        )
        charts = {"data": {}, "kpi": {}, "kpi_note": "charts unavailable (see the console's log)"}
    return render(request, "production.html", nav="production", prod=prod, charts=charts,
                  params={"site": site}, sites=prod.get("sites", []))  # fmt: skip


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: Ctx, added: str = "") -> Response:
    admin(request)
    return render(request, "users.html", nav="users", users=ctx.auth.users(), added=added,
                  error=None)  # fmt: skip


@router.post("/users")
def users_add(
    request: Request,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=16)] = "viewer",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    from otconduit.console.authdb import AuthError

    viewer(request)
    check_csrf(request, csrf_token)
    user = admin(request)
    try:
        new = ctx.auth.add_user(name, role, password)
    except AuthError as exc:
        return render(request, "users.html", status=422, nav="users", users=ctx.auth.users(),
                      added="", error=str(exc))  # fmt: skip
    detail = {"role": new.role, "via": "page"}
    ctx.auth.audit(
        user.name, "user.add", f"user:{new.name}", detail=detail, client=client_addr(request)
    )
    return RedirectResponse(f"/users?added={new.name}", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Ctx, offset: int = 0) -> Response:
    admin(request)
    offset = _offset(offset)
    total, items = ctx.auth.audit_log(limit=100, offset=offset)
    return render(
        request, "audit.html", nav="audit", items=items, p=_pages(total, offset, 100), qs=_qs,
        params={},
    )  # fmt: skip


router.include_router(vulns_router)  # /vulnerabilities, /assets/{ip}/vulnerabilities
router.include_router(sites_router)  # /sites, /sites/assets, /sites/alerts (hub databases)
