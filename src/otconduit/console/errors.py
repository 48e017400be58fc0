"""One JSON error shape for every error the API returns.

Every failure under ``/api`` -- our own, the framework's (404 for an unknown path, 405,
422 for a bad parameter) and any unexpected exception -- leaves as::

    {"error": {"status": 404, "code": "not_found", "message": "...", "detail": [...]}}

``detail`` is present only for validation errors (which parameter, why). Pages (HTML
routes) show the same message in an error page, and send an unauthenticated browser to
the login page instead of a 401. ``tests/console/test_errors.py`` holds every error
response to this shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("otconduit.console")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error meant for the client: status, stable code and a one-line message."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    detail: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def error_payload(
    status: int, message: str, code: str | None = None, detail: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "code": code or CODES.get(status, "error"),
        "message": message,
    }
    if detail is not None:
        body["detail"] = detail
    return {"error": body}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _respond(
    request: Request,
    status: int,
    message: str,
    code: str | None = None,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if not _is_api(request):
        if status == 401:
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={_quote(nxt)}", status_code=303)
        from otconduit.console.pages import error_page

        return error_page(request, status, message)
    return JSONResponse(
        error_payload(status, message, code, detail), status_code=status, headers=headers
    )


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _respond(request, exc.status, exc.message, exc.code)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such resource: {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return _respond(request, exc.status_code, message, headers=headers)


def _clean(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(x) for x in err.get("loc", ())]
    return {"loc": loc, "message": str(err.get("msg", "")), "type": str(err.get("type", ""))}


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [_clean(e) for e in exc.errors()]
    first = detail[0] if detail else {"loc": [], "message": "invalid request"}
    where = ".".join(first["loc"][1:] or first["loc"]) or "request"
    return _respond(request, 422, f"{where}: {first['message']}", detail=detail)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(request, 500, "internal error: the server log has the details")


def install(app: Any) -> None:
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


# Responses every protected API route can give, for the OpenAPI schema.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "not logged in"},
    403: {"model": ErrorResponse, "description": "role too low, or CSRF check failed"},
    422: {"model": ErrorResponse, "description": "invalid parameter"},
}
