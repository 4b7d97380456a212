"""Portal forms for the privacy promises: acknowledge a policy change, ask for deletion,
cancel it, object to optional processing. Export is a plain link to `/v1/me/export`,
which the session cookie opens."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.auth import SESSION_COOKIE
from gateway.http.keys import PRIVACY, client_address
from gateway.http.routes_portal import _account, _error, _redirect, _text, session_form
from gateway.services.errors import TooManyRequests
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


@routes.post("/account/policy")
@session_form
async def account_policy(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    await request.app[PRIVACY].privacy.acknowledge_policy(session.account_id)
    return _redirect(request, "account?saved=1")


@routes.post("/account/delete")
@session_form
async def account_delete(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        await request.app[PRIVACY].privacy.request_deletion(
            session.account_id, str(form.get("password", "")), _text(form, "totp_code"),
            client_address(request))
    except DomainError as exc:
        status = 429 if isinstance(exc, TooManyRequests) else 422
        return await _account(request, session, status, error=_error(request, exc))
    # Every session ended with the request, this one too.
    resp = _redirect(request, "login")
    resp.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                    samesite="Strict")
    return resp


@routes.post("/account/deletion/cancel")
@session_form
async def account_deletion_cancel(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    await request.app[PRIVACY].privacy.cancel_deletion(session.account_id,
                                                       client_address(request))
    return _redirect(request, "account?saved=1")


@routes.post("/account/optional-processing")
@session_form
async def account_objection(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    await request.app[PRIVACY].privacy.object_to_optional(
        session.account_id, _text(form, "objected") == "yes")
    return _redirect(request, "account?saved=1")
