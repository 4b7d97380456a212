"""The pages the email-change links open. Opening a link only shows a button: mail
scanners fetch links, and a fetch must not confirm or undo anything."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.forms import read_form
from gateway.http.keys import ACCOUNTS, CSRF, client_address
from gateway.http.routes_portal import _error, _render, _text
from gateway.i18n import N_
from gateway.services.email_change import EmailChangeService

routes = web.RouteTableDef()

PAGES: dict[str, dict[str, str]] = {
    "confirm": {"heading": N_("Confirm your new email address"),
                "text": N_("Confirm to move your Packetra account to this address."),
                "button": N_("Confirm the new address"),
                "done": N_("Email address changed"),
                "done_text": N_("Your account now uses this address. Log in with it.")},
    "undo": {"heading": N_("Undo the email change"),
             "text": N_("This gives your account this address back, ends every session and "
                        "asks you for a new password: a reset link follows by mail. If you "
                        "turned two-factor authentication on, type a code from your app."),
             "button": N_("Undo the change"),
             "done": N_("Email change undone"),
             "done_text": N_("Your account has this address again and every session has "
                             "ended. Set a new password with the link we just mailed you.")},
}


def _service(request: web.Request) -> EmailChangeService:
    service = request.app[ACCOUNTS].email_changes
    assert service is not None
    return service


def _page(request: web.Request, kind: str, action: str, token: str | None) -> web.Response:
    page = PAGES[kind]
    context: dict[str, Any] = {
        "heading": page["heading"], "text": page["text"], "button": page["button"],
        "token": token, "action": action, "csrf": request.app[CSRF].token(request),
        "code_field": kind == "undo"}
    return _render(request, "email_change.html", context)


async def _submit(request: web.Request, kind: str) -> web.Response:
    form = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    token = _text(form, "token") or ""
    service = _service(request)
    ip = client_address(request)
    try:
        if kind == "confirm":
            await service.confirm(token, ip)
        else:
            await service.undo(token, _text(form, "totp_code"), ip)
    except DomainError as exc:
        return _render(request, "email_change.html", {
            "heading": N_("This link does not work"), "text": _error(request, exc)}, 400)
    page = PAGES[kind]
    return _render(request, "email_change.html", {"heading": page["done"],
                                                  "text": page["done_text"]})


@routes.get("/email-change")
async def confirm_page(request: web.Request) -> web.Response:
    return _page(request, "confirm", "email-change", request.query.get("token"))


@routes.post("/email-change")
async def confirm_submit(request: web.Request) -> web.Response:
    return await _submit(request, "confirm")


@routes.get("/email-change/undo")
async def undo_page(request: web.Request) -> web.Response:
    return _page(request, "undo", "undo", request.query.get("token"))


@routes.post("/email-change/undo")
async def undo_submit(request: web.Request) -> web.Response:
    return await _submit(request, "undo")
