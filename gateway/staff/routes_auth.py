"""Login, mandatory TOTP enrolment, logout."""

import math

import segno
from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.forms import read_form
from gateway.services.errors import ServiceUnavailable, TooManyRequests, Unauthorized
from gateway.services.ports import StaffSession
from gateway.staff.context import COOKIE, EDGE, MEMBERS, PREFIX, STAFF_CSRF, STAFF_SESSION
from gateway.staff.pages import current, ip, page, redirect, render, text

routes = web.RouteTableDef()
HOME = {"finance": "/finance", "support": "/support", "admin": "/admin"}


def _set_cookie(resp: web.StreamResponse, token: str) -> None:
    resp.set_cookie(COOKIE, token, path=PREFIX, httponly=True, samesite="Strict",
                    secure=True)


@routes.get(PREFIX)
@routes.get(PREFIX + "/")
@page("finance", "support")
async def home(request: web.Request, session: StaffSession) -> web.Response:
    return redirect(HOME[session.member.role])


@routes.get(PREFIX + "/login")
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", {})


@routes.post(PREFIX + "/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    request.app[STAFF_CSRF].check(request, text(form, "csrf"))
    login_limit = request.app[EDGE].login_limit
    name = text(form, "name")
    password = form.get("password")
    try:
        if login_limit is not None:
            login_limit.hit(ip(request), "staff-login")
        login = await request.app[MEMBERS].staff.log_in(
            name, password if isinstance(password, str) else "", text(form, "code") or None,
            ip(request))
    except (Unauthorized, TooManyRequests, ServiceUnavailable) as exc:
        status = (429 if isinstance(exc, TooManyRequests)
                  else 503 if isinstance(exc, ServiceUnavailable) else 401)
        resp = render(request, "login.html", {"name": name, "error": str(exc)}, status)
        if isinstance(exc, TooManyRequests | ServiceUnavailable):
            resp.headers["Retry-After"] = str(max(math.ceil(exc.retry_after_seconds), 1))
        return resp
    resp = redirect("/" if login.enrolled else "/enrol")
    _set_cookie(resp, login.token)
    return resp


async def _unenrolled(request: web.Request) -> web.Response | None:
    """The session of a member still to enrol; otherwise where to go instead."""
    session = await current(request)
    if session is None:
        return redirect("/login")
    request[STAFF_SESSION] = session
    if session.enrolled:
        return redirect("/")
    return None


@routes.get(PREFIX + "/enrol")
async def enrol_page(request: web.Request) -> web.Response:
    return await _unenrolled(request) or render(request, "enrol.html", {})


@routes.post(PREFIX + "/enrol")
async def enrol_begin(request: web.Request) -> web.Response:
    elsewhere = await _unenrolled(request)
    if elsewhere is not None:
        return elsewhere
    session = request[STAFF_SESSION]
    form = await read_form(request)
    request.app[STAFF_CSRF].check(request, text(form, "csrf"), session.id)
    enrolment = await request.app[MEMBERS].staff.begin_enrolment(session)
    qr = segno.make(enrolment.otpauth_uri, error="m").svg_inline(
        scale=4, title="Two-factor authentication QR code")
    return render(request, "enrol.html", {"secret": enrolment.secret, "qr_svg": qr})


@routes.post(PREFIX + "/enrol/confirm")
async def enrol_confirm(request: web.Request) -> web.Response:
    elsewhere = await _unenrolled(request)
    if elsewhere is not None:
        return elsewhere
    session = request[STAFF_SESSION]
    form = await read_form(request)
    request.app[STAFF_CSRF].check(request, text(form, "csrf"), session.id)
    try:
        token = await request.app[MEMBERS].staff.confirm_enrolment(
            session, text(form, "code"), ip(request))
    except DomainError as exc:
        return render(request, "enrol.html", {"error": str(exc)}, 422)
    resp = redirect("/")
    _set_cookie(resp, token)
    return resp


@routes.post(PREFIX + "/logout")
async def logout(request: web.Request) -> web.Response:
    session = await current(request)
    if session is not None:
        form = await read_form(request)
        request.app[STAFF_CSRF].check(request, text(form, "csrf"), session.id)
        token = request.cookies.get(COOKIE)
        assert token is not None
        await request.app[MEMBERS].staff.log_out(token)
    resp = redirect("/login")
    resp.del_cookie(COOKIE, path=PREFIX, secure=True, httponly=True, samesite="Strict")
    return resp
