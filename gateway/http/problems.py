"""Every error leaves as RFC 9457 application/problem+json with a helpful `detail`.

A customer's request (not one with an API key) gets `title` and `detail` in its language
(`gateway.http.i18n`); `type`, `status` and the names of fields stay as they are: what a
program reads is never translated."""

import json
import logging
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.domain.errors import InvalidInput
from gateway.http.i18n import VOICE
from gateway.i18n import ENGLISH, N_, Voice
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


# The titles a customer can meet, marked for translation (HTTPStatus's phrases).
TITLES = {400: N_("Bad Request"), 401: N_("Unauthorized"), 403: N_("Forbidden"),
          404: N_("Not Found"), 405: N_("Method Not Allowed"), 409: N_("Conflict"),
          413: N_("Request Entity Too Large"), 422: N_("Unprocessable Entity"),
          429: N_("Too Many Requests"), 500: N_("Internal Server Error"),
          503: N_("Service Unavailable")}
ENGLISH_VOICE = ENGLISH.voice(None)


def problem(status: int, detail: str, voice: Voice = ENGLISH_VOICE, **extra: Any
            ) -> web.Response:
    """`detail` as given (already in the customer's words); the title in `voice`."""
    title = TITLES.get(status)
    body = {"type": "about:blank",
            "title": voice.gettext(title) if title else HTTPStatus(status).phrase,
            "status": status, "detail": detail, **extra}
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


def field_message(exc: InvalidInput, voice: Voice) -> str:
    return voice.gettext(exc.template, **exc.values)


def error_text(exc: Exception, voice: Voice) -> str:
    """A service's error in the customer's words: its message when the catalog has it
    (messages are marked with N_ where they are raised); an invalid field keeps its
    English name."""
    if isinstance(exc, InvalidInput):
        return f"{exc.field}: {field_message(exc, voice)}"
    if isinstance(exc, NotFound):
        return voice.gettext("%(what)s not found", what=exc.what)
    return voice.gettext(str(exc))


def _retry_later(status: int, exc: TooManyRequests | ServiceUnavailable, voice: Voice
                 ) -> web.Response:
    resp = problem(status, error_text(exc, voice), voice)
    resp.headers["Retry-After"] = str(max(math.ceil(exc.retry_after_seconds), 1))
    return resp


def _known_problem(exc: Exception, voice: Voice) -> web.Response | None:
    """The answer to an error the services (or the request's validation) raise on
    purpose; None for any other."""
    if isinstance(exc, InvalidInput):
        return problem(422, error_text(exc, voice), voice, errors=[
            {"field": exc.field, "message": field_message(exc, voice)}])
    if isinstance(exc, ValidationError):
        detail, errors = validation_detail(exc)
        return problem(422, detail, voice, errors=errors)
    for kind, status in PLAIN:
        if isinstance(exc, kind):
            return problem(status, error_text(exc, voice), voice)
    if isinstance(exc, Unauthorized):
        resp = problem(401, error_text(exc, voice), voice)
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp
    if isinstance(exc, TooManyRequests):
        return _retry_later(429, exc, voice)
    if isinstance(exc, ServiceUnavailable):
        return _retry_later(503, exc, voice)
    return None


def _route_pattern(request: web.Request) -> str:
    # The route pattern, not the path: paths can carry identifiers worth keeping out.
    route = request.match_info.route.resource
    return route.canonical if route is not None else "?"


def _http_problem(request: web.Request, exc: web.HTTPException, voice: Voice
                  ) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return problem(413, voice.gettext("request body is larger than 1 MiB"), voice)
    if exc.status == 404:
        detail = voice.gettext("no route for %(path)s", path=request.path)
    elif exc.status == 405:
        detail = voice.gettext("method %(method)s is not allowed here", method=request.method)
    else:
        detail = exc.text or exc.reason
    resp = problem(exc.status, detail, voice)
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
    voice = request.get(VOICE, ENGLISH_VOICE)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_problem(request, exc, voice)
    except (ClientDisconnected, ConnectionResetError):
        # Not our error: a client that gives up mid-request (a closed tab, a timeout on
        # its side) needs one line, not a traceback, and is no 500.
        log.info("client closed the connection during %s %s", request.method,
                 _route_pattern(request))
        return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
    except Exception as exc:
        known = _known_problem(exc, voice)
        if known is not None:
            return known
        # Not log.exception: a database error's message quotes its parameters.
        log.error("unhandled %s on %s %s: %s", type(exc).__name__, request.method,
                  _route_pattern(request), failure(exc))
        return problem(500, voice.gettext("internal error; the operator's log has the details"),
                       voice)
