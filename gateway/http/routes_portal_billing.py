"""Portal forms to buy: choose a plan and a coin, or pay an expired invoice again (both
lead to the checkout page); and the choices for renewals. Plain forms, no JavaScript."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import DomainError
from gateway.http.client_ip import client_ip
from gateway.http.keys import SERVICES
from gateway.http.routes_portal import (
    _account,
    _redirect,
    _retry_after,
    _status,
    _text,
    session_form,
)
from gateway.services.errors import Forbidden
from gateway.services.ports import SessionRecord

routes = web.RouteTableDef()


async def may_create_invoice(request: web.Request, session: SessionRecord) -> None:
    """Each new invoice takes a fresh address: a cap per client address across all its
    accounts (the per-account cap is the service's), and, when addresses must be
    confirmed, a confirmed one (a session from before verification was turned on)."""
    services = request.app[SERVICES]
    if services.invoice_limit is not None:
        services.invoice_limit.hit(client_ip(request, services.trusted_proxies), "invoice")
    if (services.accounts.requires_verification
            and not await services.accounts.email_verified(session.account_id)):
        raise Forbidden("confirm your email address first: open the link we mailed you "
                        "(log in again to have a new one sent)")


@routes.post("/account/buy")
@session_form
async def account_buy(request: web.Request, session: SessionRecord, form: Any) -> web.Response:
    services = request.app[SERVICES]
    try:
        await may_create_invoice(request, session)
        plan = services.invoices.plan(_text(form, "plan") or "")
        currency = (await services.accounts.view(session.account_id)).account.currency
        view, _ = await services.invoices.create_once(
            session.account_id, plan.price_in(currency), _text(form, "coin") or "",
            {"plan": plan.name}, None, for_plan=plan)
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=str(exc)), exc)
    return _redirect(request, f"pay/{view.record.invoice.id}")


@routes.post("/account/pay-again")
@session_form
async def account_pay_again(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    try:
        await may_create_invoice(request, session)
        view = await request.app[SERVICES].invoices.pay_again(
            session.account_id, _text(form, "invoice_id") or "")
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=str(exc)), exc)
    return _redirect(request, f"pay/{view.record.invoice.id}")


@routes.post("/account/renewal")
@session_form
async def account_renewal(
    request: web.Request, session: SessionRecord, form: Any
) -> web.Response:
    """The plan and coin of the next renewal invoices, and whether to mail reminders. An
    unpaid renewal invoice of the current period is replaced by one for the new choice."""
    billing = request.app[SERVICES].billing
    if billing is None:
        return _redirect(request, "account")
    try:
        await billing.choose(session.account_id, _text(form, "plan"), _text(form, "coin"),
                             reminders=form.get("reminders") == "on")
    except DomainError as exc:
        return _retry_after(
            await _account(request, session, _status(exc, 422), error=str(exc)), exc)
    return _redirect(request, "account?saved=1")
