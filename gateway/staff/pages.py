"""What every console page shares: rendering, forms, the session and role checks."""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway.domain.errors import DomainError, InvalidInput
from gateway.http.access_log import timed
from gateway.http.client_ip import client_ip
from gateway.http.forms import read_form
from gateway.http.problems import Handler
from gateway.services.errors import Forbidden, NotFound, Unauthorized
from gateway.services.ports import StaffSession
from gateway.staff.context import COOKIE, EDGE, MEMBERS, PREFIX, STAFF_CSRF, STAFF_SESSION

log = logging.getLogger("gateway.staff")
NAV = {"finance": ("finance",), "support": ("support",), "admin": ("finance", "support",
                                                                    "admin")}


def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    session: StaffSession | None = request.get(STAFF_SESSION)
    resp = aiohttp_jinja2.render_template(template, request, {
        **context, "p": PREFIX, "me": session.member if session and session.enrolled else None,
        "nav": NAV.get(session.member.role, ()) if session and session.enrolled else (),
        "csrf": request.app[STAFF_CSRF].token(request, session.id if session else None)},
        status=status)
    # As on the portal: same-origin, so our own forms carry our Origin.
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def ip(request: web.Request) -> str:
    return client_ip(request, request.app[EDGE].trusted_proxies)


def text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def redirect(target: str) -> web.Response:
    return web.Response(status=303, headers={"Location": PREFIX + target})


async def current(request: web.Request) -> StaffSession | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return await request.app[MEMBERS].staff.session(token)
    except Unauthorized:
        return None


Page = Callable[[web.Request, StaffSession], Awaitable[web.StreamResponse]]
FormPage = Callable[[web.Request, StaffSession, Any], Awaitable[web.StreamResponse]]


def _check_role(session: StaffSession, roles: tuple[str, ...]) -> None:
    if session.member.role != "admin" and session.member.role not in roles:
        raise Forbidden(f"this page is for {' and '.join(roles)} staff; you are "
                        f"{session.member.role} staff")


async def _enter(request: web.Request, roles: tuple[str, ...]) -> StaffSession:
    session = await current(request)
    if session is None:
        raise web.HTTPSeeOther(PREFIX + "/login")
    request[STAFF_SESSION] = session
    if not session.enrolled:  # nothing but the enrolment until TOTP is on
        raise web.HTTPSeeOther(PREFIX + "/enrol")
    _check_role(session, roles)
    return session


def page(*roles: str) -> Callable[[Page], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A GET page for these roles (admin sees every page)."""

    def wrap(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            return await handler(request, await _enter(request, roles))

        return checked

    return wrap


def action(*roles: str) -> Callable[[FormPage],
                                    Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A POSTed form for these roles: session, role and CSRF token checked first."""

    def wrap(handler: FormPage) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            session = await _enter(request, roles)
            form = await read_form(request)
            request.app[STAFF_CSRF].check(request, text(form, "csrf"), session.id)
            return await handler(request, session, form)

        return checked

    return wrap


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A refusal from a service becomes a page with one clear line."""
    try:
        return await handler(request)
    except Forbidden as exc:
        return render(request, "message.html", {"heading": "Not for your role",
                                                "text": str(exc)}, 403)
    except NotFound as exc:
        return render(request, "message.html", {"heading": "Not found", "text": str(exc)},
                      404)
    except (InvalidInput, DomainError) as exc:
        status = 422 if isinstance(exc, InvalidInput) else 409
        return render(request, "message.html", {"heading": "That did not work",
                                                "text": str(exc)}, status)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Like the public listener's log (`access_log.timed`); who did what is in the staff
    log."""
    return await timed(request, handler, log)
