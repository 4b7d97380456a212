"""Finance: recording a cash envelope against its one-time token (docs/cash.md). The page
never names the account the token belongs to: the member needs only to know the amount
went to credit, and the envelope may carry a sender's address."""

from typing import Any

from aiohttp import web

from gateway.domain.credit import signed_fiat
from gateway.domain.errors import DomainError
from gateway.services.errors import NotFound, TooManyRequests
from gateway.services.ports import StaffSession
from gateway.staff.context import CASH, MEMBERS, PREFIX
from gateway.staff.pages import action, ip, page, render, text

routes = web.RouteTableDef()


def _form(request: web.Request, form: Any = None, error: str | None = None,
          done: dict[str, str] | None = None, status: int = 200) -> web.Response:
    area = request.app[CASH]
    values = {k: text(form, k) for k in ("token", "amount", "currency", "note")} if form \
        else {}
    return render(request, "cash.html", {
        "enabled": area.cash.instructions is not None, "currencies": area.currencies,
        "form": {} if done else values, "error": error, "done": done}, status)


@routes.get(PREFIX + "/finance/cash")
@page("finance")
async def cash_page(request: web.Request, session: StaffSession) -> web.Response:
    return _form(request)


def _status(exc: DomainError) -> int:
    if isinstance(exc, TooManyRequests):
        return 429
    return 404 if isinstance(exc, NotFound) else 422


@routes.post(PREFIX + "/finance/cash")
@action("finance")
async def record(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    area, key = request.app[CASH], f"cash:{session.member.id}"
    try:
        if area.refusals is not None:
            area.refusals.check(key, "refused token")
        done = await area.cash.record(
            text(form, "token"), text(form, "amount"), text(form, "currency"),
            text(form, "note") or None, session.member.id)
    except DomainError as exc:
        if area.refusals is not None and not isinstance(exc, TooManyRequests) and (
                isinstance(exc, NotFound) or getattr(exc, "field", "") == "token"):
            area.refusals.record(key)
            await request.app[MEMBERS].staff.record(session, "cash_refused", None,
                                                    ip(request))
        return _form(request, form, str(exc), status=_status(exc))
    await request.app[MEMBERS].staff.record(session, "cash_recorded", done.token_id,
                                            ip(request))
    entry = done.entry
    return _form(request, done={"token_id": done.token_id, "currency": entry.currency,
                                "amount": signed_fiat(entry.amount, entry.currency)})
