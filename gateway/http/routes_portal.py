"""The customer portal: signup, login, account. Plain forms, no JavaScript needed."""

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
import segno
from aiohttp import web

from gateway.domain.credit import FROM_PAYMENTS, signed_fiat
from gateway.domain.errors import DomainError
from gateway.http.auth import SESSION_COOKIE
from gateway.http.forms import read_form
from gateway.http.i18n import context as page_language
from gateway.http.i18n import language, read_pref, set_pref, voice
from gateway.http.keys import ACCOUNTS, BILLING, CSRF, PREFIX, PRIVACY, client_address
from gateway.http.problems import error_text
from gateway.http.routes_accounts import log_in
from gateway.http.views import credit_json
from gateway.i18n import N_
from gateway.services.accounts import NewSession, ProfileChanges, Signup
from gateway.services.errors import (
    Conflict,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


def _root(request: web.Request) -> str:
    """Relative path from this page to the application root: links work below any
    prefix and from an onion host."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    canonical = canonical.removeprefix(request.app[PREFIX])
    depth = canonical.strip("/").count("/")
    return "../" * depth if depth else "./"


# What a page's context may carry as a message marked with N_ (or a service's error
# already in words): written out in the request's language here.
TRANSLATED = ("heading", "text", "message", "button")


def _render(request: web.Request, template: str, context: dict[str, Any],
            status: int = 200) -> web.Response:
    root = _root(request)
    spoken = voice(request)
    words = {k: spoken.gettext(v) for k in TRANSLATED if isinstance(v := context.get(k), str)}
    # Not no-referrer: under it browsers send `Origin: null` with our own forms, which
    # the CSRF check refuses. same-origin still tells no other site anything.
    resp = aiohttp_jinja2.render_template(template, request, {
        **context, **words, **page_language(request, request.app[PREFIX]), "root": root,
        "static": f"{root}static", "referrer_policy": "same-origin"}, status=status)
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def _error(request: web.Request, exc: Exception) -> str:
    """A service's error in the request's language."""
    return error_text(exc, voice(request))


def _set_session(request: web.Request, resp: web.StreamResponse, session: NewSession) -> None:
    resp.set_cookie(SESSION_COOKIE, session.token, path="/", httponly=True, samesite="Strict",
                    secure=True)


def _redirect(request: web.Request, target: str) -> web.Response:
    # Relative Location: right below any prefix and on any host name.
    return web.Response(status=303, headers={"Location": _root(request) + target})


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


async def _session(request: web.Request) -> SessionRecord | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return await request.app[ACCOUNTS].accounts.session(token)
    except Unauthorized:
        return None


@routes.get("/signup")
async def signup_page(request: web.Request) -> web.Response:
    return _signup(request, {}, None)


def _signup(request: web.Request, form: Any, error: str | None, status: int = 200
            ) -> web.Response:
    accounts_area = request.app[ACCOUNTS]
    pref = read_pref(request)
    currency, datacenter = pref.currency, pref.datacenter
    return _render(request, "signup.html", {
        "csrf": request.app[CSRF].token(request), "form": form, "error": error,
        "datacenters": accounts_area.datacenters, "currencies": accounts_area.currencies,
        "pref_currency": form.get("currency") or currency,
        "pref_datacenter": form.get("datacenter") or datacenter}, status)


@routes.post("/signup")
async def signup_submit(request: web.Request) -> web.Response:
    accounts_area = request.app[ACCOUNTS]
    form = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    ip = client_address(request)
    try:
        if accounts_area.signup_limit is not None:
            accounts_area.signup_limit.hit(ip, "signup")
        req = Signup(str(form.get("email", "")), str(form.get("password", "")),
                     _text(form, "display_name"), _text(form, "company"),
                     _text(form, "datacenter"), _text(form, "currency"), language(request))
        view = await accounts_area.accounts.sign_up(req)
        if accounts_area.accounts.requires_verification:
            # A taken address gets this same page; its owner is mailed instead.
            if view.taken:
                await accounts_area.recovery.notify_signup_attempt(view.profile.email)
            else:
                await accounts_area.recovery.send_verification(view.account.id)
            resp = _render(request, "message.html", {
                "heading": N_("Check your inbox"),
                "text": N_("We mailed you a link. Open it to confirm your address, then "
                           "log in.")}, 201)
            set_pref(request, resp, req.currency, req.datacenter)
            return resp
        session = await accounts_area.accounts.log_in(req.email, req.password, ip=ip)
    except DomainError as exc:
        return _retry_after(_signup(request, form, _error(request, exc), _status(exc, 422)),
                            exc)
    resp = _redirect(request, "account")
    _set_session(request, resp, session)
    set_pref(request, resp, req.currency, req.datacenter)
    return resp


def _status(exc: Exception, otherwise: int) -> int:
    if isinstance(exc, TooManyRequests):
        return 429
    if isinstance(exc, ServiceUnavailable):  # too many passwords being checked right now
        return 503
    if isinstance(exc, Forbidden):
        return 403
    return otherwise


def _retry_after(resp: web.Response, exc: Exception) -> web.Response:
    if isinstance(exc, TooManyRequests | ServiceUnavailable):
        resp.headers["Retry-After"] = str(max(math.ceil(exc.retry_after_seconds), 1))
    return resp


@routes.get("/verify-email")
async def verify_email_page(request: web.Request) -> web.Response:
    # Opening the link only shows a button: mail scanners fetch links, and a fetch must
    # not confirm an address (the email-change pages work the same way).
    return _render(request, "email_change.html", {
        "heading": N_("Confirm your email address"),
        "text": N_("Confirm that this address belongs to your new Packetra account."),
        "button": N_("Confirm the address"), "token": request.query.get("token"),
        "action": "verify-email", "csrf": request.app[CSRF].token(request)})


@routes.post("/verify-email")
async def verify_email_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    try:
        await request.app[ACCOUNTS].recovery.verify_email(_text(form, "token") or "")
    except Unauthorized as exc:
        return _render(request, "message.html", {"heading": N_("This link does not work"),
                                                 "text": _error(request, exc)}, 400)
    return _render(request, "message.html", {"heading": N_("Email address confirmed"),
                                             "text": N_("Thank you. You can log in now.")})


# Why a customer was sent (back) to the login page; keyed by a query value we set.
LOGIN_MESSAGES = {
    "reset": N_("Your password was changed. Log in with the new one."),
    "session": N_("Please log in. If you just did, your browser did not keep the session "
                  "cookie: allow cookies for this site (we set only two, both essential)."),
    "logout": N_("You are logged out."),
}


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html", {
        "csrf": request.app[CSRF].token(request),
        "message": LOGIN_MESSAGES.get(request.query.get("done", ""))})


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    accounts_area = request.app[ACCOUNTS]
    form = await read_form(request)
    request.app[CSRF].check(request, _text(form, "csrf"))
    ip = client_address(request)
    email = str(form.get("email", ""))
    try:
        if accounts_area.login_limit is not None:
            accounts_area.login_limit.hit(ip, "login")
        session = await log_in(request, email, str(form.get("password", "")),
                               _text(form, "totp_code"))
    except (Unauthorized, TooManyRequests, ServiceUnavailable) as exc:
        return _retry_after(_render(request, "login.html", {
            "csrf": request.app[CSRF].token(request), "email": email,
            "error": _error(request, exc)},
            _status(exc, 401)), exc)
    resp = _redirect(request, "account")
    _set_session(request, resp, session)
    await _remember_language(request, resp, session.account_id)
    return resp


async def _remember_language(request: web.Request, resp: web.StreamResponse,
                             account_id: str) -> None:
    """At login: a language chosen in the menu before is the account's from now on (its
    mails follow it); without one, the account's language comes back to this browser."""
    accounts = request.app[ACCOUNTS].accounts
    chosen = read_pref(request).language
    if chosen is not None:
        await accounts.choose_language(account_id, chosen)
        return
    view = await accounts.view(account_id)
    if view.account.language is not None:
        set_pref(request, resp, language=view.account.language)


