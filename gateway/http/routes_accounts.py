import time

import segno
from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.timestamps import rfc3339
from gateway.http.auth import SESSION_COOKIE, customer, session_token
from gateway.http.background import JOBS
from gateway.http.i18n import language
from gateway.http.ids import checked_id
from gateway.http.keys import ACCOUNTS, BILLING, client_address
from gateway.http.paging import integer
from gateway.http.schemas import (
    CodeBody,
    EmailUndoBody,
    PasswordChangeBody,
    ProfileBody,
    ResetConfirmBody,
    ResetRequestBody,
    SessionBody,
    SignupBody,
    TokenBody,
    TotpBeginBody,
    TotpDisableBody,
    read_json,
)
from gateway.http.views import (
    account_doc,
    account_json,
    credit_entry_json,
    credit_json,
    invoice_json,
)
from gateway.services.accounts import NewSession, ProfileChanges, Signup
from gateway.services.email_change import EmailChangeService
from gateway.services.errors import (
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UnconfirmedEmail,
)

routes = web.RouteTableDef()


def _set_session_cookie(request: web.Request, resp: web.Response, session: NewSession) -> None:
    max_age = int(session.expires_at.timestamp() - time.time())
    resp.set_cookie(
        SESSION_COOKIE, session.token, max_age=max(max_age, 0), path="/",
        secure=True, httponly=True, samesite="Strict",
    )


def limit(request: web.Request, kind: str) -> None:
    area = request.app[ACCOUNTS]
    window = area.signup_limit if kind == "signup" else area.login_limit
    if window is not None:
        window.hit(client_address(request), kind)


@routes.post("/v1/accounts")
async def create_account(request: web.Request) -> web.Response:
    limit(request, "signup")
    body = SignupBody.model_validate(await read_json(request))
    area = request.app[ACCOUNTS]
    svc = area.accounts
    # The request's language (Accept-Language, the menu's cookie) is the account's first:
    # the confirmation mail is already in it.
    view = await svc.sign_up(Signup(**body.model_dump(), language=language(request)))
    resp = web.json_response(account_json(view), status=201)
    resp.headers["Location"] = f"/v1/accounts/{view.account.id}"
    if svc.requires_verification:
        # No session until the address is confirmed through the mailed link. A taken
        # address gets this very answer; its owner is mailed instead of a link.
        recovery = area.recovery
        if view.taken:
            await recovery.notify_signup_attempt(view.profile.email)
        else:
            await recovery.send_verification(view.account.id)
        return resp
    session = await svc.log_in(body.email, body.password, ip=client_address(request))
    _set_session_cookie(request, resp, session)
    return resp


async def log_in(request: web.Request, email: str, password: str, code: str | None
                 ) -> NewSession:
    """A login for the API and the portal. An account whose address is not confirmed is
    answered like a wrong password and mailed a new link, in the background so that the
    answer takes no longer."""
    area = request.app[ACCOUNTS]
    try:
        return await area.accounts.log_in(email, password, code, client_address(request))
    except UnconfirmedEmail as exc:
        request.app[JOBS].spawn(area.recovery.send_verification(exc.account_id),
                                "confirmation link")
        raise Unauthorized(str(exc)) from None


@routes.post("/v1/email-verifications/confirm")
async def confirm_email(request: web.Request) -> web.Response:
    body = TokenBody.model_validate(await read_json(request))
    await request.app[ACCOUNTS].recovery.verify_email(body.token)
    return web.Response(status=204)


@routes.post("/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    limit(request, "login")
    body = SessionBody.model_validate(await read_json(request))
    session = await log_in(request, body.email, body.password, body.totp_code)
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
    await request.app[ACCOUNTS].accounts.log_out(token)
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/", secure=True,
                    httponly=True, samesite="Strict")
    return resp


@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    account_id = await customer(request)
    view = await request.app[ACCOUNTS].accounts.view(account_id)
    return web.json_response(await account_doc(request, view))


@routes.get("/v1/me/credit")
async def my_credit(request: web.Request) -> web.Response:
    account_id = await customer(request)
    service = request.app[BILLING].credit
    if service is None:
        raise NotFound("credit")
    limit = integer(request.query.get("limit", "100"), "limit")
    raw = request.query.get("before")
    before = integer(raw, "before") if raw is not None else None
    if not 1 <= limit <= 500 or (before is not None and before < 1):
        raise InvalidInput("limit", "must be between 1 and 500 (before: a positive id)")
    view = await service.view(account_id, limit, before)
    data = [credit_entry_json(e) for e in view.entries]
    return web.json_response({
        "credit": credit_json(view.balance, view.currency), "data": data,
        "next_cursor": data[-1]["id"] if data and len(data) == limit else None})


