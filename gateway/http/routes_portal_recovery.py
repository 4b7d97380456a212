"""Portal pages for a forgotten password: ask for a link, then open it and choose a new
password. Plain forms, no JavaScript; the same CSRF and CSP rules as the other pages."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.background import JOBS
from gateway.http.forms import read_form
from gateway.http.i18n import tr
from gateway.http.keys import ACCOUNTS, CSRF, client_address
from gateway.http.routes_portal import _error, _redirect, _render, _text
from gateway.i18n import N_
from gateway.services.errors import TooManyRequests, Unauthorized

routes = web.RouteTableDef()

# One answer whatever the address: the page never tells whether an account exists.
SENT = (N_("Check your inbox"),
        N_("If an account uses this address, we mailed it a link to choose a new password. "
           "The link works once and for a short time."))


def _limit(request: web.Request) -> None:
    window = request.app[ACCOUNTS].login_limit
    if window is not None:
        window.hit(client_address(request), "login")


@routes.get("/forgot")
async def forgot_page(request: web.Request) -> web.Response:
    return _render(request, "forgot.html", {"csrf": request.app[CSRF].token(request)})


@routes.post("/forgot")
async def forgot_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    try:
        _limit(request)
    except TooManyRequests as exc:
        return _render(request, "forgot.html", {"csrf": request.app[CSRF].token(request),
                                                "error": _error(request, exc)}, 429)
    # As in the API: the lookup runs after the answer, so known and unknown addresses
    # take the same time.
    if not request.app[JOBS].spawn(
            request.app[ACCOUNTS].recovery.request_reset(str(form.get("email", ""))),
            "password-reset request"):
        return _render(request, "forgot.html", {
            "csrf": request.app[CSRF].token(request),
            "error": tr(request, "Too many requests right now; please try again in a minute.")
        }, 503)
    heading, text = SENT
    return _render(request, "message.html", {"heading": heading, "text": text}, 202)


def _reset_form(request: web.Request, token: str, needs_code: bool,
                error: str | None = None, status: int = 200) -> web.Response:
    return _render(request, "reset.html", {
        "csrf": request.app[CSRF].token(request), "token": token, "needs_code": needs_code,
        "error": error}, status)


def _dead_link(request: web.Request, exc: Exception) -> web.Response:
    return _render(request, "message.html", {
        "heading": N_("This link does not work"),
        "text": tr(request, "%(reason)s. You can ask for a new link.",
                   reason=_error(request, exc)), "forgot": True}, 400)


@routes.get("/reset")
async def reset_page(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    try:
        needs_code = await request.app[ACCOUNTS].recovery.reset_needs_code(token)
    except Unauthorized as exc:
        return _dead_link(request, exc)
    return _reset_form(request, token, needs_code)


@routes.post("/reset")
async def reset_submit(request: web.Request) -> web.Response:
    form: Any = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    token = str(form.get("token", ""))
    try:
        needs_code = await request.app[ACCOUNTS].recovery.reset_needs_code(token)
    except Unauthorized as exc:
        return _dead_link(request, exc)
    if form.get("new_password", "") != form.get("confirm_password", ""):
        return _reset_form(request, token, needs_code,
                           tr(request, "the two passwords differ"), 422)
    try:
        _limit(request)
        await request.app[ACCOUNTS].recovery.confirm_reset(
            token, str(form.get("new_password", "")), _text(form, "totp_code"),
            client_address(request))
    except DomainError as exc:
        status = 429 if isinstance(exc, TooManyRequests) else 422
        return _reset_form(request, token, needs_code, _error(request, exc), status)
    return _redirect(request, "login?done=reset")
