"""Every error leaves as RFC 9457 application/problem+json with a helpful `detail`."""

import json
import logging
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.domain.errors import InvalidInput
from gateway.logs import failure
from gateway.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# nginx's code for "the client closed the connection before the answer": counted apart
# from server errors, and never sent (nobody is left to read it).
CLIENT_CLOSED = 499


class ClientDisconnected(Exception):
    """The client went away before its request was read in full."""


def problem(status: int, detail: str, **extra: Any) -> web.Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, **extra}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/problem+json"
    )


def validation_detail(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field"
        errors.append({"field": loc, "message": msg})
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors


# The service errors whose answer is their message under one status.
PLAIN: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404), (Conflict, 409), (Forbidden, 403))


def _retry_later(status: int, exc: TooManyRequests | ServiceUnavailable) -> web.Response:
    resp = problem(status, str(exc))
    resp.headers["Retry-After"] = str(max(math.ceil(exc.retry_after_seconds), 1))
    return resp


def _known_problem(exc: Exception) -> web.Response | None:
    """The answer to an error the services (or the request's validation) raise on
    purpose; None for any other."""
    if isinstance(exc, InvalidInput):
        return problem(422, str(exc), errors=[{"field": exc.field, "message": exc.detail}])
    if isinstance(exc, ValidationError):
        detail, errors = validation_detail(exc)
        return problem(422, detail, errors=errors)
    for kind, status in PLAIN:
        if isinstance(exc, kind):
            return problem(status, str(exc))
    if isinstance(exc, Unauthorized):
        resp = problem(401, str(exc))
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp
    if isinstance(exc, TooManyRequests):
        return _retry_later(429, exc)
    if isinstance(exc, ServiceUnavailable):
        return _retry_later(503, exc)
    return None


def _route_pattern(request: web.Request) -> str:
    # The route pattern, not the path: paths can carry identifiers worth keeping out.
    route = request.match_info.route.resource
    return route.canonical if route is not None else "?"


def _http_problem(request: web.Request, exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return problem(413, "request body is larger than 1 MiB")
    detail = {404: f"no route for {request.path}",
              405: f"method {request.method} is not allowed here"}.get(
        exc.status, exc.text or exc.reason)
    resp = problem(exc.status, detail)
    for name in ("Allow", "Retry-After"):
        if name in exc.headers:
            resp.headers[name] = exc.headers[name]
    return resp


def _nul_in_url(request: web.Request) -> bool:
    return "\x00" in request.path or "\x00" in request.query_string or any(
        "\x00" in v for v in request.query.values())


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _nul_in_url(request):
        return problem(400, "NUL characters are not allowed in the URL")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_problem(request, exc)
    except (ClientDisconnected, ConnectionResetError):
        # Not our error: a client that gives up mid-request (a closed tab, a timeout on
        # its side) needs one line, not a traceback, and is no 500.
        log.info("client closed the connection during %s %s", request.method,
                 _route_pattern(request))
        return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
    except Exception as exc:
        known = _known_problem(exc)
        if known is not None:
            return known
        # Not log.exception: a database error's message quotes its parameters.
        log.error("unhandled %s on %s %s: %s", type(exc).__name__, request.method,
                  _route_pattern(request), failure(exc))
        return problem(500, "internal error; the operator's log has the details")