def email_changes(request: web.Request) -> EmailChangeService:
    service = request.app[ACCOUNTS].email_changes
    assert service is not None, "the application was built without email changes"
    return service


@routes.patch("/v1/me")
async def update_me(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = ProfileBody.model_validate(await read_json(request))
    given = body.model_fields_set - {"current_password", "totp_code"}
    fields = {k: getattr(body, k) for k in given - {"email"}}
    changes_email = "email" in given and await email_changes(request).is_change(
        account_id, body.email)
    view = await request.app[ACCOUNTS].accounts.update_profile(account_id,
                                                               ProfileChanges(fields))
    if not changes_email:
        return web.json_response(await account_doc(request, view))
    # The same answer whether or not another account has the address: a link goes to
    # the new address, or a notice to its owner.
    assert body.email is not None
    token = session_token(request)
    assert token is not None
    current = await request.app[ACCOUNTS].accounts.session(token)
    await email_changes(request).request(account_id, body.email, body.current_password,
                                         body.totp_code, client_address(request), current.id)
    return web.json_response(await account_doc(request, view), status=202)


@routes.post("/v1/email-changes/confirm")
async def confirm_email_change(request: web.Request) -> web.Response:
    body = TokenBody.model_validate(await read_json(request))
    await email_changes(request).confirm(body.token, client_address(request))
    return web.Response(status=204)


@routes.post("/v1/email-changes/undo")
async def undo_email_change(request: web.Request) -> web.Response:
    body = EmailUndoBody.model_validate(await read_json(request))
    await email_changes(request).undo(body.token, body.totp_code, client_address(request))
    return web.Response(status=204)


RESET_ACCEPTED = {"status": "accepted",
                  "detail": "if an account has this address, a reset link is on its way"}


@routes.post("/v1/password-resets")
async def request_reset(request: web.Request) -> web.Response:
    limit(request, "login")
    body = ResetRequestBody.model_validate(await read_json(request))
    # The lookup and the queueing run after the answer: known and unknown addresses take
    # the same time to answer.
    if not request.app[JOBS].spawn(request.app[ACCOUNTS].recovery.request_reset(body.email),
                                   "password-reset request"):
        raise ServiceUnavailable("too many password-reset requests in progress; try again")
    return web.json_response(RESET_ACCEPTED, status=202)


@routes.post("/v1/password-resets/confirm")
async def confirm_reset(request: web.Request) -> web.Response:
    limit(request, "login")
    body = ResetConfirmBody.model_validate(await read_json(request))
    await request.app[ACCOUNTS].recovery.confirm_reset(
        body.token, body.new_password, body.totp_code, client_address(request))
    return web.Response(status=204)


@routes.post("/v1/me/password")
async def change_password(request: web.Request) -> web.Response:
    await customer(request)
    token = session_token(request)
    assert token is not None
    body = PasswordChangeBody.model_validate(await read_json(request))
    area = request.app[ACCOUNTS]
    account_id = await area.accounts.authenticate(token)
    await area.accounts.change_password(
        token, body.current_password, body.new_password, client_address(request))
    await area.recovery.notify(account_id, "password_changed")
    return web.Response(status=204)


@routes.post("/v1/me/totp")
async def begin_totp(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = TotpBeginBody.model_validate(await read_json(request))
    enrolment = await request.app[ACCOUNTS].two_factor.begin(account_id,
                                                             body.current_password)
    qr = segno.make(enrolment.otpauth_uri, error="m")
    return web.json_response({
        "secret": enrolment.secret,
        "otpauth_uri": enrolment.otpauth_uri,
        "qr_svg": qr.svg_inline(scale=4, title="Two-factor authentication QR code"),
    }, status=201)


@routes.post("/v1/me/totp/confirm")
async def confirm_totp(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = CodeBody.model_validate(await read_json(request))
    token = session_token(request)
    assert token is not None
    area = request.app[ACCOUNTS]
    current = await area.accounts.session(token)
    codes = await area.two_factor.confirm(account_id, body.code, client_address(request),
                                          current.id)
    return web.json_response({"recovery_codes": codes})


@routes.delete("/v1/me/totp")
async def disable_totp(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = TotpDisableBody.model_validate(await read_json(request))
    area = request.app[ACCOUNTS]
    await area.two_factor.disable(account_id, body.current_password, body.code,
                                  client_address(request))
    await area.recovery.notify(account_id, "totp_disabled")
    return web.Response(status=204)


@routes.get("/v1/me/invoices")
async def my_invoices(request: web.Request) -> web.Response:
    account_id = await customer(request)
    views = await request.app[BILLING].invoices.list(
        account_id=account_id, after=checked_id(request.query.get("cursor"), "inv_", "cursor")
    )
    return web.json_response({"data": [invoice_json(v) for v in views]})
