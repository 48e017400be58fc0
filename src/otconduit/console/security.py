"""Who is asking, and may they: session cookie, roles, CSRF, login throttling, headers.

* Session: a random token in an HttpOnly, SameSite=Strict cookie (Secure under TLS);
  the server keeps only its SHA-256 (:mod:`otconduit.console.authdb`).
* Roles: viewer < analyst < admin. Reading needs viewer; acknowledging/closing alerts
  needs analyst; users and the audit log need admin.
* CSRF: every state-changing request must carry the session's CSRF token, in the
  ``X-CSRF-Token`` header (API, page scripts) or a ``csrf_token`` form field (HTML
  forms); and a request whose ``Origin`` or ``Sec-Fetch-Site`` says it comes from
  another site is refused outright. The login form, which has no session yet, uses a
  double-submit cookie.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

from otconduit.console.authdb import AuthDB, Session, User
from otconduit.console.errors import ApiError, error_payload

SESSION_COOKIE = "conduit_session"
LOGIN_CSRF_COOKIE = "conduit_login_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def auth_db(request: Request) -> AuthDB:
    db: AuthDB = request.app.state.console.auth
    return db


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_session(request: Request) -> Session | None:
    if not hasattr(request.state, "session"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.session = auth_db(request).session(token)
    s: Session | None = request.state.session
    return s


def _need(request: Request, role: str) -> User:
    s = current_session(request)
    if s is None:
        raise ApiError(401, "log in first (POST /api/session or the login page)")
    if not s.user.can(role):
        raise ApiError(403, f"this needs the {role} role; {s.user.name} is {s.user.role}")
    return s.user


def viewer(request: Request) -> User:
    return _need(request, "viewer")


def analyst(request: Request) -> User:
    return _need(request, "analyst")


def admin(request: Request) -> User:
    return _need(request, "admin")


def check_csrf(request: Request, form_token: str | None = None) -> None:
    s = current_session(request)
    if s is None:
        raise ApiError(401, "log in first (POST /api/session or the login page)")
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    if not secrets.compare_digest(sent.encode(), s.csrf_token.encode()):
        raise ApiError(
            403,
            "missing or wrong CSRF token: send the session's csrf_token in X-CSRF-Token",
            code="csrf_failed",
        )


def csrf(request: Request) -> None:
    """Dependency for state-changing API routes (header token)."""
    check_csrf(request)


def cookie_kwargs(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": bool(request.app.state.console.settings.tls),
        "path": "/",
    }


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def same_origin(headers: dict[str, str]) -> bool:
    """False when the browser says the request comes from another site."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityMiddleware:
    """Refuses cross-site state changes and sets the security headers on every response
    (plain ASGI, so server-sent event streams pass through untouched)."""

    def __init__(self, app: Any, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        if scope["method"] in UNSAFE and not same_origin(headers):
            body = json.dumps(error_payload(403, "cross-site request refused", "csrf_failed"))
            resp = Response(body, status_code=403, media_type="application/json")
            await resp(scope, receive, self._wrap(send, path))
            return
        await self.app(scope, receive, self._wrap(send, path, scope["method"]))

    def _wrap(self, send: Any, path: str, method: str = "POST") -> Any:
        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", []))
                have = {k.lower() for k, _ in hdrs}
                extra = list(SECURITY_HEADERS)
                if path.startswith("/api/") or method != "GET":
                    extra.append((b"cache-control", b"no-store"))
                if self.tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                hdrs += [(k, v) for k, v in extra if k not in have]
                message = {**message, "headers": hdrs}
            await send(message)

        return wrapped
