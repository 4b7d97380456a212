"""A staff look at a customer's data: asked for a reason first, then written to the
customer's access audit (the one their export shows) before anything is shown.

The reason travels as the `reason` query parameter of the page (a look is a GET, which
links and redirects can carry); the console's access log never writes query strings,
and its pages load nothing from another origin, so the reason leaves the browser only
to the console, which keeps it encrypted in the audit log."""

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from aiohttp import web

from gateway.services.ports import StaffSession
from gateway.services.privacy import (
    REASON_MAX,
    REASON_MIN,
    Reader,
    collapse_reason,
    reason_problem,
)
from gateway.staff.context import LOOKS, PREFIX
from gateway.staff.pages import render


def reason_error(reason: str, need: str = "to look") -> str | None:
    """What is wrong with a typed reason, if anything, in the console's words (the rule
    is the service's: `reason_problem`)."""
    if reason_problem(reason) is None:
        return None
    if len(reason) < REASON_MIN:
        return (f"A reason is required: type why you need {need} (at least {REASON_MIN} "
                "characters); the customer sees it in their data export.")
    return f"The reason is too long: at most {REASON_MAX} characters."


def normal(raw: object) -> str:
    return collapse_reason(raw) if isinstance(raw, str) else ""


def ask(request: web.Request, heading: str, keep: Mapping[str, str] | None = None
        ) -> str | web.Response:
    """The look's reason from the query, or the page asking for it: 200 when none was
    given (the link was followed), 422 when the one given is too short or too long.
    `keep`: the other query parameters the look needs again (a period, say)."""
    raw = request.query.get("reason")
    reason = normal(raw)
    error = reason_error(reason) if raw is not None else None
    if raw is None or error is not None:
        return question(request, heading, error, request.path, keep)
    return reason


def question(request: web.Request, heading: str, error: str | None, target: str,
             keep: Mapping[str, str] | None = None, method: str = "get") -> web.Response:
    """The page that asks for a reason (422 with the error of the one given)."""
    return render(request, "reason.html", {
        "heading": heading, "error": error, "action": target, "method": method,
        "keep": dict(keep or {})}, 422 if error is not None else 200)


async def audit(request: web.Request, session: StaffSession, reason: str,
                account_ids: Iterable[str], action: str, fields: tuple[str, ...]) -> None:
    """One access-audit entry per account looked at, committed before the page is shown."""
    await request.app[LOOKS].privacy.record_access(
        account_ids, Reader(f"staff:{session.member.name}", reason), action, fields)


def with_reason(path: str, reason: str, **more: str) -> str:
    """A console link (under PREFIX) that carries the look's reason on to the next look."""
    return f"{PREFIX}{path}?{urlencode({**more, 'reason': reason})}"
