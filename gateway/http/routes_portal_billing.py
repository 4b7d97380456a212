"""Portal forms to buy: choose a plan and a coin, or pay an expired invoice again (both
lead to the checkout page); and the choices for renewals. Plain forms, no JavaScript."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.invoice_limits import created_invoice, may_create_invoice
from gateway.http.keys import ACCOUNTS, BILLING
from gateway.http.routes_portal import (
    _account,
    _error,
    _redirect,
    _retry_after,
    _status,
    _text,
    session_form,
)
from gateway.services.credit_spending import Bought
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


@routes.post("/account/buy")
@session_form
async def account_buy(request: web.Request, session: SessionRecord, form: Any) -> web.Response:
    try:
        await may_create_invoice(request, session.account_id)
        area = request.app[BILLING]
        plan = area.invoices.plan(_text(form, "plan") or "")
        coin = _text(form, "coin") or ""
        if area.purchases is not None:
            result = await area.purchases.buy(session.account_id, plan, coin)
            if isinstance(result, Bought):  # credit paid it all: no invoice
                return _redirect(request, "account?credit=1")
            view, _ = result
        else:
            currency = (await request.app[ACCOUNTS].accounts.view(
                session.account_id)).account.currency
            view, _ = await area.invoices.create_once(
                session.account_id, plan.price_in(currency), coin, {"plan": plan.name},
                None, for_plan=plan)
        if not view.reused:
            created_invoice(request)
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, f"pay/{view.record.invoice.id}")


@routes.post("/account/pay-again")
@session_form
async def account_pay_again(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        await may_create_invoice(request, session.account_id)
        view = await request.app[BILLING].invoices.pay_again(
            session.account_id, _text(form, "invoice_id") or "")
        if not view.reused:
            created_invoice(request)
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, f"pay/{view.record.invoice.id}")


@routes.post("/account/renewal")
@session_form
async def account_renewal(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    """The plan and coin of the next renewal invoices, and whether to mail reminders. An
    unpaid renewal invoice of the current period is replaced by one for the new choice."""
    billing = request.app[BILLING].billing
    if billing is None:
        return _redirect(request, "account")
    try:
        await billing.choose(session.account_id, _text(form, "plan"), _text(form, "coin"),
                             reminders=form.get("reminders") == "on")
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=_error(request, exc)), exc)
    return _redirect(request, "account?saved=1")
