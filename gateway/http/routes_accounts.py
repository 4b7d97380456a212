import time

from aiohttp import web

from gateway.domain.timestamps import rfc3339
from gateway.http.auth import SESSION_COOKIE, customer, session_token
from gateway.http.keys import SERVICES
from gateway.http.schemas import SessionBody, SignupBody, read_json
from gateway.http.views import account_json, invoice_json
from gateway.services.accounts import NewSession, Signup

routes = web.RouteTableDef()


def _set_session_cookie(request: web.Request, resp: web.Response, session: NewSession) -> None:
    max_age = int(session.expires_at.timestamp() - time.time())
    resp.set_cookie(
        SESSION_COOKIE, session.token, max_age=max(max_age, 0), path="/",
        secure=request.app[SERVICES].cookie_secure, httponly=True, samesite="Strict",
    )


@routes.post("/v1/accounts")
async def create_account(request: web.Request) -> web.Response:
    body = SignupBody.model_validate(await read_json(request))
    svc = request.app[SERVICES].accounts
    view = await svc.sign_up(Signup(**body.model_dump()))
    session = await svc.log_in(body.email, body.password)
    resp = web.json_response(account_json(view), status=201)
    resp.headers["Location"] = f"/v1/accounts/{view.account.id}"
    _set_session_cookie(request, resp, session)
    return resp


@routes.post("/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = SessionBody.model_validate(await read_json(request))
    session = await request.app[SERVICES].accounts.log_in(body.email, body.password)
    resp = web.json_response(
        {"token": session.token, "expires_at": rfc3339(session.expires_at)}, status=201
    )
    _set_session_cookie(request, resp, session)
    return resp


@routes.delete("/v1/sessions/current")
async def delete_session(request: web.Request) -> web.Response:
    await customer(request)
    token = session_token(request)
    assert token is not None
    await request.app[SERVICES].accounts.log_out(token)
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    account_id = await customer(request)
    return web.json_response(account_json(await request.app[SERVICES].accounts.view(account_id)))


@routes.get("/v1/me/invoices")
async def my_invoices(request: web.Request) -> web.Response:
    account_id = await customer(request)
    views = await request.app[SERVICES].invoices.list(
        account_id=account_id, after=request.query.get("cursor")
    )
    return web.json_response({"data": [invoice_json(v) for v in views]})
