"""Portal page "Pay by cash" (docs/cash.md): the postal instructions, and a one-time
token for the envelope. Plain forms, no JavaScript. The token is on the page that answers
the form, once (no-store): it is kept only as a keyed hash."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.keys import BILLING, CSRF
from gateway.http.routes_portal import (
    _error,
    _redirect,
    _render,
    _session,
    _status,
    session_form,
)
from gateway.services.cash import IssuedToken
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


async def _page(request: web.Request, session: SessionRecord, status: int = 200,
                issued: IssuedToken | None = None, error: str | None = None) -> web.Response:
    service = request.app[BILLING].cash
    instructions = service.instructions if service is not None else None
    open_token = (await service.open_token(session.account_id)
                  if service is not None and instructions is not None else None)
    resp = _render(request, "cash.html", {
        "instructions": instructions, "open_token": open_token, "issued": issued,
        "error": error, "csrf": request.app[CSRF].token(request, session.id)}, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@routes.get("/account/cash")
async def cash_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _redirect(request, "login?done=session")
    return await _page(request, session)


@routes.post("/account/cash")
@session_form
async def cash_token(request: web.Request, session: SessionRecord, form: Any) -> web.Response:
    service = request.app[BILLING].cash
    if service is None:
        return _redirect(request, "account/cash")
    try:
        issued = await service.new_token(session.account_id)
    except DomainError as exc:
        return await _page(request, session, _status(exc, 409), error=_error(request, exc))
    return await _page(request, session, issued=issued)
