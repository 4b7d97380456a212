"""The portal form to redeem a voucher (docs/vouchers.md). A plain form, no JavaScript."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.keys import BILLING, client_address
from gateway.http.routes_portal import (
    _account,
    _error,
    _redirect,
    _retry_after,
    _status,
    _text,
    session_form,
)
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


@routes.post("/account/vouchers")
@session_form
async def account_voucher(request: web.Request, session: SessionRecord,
                          form: Any) -> web.Response:
    service = request.app[BILLING].vouchers
    if service is None:
        return _redirect(request, "account")
    try:
        await service.redeem(session.account_id, _text(form, "code") or "",
                             client_address(request))
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, "account?voucher=1#vouchers")
