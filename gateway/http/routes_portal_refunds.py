"""Portal forms for refunds (docs/refunds.md): ask, cancel. Plain forms, no JavaScript."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.ids import checked_id
from gateway.http.keys import BILLING
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
from gateway.services.refunds import RefundAsk

routes = web.RouteTableDef()


def _password(form: Any) -> str | None:
    value = form.get("current_password")
    return value if isinstance(value, str) and value else None


@routes.post("/account/refunds")
@session_form
async def account_refund(request: web.Request, session: SessionRecord,
                         form: Any) -> web.Response:
    service = request.app[BILLING].refunds
    if service is None:
        return _redirect(request, "account")
    try:
        await service.request(session.account_id, RefundAsk(
            _text(form, "amount"), _text(form, "coin"), _text(form, "address"), None,
            _password(form), _text(form, "totp_code")))
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, "account?saved=1#refunds")


@routes.post("/account/refunds/{refund_id}/cancel")
@session_form
async def account_refund_cancel(request: web.Request, session: SessionRecord,
                                form: Any) -> web.Response:
    service = request.app[BILLING].refunds
    if service is None:
        return _redirect(request, "account")
    try:
        refund_id = checked_id(request.match_info["refund_id"], "rfd_", "refund_id")
        assert refund_id is not None
        await service.cancel(session.account_id, refund_id)
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, "account?saved=1#refunds")