async def _account(request: web.Request, session: SessionRecord, status: int = 200,
                   **extra: Any) -> web.Response:
    accounts_area = request.app[ACCOUNTS]
    billing_area = request.app[BILLING]
    privacy_area = request.app[PRIVACY]
    view = await accounts_area.accounts.view(session.account_id)
    invoices = await billing_area.invoices.list(account_id=session.account_id, limit=50)
    currency = view.account.currency
    plans = [{"name": p.name, "description": p.description,
              "price": p.price_in(currency).as_decimal_string(),
              "currency": p.price_in(currency).currency} for p in billing_area.invoices.plans()]
    billing = billing_area.billing
    renewal = await billing.view(session.account_id) if billing is not None else None
    renewal_plans = sorted(billing.prepaid.periods) if billing is not None else []
    refunds = billing_area.refunds
    credit = await _credit(request, session.account_id)
    return _render(request, "account.html", {
        **credit, "credit_bought": request.query.get("credit") == "1",
        "refunds_enabled": refunds is not None,
        "vouchers_enabled": billing_area.vouchers is not None,
        "voucher_redeemed": request.query.get("voucher") == "1",
        "refunds": await refunds.mine(session.account_id) if refunds is not None else [],
        "plans": plans, "coins": billing_area.invoices.coins(),
        "renewal": renewal, "renewal_plans": renewal_plans,
        "csrf": request.app[CSRF].token(request, session.id),
        "account": view.account, "profile": view.profile,
        "datacenters": accounts_area.datacenters, "currencies": accounts_area.currencies,
        "totp_enabled": await accounts_area.two_factor.is_on(session.account_id),
        "policy_changed": view.account.policy_version != privacy_area.privacy.policy_version,
        "policy_version": privacy_area.privacy.policy_version,
        "invoices": [{"id": v.record.invoice.id, "status": v.record.invoice.status.value,
                      "plan": v.record.invoice.metadata.get("plan"),
                      "credit_applied": v.record.invoice.metadata.get("credit_applied"),
                      "to_credit": credit["to_credit"].get(v.record.invoice.id),
                      "coin": v.record.invoice.coin,
                      "price": v.record.invoice.price.as_decimal_string(),
                      "currency": v.record.invoice.price.currency} for v in invoices],
        **await privacy_area.privacy.account_page(session.account_id),
        **extra}, status)


