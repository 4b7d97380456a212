"""Support: an invoice with its history, payments, webhook events and delivery attempts;
an account, its email shown only on request. Each is a look at the customer's data: it
needs a reason and lands in their access audit (gateway/staff/looks.py)."""

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.domain.money import format_units
from gateway.http.checkout import lock_text
from gateway.services.ports import StaffSession
from gateway.services.privacy import Reader
from gateway.staff import looks
from gateway.staff.context import LOOKS, MEMBERS, PREFIX, SUPPORT
from gateway.staff.pages import action, ip, page, redirect, render, text

routes = web.RouteTableDef()


@routes.get(PREFIX + "/support")
@page("support")
async def support_home(request: web.Request, session: StaffSession) -> web.Response:
    return render(request, "support.html", {})


@routes.get(PREFIX + "/search")
@page("finance", "support")
async def search(request: web.Request, session: StaffSession) -> web.Response:
    query = request.query.get("q", "").strip()
    staff = request.app[MEMBERS].staff
    found = await staff.find(query)
    await staff.record(session, "search", found, ip(request))
    if found is None:
        return render(request, "message.html", {
            "heading": "Nothing found",
            "text": "No invoice has this id, address or transaction."}, 404)
    return redirect(f"/invoices/{found}")


def _status(data: dict[str, Any]) -> str:
    status = str(data.get("status", ""))
    exception = data.get("exception")
    return f"{status} ({exception})" if exception else status


@routes.get(PREFIX + "/invoices/{invoice_id}")
@page("finance", "support")
async def invoice_page(request: web.Request, session: StaffSession) -> web.Response:
    staff = request.app[MEMBERS].staff
    view = await request.app[SUPPORT].invoices.read(request.match_info["invoice_id"])
    network = request.app[SUPPORT].invoices.network(view.record.invoice.coin)
    inv = view.record.invoice
    # The invoice is the customer's data (their export carries it): a look with a reason.
    redelivered = request.query.get("redelivered")
    reason = looks.ask(request, f"Invoice {inv.id}",
                       {"redelivered": redelivered} if redelivered else None)
    if isinstance(reason, web.Response):
        return reason
    await looks.audit(request, session, reason, (inv.account_id,), "staff_viewed_invoice",
                      (f"invoice:{inv.id}", "payments", "webhook_events"))
    events = await staff.invoice_events(inv.account_id, inv.id)
    await staff.record(session, "invoice_viewed", inv.id, ip(request))
    now = view.now or datetime.now(UTC)
    history = []
    for event in events:
        data = json.loads(event.body).get("data", {})
        history.append({"at": event.created_at, "type": event.type, "status": _status(data)})
    return render(request, "invoice.html", {
        "inv": inv, "address": view.record.address,
        "amount_due": format_units(inv.terms.amount_due, inv.terms.decimals),
        "payments": [{"txid": p.txid, "index": p.index,
                      "amount": format_units(p.amount, inv.terms.decimals),
                      "status": p.status, "block_height": p.block_height,
                      "confirmations": view.confirmations(p), "seen_at": p.seen_at,
                      # Held from counting by its lock: said as the checkout page says it.
                      "locked": None if p.lock is None or view.locked_until(p) is None
                      else lock_text(network, p.lock, view.tip, now).removeprefix(
                          "Received; ")}
                     for p in view.record.payments],
        "history": history, "events": events,
        "can_redeliver": session.member.role in ("support", "admin"),
        "redelivered": redelivered, "reason": reason,
        "account_link": looks.with_reason(f"/accounts/{inv.account_id}", reason)})


@routes.post(PREFIX + "/events/{event_id}/redeliver")
@action("support")
async def redeliver(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    event_id = request.match_info["event_id"]
    invoice_id = text(form, "invoice_id")
    queued = await request.app[SUPPORT].events.redeliver(event_id)
    await request.app[MEMBERS].staff.record(session, "event_redelivered", event_id,
                                            ip(request))
    if invoice_id.startswith("inv_"):
        # Back to the invoice: a new look, with the reason of the one it came from.
        reason = looks.normal(form.get("reason"))
        target = (looks.with_reason(f"/invoices/{invoice_id}", reason,
                                    redelivered=str(queued))
                  if looks.reason_error(reason) is None
                  else f"{PREFIX}/invoices/{invoice_id}?redelivered={queued}")
        return web.Response(status=303, headers={"Location": target})
    return render(request, "message.html", {"heading": "Queued again",
                                            "text": f"{queued} deliveries queued."})


@routes.get(PREFIX + "/accounts/go")
@page("support")
async def account_go(request: web.Request, session: StaffSession) -> web.Response:
    return redirect(f"/accounts/{request.query.get('id', '').strip()}")


async def _account(request: web.Request, session: StaffSession, reason: str,
                   email: str | None = None) -> web.Response:
    support = request.app[SUPPORT]
    account_id = request.match_info["account_id"]
    account = (await support.accounts.view(account_id)).account
    invoices = await support.invoices.list(account_id=account_id, limit=200)
    state = account.state.value
    return render(request, "account.html", {
        "account": account, "state": state, "email": email, "reason": reason,
        "invoices": [{"id": v.record.invoice.id, "status": v.record.invoice.status.value,
                      "coin": v.record.invoice.coin,
                      "price": v.record.invoice.price.as_decimal_string(),
                      "currency": v.record.invoice.price.currency,
                      "created_at": v.record.invoice.created_at,
                      "link": looks.with_reason(f"/invoices/{v.record.invoice.id}", reason)}
                     for v in invoices]})


# What the account page shows besides the email (which needs its own reason, below).
ACCOUNT_FIELDS = ("datacenter", "currency", "invoices")


@routes.get(PREFIX + "/accounts/{account_id}")
@page("support")
async def account_page(request: web.Request, session: StaffSession) -> web.Response:
    # Its datacenter and currency are personal data, and its invoices the customer's: a
    # look with a reason, in the customer's access audit. The email needs a reason of its
    # own (reveal_email).
    account_id = request.match_info["account_id"]
    # An unknown account is a 404, not a question.
    await request.app[SUPPORT].accounts.view(account_id)
    reason = looks.ask(request, f"Account {account_id}")
    if isinstance(reason, web.Response):
        return reason
    await looks.audit(request, session, reason, (account_id,), "staff_viewed_account",
                      ACCOUNT_FIELDS)
    resp = await _account(request, session, reason)
    await request.app[MEMBERS].staff.record(session, "account_viewed", account_id,
                                            ip(request))
    return resp


@routes.post(PREFIX + "/accounts/{account_id}/email")
@action("support")
async def reveal_email(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    account_id = request.match_info["account_id"]
    reason = looks.normal(form.get("reason"))
    error = looks.reason_error(reason, "the email address")
    if error is not None:
        # Nothing of the account is shown without a valid reason: the question again.
        return looks.question(request, f"The email address of account {account_id}", error,
                              f"{PREFIX}/accounts/{account_id}/email", method="post")
    # The audited read: the reason goes to the access audit log, in the same transaction,
    # naming everything this page then shows.
    view = await request.app[LOOKS].privacy.read_account(
        account_id, Reader(f"staff:{session.member.name}", reason), also=("invoices",))
    await request.app[MEMBERS].staff.record(session, "email_revealed", account_id,
                                            ip(request))
    return await _account(request, session, reason, email=view.profile.email)
