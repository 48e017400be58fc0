"""The REST API under ``/api``: everything the pages show, behind the same login."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from otconduit.console.alertsview import (
    ALERT_SORTS,
    DEFAULT_SORT,
    AlertQuery,
    ViolationQuery,
    alert_detail,
    list_alerts,
    list_violations,
)
from otconduit.console.assets import SORTS as ASSET_SORTS
from otconduit.console.assets import AssetQuery, list_assets
from otconduit.console.assetview import SECTION, Sections
from otconduit.console.assetview import asset_detail as _asset_detail
from otconduit.console.authdb import AuthError, Session, User
from otconduit.console.context import Console, console
from otconduit.console.conversations import SORTS as CONV_SORTS
from otconduit.console.conversations import ConversationQuery, list_conversations
from otconduit.console.data import fingerprint
from otconduit.console.errors import COMMON_RESPONSES, ApiError, ErrorResponse
from otconduit.console.incidents import DEFAULT_WINDOW_S, select
from otconduit.console.incidentview import change_incident, incident_detail
from otconduit.console.loginguard import Refused
from otconduit.console.netmap import MapFilter, build_map
from otconduit.console.ops import OpQuery, page_operations
from otconduit.console.overview import overview
from otconduit.console.schemas import (
    AlertDetail,
    AlertPage,
    AssetDetail,
    AssetPage,
    AuditPage,
    BulkChange,
    BulkResult,
    ConversationPage,
    IncidentChange,
    IncidentDetail,
    IncidentPage,
    LoginRequest,
    MapData,
    NewUser,
    OperationPage,
    Overview,
    PolicyCheck,
    Production,
    SessionInfo,
    StatusChange,
    UserInfo,
    ViolationPage,
)
from otconduit.console.security import (
    SESSION_COOKIE,
    admin,
    analyst,
    client_addr,
    cookie_kwargs,
    csrf,
    current_session,
    viewer,
)
from otconduit.console.streams import SlotStream
from otconduit.console.timefmt import ZuluJSONResponse
from otconduit.detect.alerts import AlertError, set_status
from otconduit.detect.evidence import evidence_frames, write_evidence

# One time style in every answer: ISO 8601 UTC ending in Z (see timefmt).
router = APIRouter(
    prefix="/api", responses=COMMON_RESPONSES, default_response_class=ZuluJSONResponse
)
Viewer = Annotated[User, Depends(viewer)]
Analyst = Annotated[User, Depends(analyst)]
Admin = Annotated[User, Depends(admin)]
Ctx = Annotated[Console, Depends(console)]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=500, description="rows per page")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


# -- session ------------------------------------------------------------------------


@router.post(
    "/session",
    response_model=SessionInfo,
    responses={429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    summary="Log in; sets the session cookie",
)
async def login(body: LoginRequest, request: Request, response: Response, ctx: Ctx) -> SessionInfo:
    who = client_addr(request)

    def check() -> tuple[User, str, Session] | None:
        user = ctx.auth.authenticate(body.username, body.password)
        if user is None:
            ctx.auth.audit(body.username[:64], "login", outcome="failed", client=who)
            return None
        token, sess = ctx.auth.create_session(user, who)
        ctx.auth.audit(user.name, "login", client=who, detail={"via": "api"})
        return user, token, sess

    try:
        done = await ctx.throttle.attempt(who, body.username, check)
    except Refused as exc:
        raise ApiError(exc.status, exc.message) from None
    if done is None:
        raise ApiError(401, "wrong user name or password")
    user, token, sess = done
    response.set_cookie(
        SESSION_COOKIE, token, max_age=ctx.auth.session_seconds, **cookie_kwargs(request)
    )
    return SessionInfo(
        user=user.name, role=user.role, csrf_token=sess.csrf_token, expires_at=sess.expires_at
    )


@router.get("/session", response_model=SessionInfo, summary="Who is logged in")
def session_info(request: Request, user: Viewer) -> SessionInfo:
    s = current_session(request)
    assert s is not None
    return SessionInfo(
        user=user.name, role=user.role, csrf_token=s.csrf_token, expires_at=s.expires_at
    )


@router.delete("/session", status_code=204, dependencies=[Depends(csrf)], summary="Log out")
def logout(request: Request, user: Viewer, ctx: Ctx) -> Response:
    ctx.auth.end_session(request.cookies.get(SESSION_COOKIE))
    ctx.auth.audit(user.name, "logout", client=client_addr(request))
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# -- reading ------------------------------------------------------------------------


@router.get("/overview", response_model=Overview, summary="Counts and health at a glance")
def get_overview(user: Viewer, ctx: Ctx) -> dict[str, Any]:
    store = ctx.stores.reader()
    return overview(store, ctx.zoning, ctx.map_assets(store), ctx.production.status())


@router.get("/assets", response_model=AssetPage, summary="Assets, paged, searched and sorted")
def assets(
    user: Viewer,
    ctx: Ctx,
    q: Annotated[
        str | None,
        Query(
            max_length=200, description="text in address, MAC, vendor, identity, role or protocol"
        ),
    ] = None,
    role: Annotated[str | None, Query(max_length=64)] = None,
    protocol: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[float | None, Query(ge=0, le=5)] = None,
    sort: Annotated[str, Query(pattern="^(" + "|".join(ASSET_SORTS) + ")$")] = "ip",
    desc: bool = False,
    offset: Offset = 0,
    limit: Limit = 50,
    all: Annotated[bool, Query(description="include hosts only ever seen as scan targets")] = False,
) -> dict[str, Any]:
    aq = AssetQuery(q or None, role, protocol, zone, level, sort, desc, offset, limit, all)
    total, items = list_assets(ctx.stores.reader(), ctx.zoning, aq)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


def asset_detail(ctx: Console, ip: str, at: Sections | None = None) -> dict[str, Any]:
    """Kept for callers of the old name: :func:`otconduit.console.assetview.asset_detail`."""
    return _asset_detail(ctx, ip, at)


@router.get(
    "/assets/{ip}",
    response_model=AssetDetail,
    responses=NOT_FOUND,
    summary="One asset: identity, roles, protocols, zone/level, and one page of each of its "
    "lists (conversations, operations, alerts, violations)",
)
def asset(
    ip: str,
    user: Viewer,
    ctx: Ctx,
    conversations_offset: Offset = 0,
    alerts_offset: Offset = 0,
    violations_offset: Offset = 0,
    operations_cursor: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="rows per list")] = SECTION,
) -> dict[str, Any]:
    at = Sections(conversations_offset, alerts_offset, violations_offset, operations_cursor, limit)
    return _asset_detail(ctx, ip, at)


@router.get("/conversations", response_model=ConversationPage, summary="Conversations, paged")
def conversations(
    user: Viewer,
    ctx: Ctx,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    protocol: Annotated[str | None, Query(max_length=64)] = None,
    port: Annotated[int | None, Query(ge=0, le=65535)] = None,
    peer: Annotated[str | None, Query(max_length=64, description="the other end")] = None,
    sort: Annotated[str, Query(pattern="^(" + "|".join(CONV_SORTS) + ")$")] = "first_seen",
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    cq = ConversationQuery(
        ip=ip, protocol=protocol, peer=peer, port=port, sort=sort, offset=offset, limit=limit
    )
    total, items = list_conversations(ctx.stores.reader(), cq, ctx.zoning.plant)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get(
    "/operations",
    response_model=OperationPage,
    summary="Operations, newest first; follow `next` for older pages",
)
def operations(
    user: Viewer,
    ctx: Ctx,
    protocol: Annotated[str | None, Query(max_length=64)] = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    src_ip: Annotated[str | None, Query(max_length=64)] = None,
    dst_ip: Annotated[str | None, Query(max_length=64)] = None,
    operation: Annotated[
        str | None, Query(max_length=32, description="class: read, write, control, ...")
    ] = None,
    function: Annotated[str | None, Query(max_length=64, description="name or code")] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    conversation: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    cursor: Annotated[str | None, Query(max_length=80)] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    oq = OpQuery(
        protocol, ip, src_ip, dst_ip, operation, function, status, conversation, cursor, limit
    )
    store = ctx.stores.reader()
    return page_operations(store, oq, ctx.chunk_index(store))


@router.get("/alerts", response_model=AlertPage, summary="Alerts, filtered and paged")
def alerts(
    user: Viewer,
    ctx: Ctx,
    severity: Annotated[
        str | None, Query(pattern="^(info|low|medium|high|critical)$", description="minimum")
    ] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|closed)$")] = None,
    asset: Annotated[str | None, Query(max_length=64, description="source or destination")] = None,
    technique: Annotated[
        str | None, Query(max_length=16, description="ATT&CK for ICS id, e.g. T0855")
    ] = None,
    protocol: Annotated[str | None, Query(max_length=64)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[
        str,
        Query(
            pattern="^(" + "|".join(ALERT_SORTS) + ")$",
            description="severity (critical first, then newest), newest, oldest, count, rule, id",
        ),
    ] = DEFAULT_SORT,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    aq = AlertQuery(
        severity, rule, status, asset, technique, protocol, category, sort, offset, limit
    )
    total, items = list_alerts(ctx.stores.reader(), aq)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    responses=NOT_FOUND,
    summary="One alert with evidence, decoded operations, ATT&CK references and runbook",
)
def alert(alert_id: int, user: Viewer, ctx: Ctx) -> dict[str, Any]:
    from otconduit.console.processview import enrich

    _check_id(alert_id)
    store = ctx.stores.reader()
    return enrich(ctx, store, alert_detail(store, alert_id))


def _check_id(alert_id: int) -> None:
    if not 1 <= alert_id < 2**62:
        raise ApiError(404, f"no alert with id {alert_id}")


def change_status(
    ctx: Console, request: Request, user: User, alert_id: int, status: str, comment: str
) -> None:
    _check_id(alert_id)
    action = {"acknowledged": "alert.ack", "closed": "alert.close", "open": "alert.reopen"}[status]
    who = client_addr(request)
    try:
        ctx.stores.write(lambda st: set_status(st, alert_id, status, user.name, comment))
    except AlertError as exc:
        ctx.auth.audit(user.name, action, f"alert:{alert_id}", outcome="refused",
                       detail={"reason": str(exc)}, client=who)  # fmt: skip
        exists = "no alert" not in str(exc)
        raise ApiError(409 if exists else 404, str(exc)) from None
    detail = {"comment": comment} if comment else None
    ctx.auth.audit(user.name, action, f"alert:{alert_id}", detail=detail, client=who)


def _status_route(status: str, verb: str, summary: str) -> None:
    def route(
        alert_id: int, request: Request, user: Analyst, ctx: Ctx, body: StatusChange | None = None
    ) -> dict[str, Any]:
        change_status(ctx, request, user, alert_id, status, body.comment if body else "")
        return alert_detail(ctx.stores.reader(), alert_id)

    route.__name__ = f"alert_{verb}"
    router.post(
        f"/alerts/{{alert_id}}/{verb}",
        response_model=AlertDetail,
        dependencies=[Depends(csrf)],
        responses={**NOT_FOUND, 409: {"model": ErrorResponse}},
        summary=summary,
    )(route)


_status_route("acknowledged", "ack", "Acknowledge an alert (analyst), with an optional comment")
_status_route("closed", "close", "Close an alert (analyst), with an optional comment")
_status_route("open", "reopen", "Reopen an alert (analyst), with an optional comment")

ACTIONS = {"ack": "acknowledged", "close": "closed", "reopen": "open"}


def change_many(
    ctx: Console, request: Request, user: User, ids: list[int], status: str, comment: str
) -> dict[str, Any]:
    """Each alert through :func:`change_status`, as if changed one by one: each change is
    in its history and the audit log; one that cannot change is reported, not fatal."""
    changed: list[int] = []
    refused: list[dict[str, Any]] = []
    for alert_id in dict.fromkeys(ids):
        try:
            change_status(ctx, request, user, alert_id, status, comment)
        except ApiError as exc:
            refused.append({"id": alert_id, "reason": exc.message})
        else:
            changed.append(alert_id)
    return {"status": status, "changed": changed, "refused": refused}


@router.post(
    "/alerts/bulk",
    response_model=BulkResult,
    dependencies=[Depends(csrf)],
    summary="Acknowledge (or close, reopen) several alerts at once (analyst)",
)
def alerts_bulk(body: BulkChange, request: Request, user: Analyst, ctx: Ctx) -> dict[str, Any]:
    return change_many(ctx, request, user, body.ids, ACTIONS[body.action], body.comment)


@router.get(
    "/alerts/{alert_id}/evidence.pcap",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/vnd.tcpdump.pcap": {}}},
        **NOT_FOUND,
        410: {"model": ErrorResponse, "description": "the capture file is gone or moved"},
    },
    summary="The packets the alert stands on, as a pcap file",
)
def evidence(alert_id: int, request: Request, user: Viewer, ctx: Ctx) -> Response:
    _check_id(alert_id)
    fd, name = tempfile.mkstemp(prefix=f"conduit-alert-{alert_id}-", suffix=".pcap")
    os.close(fd)
    try:
        write_evidence(ctx.stores.reader(), alert_id, name)
    except AlertError as exc:
        Path(name).unlink(missing_ok=True)
        return _no_evidence(request, ctx, alert_id, str(exc))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    ctx.auth.audit(user.name, "alert.evidence", f"alert:{alert_id}", client=client_addr(request))
    return FileResponse(
        name,
        media_type="application/vnd.tcpdump.pcap",
        filename=f"alert-{alert_id}.pcap",
        background=BackgroundTask(lambda: Path(name).unlink(missing_ok=True)),
    )


def _no_evidence(request: Request, ctx: Console, alert_id: int, message: str) -> Response:
    """410 when a capture file the alert cites is gone, saying how to find it; 404
    otherwise (no such alert, no packets). A browser that followed the page's download
    link gets the error page: a failed download would say nothing."""
    try:
        cited = evidence_frames(ctx.stores.reader(), alert_id)
    except AlertError:
        cited = {}
    gone = [p for sha, p in cited if not sha.startswith("sensor:") and not Path(p).is_file()]
    status = 410 if gone else 404
    if gone:
        message += (
            ": the capture file was moved or deleted; `conduit evidence "
            f"{alert_id} --capture-dir DIR -w alert.pcap` finds a moved capture by its "
            "fingerprint and records where it is"
        )
    if request.headers.get("accept", "").startswith("text/html"):
        from otconduit.console.pages import error_page

        return error_page(request, status, message)
    raise ApiError(status, message, "gone" if status == 410 else None)


@router.get("/violations", response_model=ViolationPage, summary="Policy violations, paged")
def violations(
    user: Viewer,
    ctx: Ctx,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    asset: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    policy: Annotated[
        str | None, Query(max_length=128, description="plant name; default: the console's policy")
    ] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    vq = ViolationQuery(policy or ctx.zoning.plant, rule, asset, zone, offset, limit)
    total, items = list_violations(ctx.stores.reader(), vq)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get(
    "/map", response_model=MapData, summary="Network map: zones by Purdue level, edges by verdict"
)
def netmap(
    user: Viewer,
    ctx: Ctx,
    zone: Annotated[
        str | None,
        Query(
            max_length=80,
            description="open one zone (its assets and peers), or subnet:CIDR for one subnet",
        ),
    ] = None,
    max_nodes: Annotated[int, Query(ge=10, le=5000)] = 400,
    unconfirmed: Annotated[
        bool, Query(description="also draw hosts only ever seen as scan targets")
    ] = False,
    protocol: Annotated[
        str | None, Query(max_length=64, description="only conversations of this protocol")
    ] = None,
    industrial: Annotated[
        bool, Query(description="only industrial protocols (Modbus, S7, EtherNet/IP, ...)")
    ] = False,
    violations: Annotated[bool, Query(description="only conversations the policy forbids")] = False,
) -> dict[str, Any]:
    store = ctx.stores.reader()
    flt = MapFilter(protocol or None, industrial, violations)
    return build_map(
        store, ctx.zoning, zone=zone, max_nodes=max_nodes, assets=ctx.map_assets(store),
        unconfirmed=unconfirmed, flt=flt,
    )  # fmt: skip


@router.get(
    "/incidents",
    response_model=IncidentPage,
    summary="Alerts and machine events chained per device within a time window",
)
def get_incidents(
    user: Viewer,
    ctx: Ctx,
    window: Annotated[float | None, Query(gt=0, le=7 * 86400, description="seconds")] = None,
    include_closed: bool = False,
    asset: Annotated[str | None, Query(max_length=64)] = None,
    min_events: Annotated[int, Query(ge=1, le=1000)] = 1,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    w = window or ctx.settings.incident_window or DEFAULT_WINDOW_S
    every = ctx.incidents(ctx.stores.reader(), w, include_closed)
    items = select(every, asset=asset, min_events=min_events)
    return {
        "total": len(items),
        "offset": offset,
        "limit": limit,
        "window_s": w,
        "items": items[offset : offset + limit],
    }


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    responses=NOT_FOUND,
    summary="One incident (INC-7 or 7) with its owner/status history",
)
def get_incident(incident_id: str, user: Viewer, ctx: Ctx) -> dict[str, Any]:
    return incident_detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    dependencies=[Depends(csrf)],
    responses={**NOT_FOUND, 422: {"model": ErrorResponse}},
    summary="Set an incident's owner and/or status (analyst); audited",
)
def post_incident(
    incident_id: str, body: IncidentChange, request: Request, user: Analyst, ctx: Ctx
) -> dict[str, Any]:
    change_incident(ctx, user.name, client_addr(request), incident_id, owner=body.owner,
                    status=body.status, comment=body.comment)  # fmt: skip
    return incident_detail(ctx, incident_id)


@router.get(
    "/production",
    response_model=Production,
    response_model_exclude_unset=True,  # no historian: the three fields it always had
    summary="Lines, machine states, counters (from the gateway)",
)
def get_production(
    user: Viewer, ctx: Ctx, site: Annotated[str, Query(max_length=64)] = ""
) -> dict[str, Any]:
    return ctx.production.status(site or None)


# -- administration -----------------------------------------------------------------


@router.get("/audit", response_model=AuditPage, summary="Audit log, newest first (admin)")
def audit(user: Admin, ctx: Ctx, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    total, items = ctx.auth.audit_log(limit=limit, offset=offset)
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get("/users", response_model=list[UserInfo], summary="Console users (admin)")
def users(user: Admin, ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.auth.users()


@router.post(
    "/users",
    response_model=UserInfo,
    status_code=201,
    dependencies=[Depends(csrf)],
    responses={409: {"model": ErrorResponse}},
    summary="Create a console user (admin)",
)
def add_user(body: NewUser, request: Request, user: Admin, ctx: Ctx) -> dict[str, Any]:
    try:
        new = ctx.auth.add_user(body.name, body.role, body.password)
    except AuthError as exc:
        raise ApiError(409 if "exists" in str(exc) else 422, str(exc)) from None
    ctx.auth.audit(user.name, "user.add", f"user:{new.name}", detail={"role": new.role},
                   client=client_addr(request))  # fmt: skip
    return next(u for u in ctx.auth.users() if u["id"] == new.id)


@router.post(
    "/policy/check",
    response_model=PolicyCheck,
    dependencies=[Depends(csrf)],
    responses={409: {"model": ErrorResponse}},
    summary="Reload the policy file and check the traffic against it (admin)",
)
def policy_check(request: Request, user: Admin, ctx: Ctx) -> dict[str, Any]:
    return ctx.check_policy(user.name, client_addr(request))


# -- live updates -------------------------------------------------------------------


@router.get("/events", include_in_schema=False)
async def events(request: Request, user: Viewer, ctx: Ctx) -> StreamingResponse:
    """Server-sent events: ``overview`` whenever the store changes (alerts, analyses,
    policy checks), and a comment every ``heartbeat`` seconds to keep proxies open. The
    session is checked again every ``sse_session_check`` seconds: after logout or expiry
    the stream sends ``end`` and closes. A user holds at most ``sse_per_user`` streams."""
    limit = ctx.settings.sse_per_user
    release = ctx.streams.acquire(user.id, limit)
    if release is None:
        raise ApiError(
            429, f"{user.name} already has {limit} live-update streams open: close a tab"
        )
    token = request.cookies.get(SESSION_COOKIE)
    s = current_session(request)
    expires = s.expires_at if s else 0

    async def stream() -> AsyncIterator[str]:
        last: tuple[Any, ...] | None = None
        idle = 0.0
        checked = time.monotonic()
        yield "retry: 3000\n\n"
        while not ctx.stopping.is_set():
            if await request.is_disconnected():
                return
            if time.monotonic() - checked >= ctx.settings.sse_session_check:
                checked = time.monotonic()
                if not await asyncio.to_thread(_same_user, ctx, token, user):
                    yield 'event: end\ndata: {"reason": "session ended"}\n\n'
                    return
            if time.time() >= expires:
                yield 'event: end\ndata: {"reason": "session expired"}\n\n'
                return
            fp, data = await asyncio.to_thread(_snapshot, ctx, last)
            if fp != last:
                last = fp
                idle = 0.0
                yield f"event: overview\ndata: {json.dumps(data)}\n\n"
            elif idle >= ctx.settings.sse_heartbeat:
                idle = 0.0
                yield ": keep-alive\n\n"
            try:
                await asyncio.wait_for(ctx.stopping.wait(), timeout=ctx.settings.sse_poll)
            except TimeoutError:
                idle += ctx.settings.sse_poll

    return SlotStream(
        stream(),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _same_user(ctx: Console, token: str | None, user: User) -> bool:
    """True while the stream's session is still valid and still this user's."""
    s = ctx.auth.session(token)
    return s is not None and s.user.id == user.id


def _snapshot(
    ctx: Console, last: tuple[Any, ...] | None
) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    store = ctx.stores.reader()
    fp = (*fingerprint(store), *ctx.production.signature())
    if fp == last:
        return fp, None
    return fp, overview(store, ctx.zoning, ctx.map_assets(store), ctx.production.status())