async def _credit(request: web.Request, account_id: str) -> dict[str, Any]:
    """The balance, every entry (newest first), and per invoice what went to credit."""
    service = request.app[BILLING].credit
    if service is None:
        return {"credit": None, "credit_entries": [], "to_credit": {}}
    view = await service.view(account_id, limit=500)
    gained: dict[str, int] = {}
    for e in view.entries:
        if e.invoice_id and e.kind in FROM_PAYMENTS:
            gained[e.invoice_id] = gained.get(e.invoice_id, 0) + e.amount
    return {
        "credit": credit_json(view.balance, view.currency),
        "credit_entries": [{**e.__dict__, "amount_text": signed_fiat(e.amount, e.currency)}
                           for e in view.entries],
        "to_credit": {i: signed_fiat(a, view.currency or "EUR") for i, a in gained.items()},
    }


FormHandler = Callable[[web.Request, SessionRecord, Any], Awaitable[web.Response]]


def session_form(handler: FormHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A form posted by a logged-in customer: no session sends them to the login page; a
    missing or wrong CSRF token is refused before the handler runs."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.Response:
        session = await _session(request)
        if session is None:
            return _redirect(request, "login?done=session")
        form = await read_form(request)
        request.app[CSRF].check(request, _text(form, "csrf"), session.id)
        return await handler(request, session, form)

    return checked


@routes.get("/account")
async def account_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if session is None:
        return _redirect(request, "login?done=session")
    saved = request.query.get("saved") == "1"
    return await _account(request, session, message=N_("Saved.") if saved else None)


@routes.post("/account/profile")
@session_form
async def account_profile(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    changes = request.app[ACCOUNTS].email_changes
    assert changes is not None
    fields: dict[str, str | None] = {}
    for name in ("display_name", "company", "datacenter", "currency"):
        fields[name] = _text(form, name)
    email = str(form.get("email", ""))
    try:
        changes_email = await changes.is_change(session.account_id, email)
        view = await request.app[ACCOUNTS].accounts.update_profile(
            session.account_id, ProfileChanges(fields))
        if changes_email:
            # Password (and code) checked, then the link goes to the new address, or a
            # notice to the owner when another account has it: the same page either way.
            await changes.request(session.account_id, email,
                                  _secret(form, "current_password"),
                                  _text(form, "totp_code"),
                                  client_address(request), session.id)
    except DomainError as exc:
        status = 429 if isinstance(exc, TooManyRequests) else 422
        return await _account(request, session, status, error=_error(request, exc))
    if changes_email:
        resp = await _account(request, session, message=N_(
            "Saved. We mailed a link to the new address: the email changes when it is "
            "opened."))
    else:
        resp = _redirect(request, "account?saved=1")
    set_pref(request, resp, view.account.currency, view.account.datacenter)
    return resp


def _secret(form: Any, name: str) -> str | None:
    """A password as typed: not stripped."""
    value = form.get(name)
    return value if isinstance(value, str) and value else None


@routes.post("/account/totp")
@session_form
async def account_totp_begin(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        enrolment = await request.app[ACCOUNTS].two_factor.begin(
            session.account_id, _secret(form, "current_password"))
    except DomainError as exc:
        status = (429 if isinstance(exc, TooManyRequests)
                  else 409 if isinstance(exc, Conflict) else 422)
        return await _account(request, session, status, error=_error(request, exc))
    qr = segno.make(enrolment.otpauth_uri, error="m").svg_inline(
        scale=4, title=voice(request).gettext("Two-factor authentication QR code"))
    return await _account(request, session, enrolment={"secret": enrolment.secret,
                                                       "qr_svg": qr})


@routes.post("/account/totp/confirm")
@session_form
async def account_totp_confirm(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        codes = await request.app[ACCOUNTS].two_factor.confirm(
            session.account_id, str(form.get("code", "")),
            client_address(request), session.id)
    except DomainError as exc:
        return await _account(request, session, 422, error=_error(request, exc))
    return await _account(request, session, recovery_codes=codes,
                          message=N_("Two-factor authentication is on."))


@routes.post("/account/totp/disable")
@session_form
async def account_totp_disable(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        await request.app[ACCOUNTS].two_factor.disable(
            session.account_id, _secret(form, "current_password"), str(form.get("code", "")),
            client_address(request))
    except DomainError as exc:
        status = 429 if isinstance(exc, TooManyRequests) else 422
        return await _account(request, session, status, error=_error(request, exc))
    await request.app[ACCOUNTS].recovery.notify(session.account_id, "totp_disabled")
    return _redirect(request, "account?saved=1")


@routes.post("/logout")
@session_form
async def logout(request: web.Request, session: SessionRecord, form: Any) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    assert token is not None
    await request.app[ACCOUNTS].accounts.log_out(token)
    resp = _redirect(request, "login?done=logout")
    # Deleting a __Host- cookie needs the same attributes, or browsers ignore it.
    resp.del_cookie(SESSION_COOKIE, path="/", secure=True,
                    httponly=True, samesite="Strict")
    return resp
