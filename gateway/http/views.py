"""Response documents."""

import json
from typing import Any

from aiohttp import web

from gateway.domain.credit import CreditEntry, signed_fiat
from gateway.domain.money import format_units
from gateway.domain.payments import PaymentStatus
from gateway.domain.timestamps import rfc3339
from gateway.http.keys import BILLING
from gateway.services.accounts import AccountView
from gateway.services.billing import RenewalView
from gateway.services.invoices import InvoiceView
from gateway.services.ports import EndpointRecord, EventRecord


def _ts(value: Any) -> str | None:
    return rfc3339(value) if value is not None else None


def credit_json(balance: int, currency: str | None) -> dict[str, Any] | None:
    """The account's credit (docs/credit.md); None while it has no currency."""
    if currency is None:
        return None
    return {"balance": signed_fiat(balance, currency), "balance_minor": balance,
            "currency": currency}


def credit_entry_json(e: CreditEntry) -> dict[str, Any]:
    c = e.conversion
    return {
        "id": e.id, "kind": e.kind.value, "amount": signed_fiat(e.amount, e.currency),
        "amount_minor": e.amount, "currency": e.currency, "created_at": rfc3339(e.created_at),
        "invoice_id": e.invoice_id, "refund_id": e.refund_id,
        "payment": None if c is None else {
            "coin": c.coin, "txid": c.txid, "index": c.output_index,
            "amount": format_units(c.crypto_amount, c.decimals),
            "amount_base_units": str(c.crypto_amount), "rate": c.rate,
            "rate_source": c.rate_source},
        "reason": e.reason.value if e.reason else None,
    }


def account_json(view: AccountView, renewal: RenewalView | None = None,
                 credit: dict[str, Any] | None = None) -> dict[str, Any]:
    a, p = view.account, view.profile
    nxt = renewal.next_invoice if renewal is not None else None
    return {
        "id": a.id,
        "email": p.email,
        "display_name": p.display_name,
        "company": p.company,
        "datacenter": a.datacenter,
        "currency": a.currency,
        "created_at": _ts(a.created_at),
        "activated_at": _ts(a.activated_at),
        "policy_version_accepted": a.policy_version,
        "deletion_due_at": _ts(a.deletion_due_at),
        # Prepaid time (docs/prepaid-time.md)
        "plan": a.plan,
        "paid_until": _ts(a.paid_until),
        "billing_state": a.billing_state.value if a.billing_state else None,
        "renewal_coin": a.renewal_coin,
        "renewal_reminders": a.renewal_reminders,
        "next_invoice": None if nxt is None else {
            "invoice_id": nxt.invoice_id, "status": nxt.invoice_status,
            "created_at": rfc3339(nxt.created_at)},
        "next_invoice_at": _ts(renewal.next_invoice_at) if renewal is not None else None,
        "credit": credit,
    }


async def account_doc(request: web.Request, view: AccountView) -> dict[str, Any]:
    """The account document with its prepaid time (the renewal invoice of the period)."""
    billing = request.app[BILLING].billing
    renewal = await billing.view(view.account.id) if billing is not None else None
    service = request.app[BILLING].credit
    credit = None
    if service is not None:
        credit = credit_json(await service.balance(view.account.id), view.account.currency)
    return account_json(view, renewal, credit)


def invoice_json(view: InvoiceView) -> dict[str, Any]:
    rec = view.record
    inv = rec.invoice
    dec = inv.terms.decimals
    live = [p for p in rec.payments if p.status != PaymentStatus.REVERTED]
    return {
        "id": inv.id,
        "account_id": inv.account_id,
        "status": inv.status.value,
        "exception": inv.exception.value if inv.exception else None,
        "price": {"amount": inv.price.as_decimal_string(), "currency": inv.price.currency},
        "coin": inv.coin,
        "amount_due": format_units(inv.terms.amount_due, dec),
        "amount_due_base_units": str(inv.terms.amount_due),
        "amount_paid": format_units(sum(p.amount for p in live), dec),
        "amount_paid_base_units": str(sum(p.amount for p in live)),
        "rate": {
            "value": inv.rate.value,
            "source": inv.rate.source,
            "locked_at": rfc3339(inv.rate.locked_at),
        },
        "address": rec.address,
        "payment_uri": rec.payment_uri,
        "confirmations_required": inv.terms.confirmations_required,
        "expires_at": rfc3339(inv.terms.expires_at),
        "monitoring_until": rfc3339(inv.terms.monitoring_until),
        "created_at": rfc3339(inv.created_at),
        "settled_at": _ts(inv.settled_at),
        "payments": [
            {
                "txid": p.txid,
                "index": p.index,
                "amount": format_units(p.amount, dec),
                "amount_base_units": str(p.amount),
                "confirmations": view.confirmations(p),
                "status": p.status,
                "seen_at": rfc3339(p.seen_at),
                "locked_until": view.locked_until(p),
            }
            for p in rec.payments
        ],
        "metadata": inv.metadata,
    }


def endpoint_json(rec: EndpointRecord, secret: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rec.id,
        "url": rec.url,
        "event_types": list(rec.event_types),
        "description": rec.description,
        "enabled": rec.enabled,
        "created_at": rfc3339(rec.created_at),
    }
    if secret is not None:
        doc["secret"] = secret
    return doc


def event_json(rec: EventRecord) -> dict[str, Any]:
    """An outbox event: its exact signed body, and (for one event) every delivery attempt."""
    doc: dict[str, Any] = {
        "id": rec.id,
        "type": rec.type,
        "created_at": rfc3339(rec.created_at),
        "payload": json.loads(rec.body),
    }
    if rec.deliveries:
        doc["deliveries"] = [
            {
                "id": d.id,
                "endpoint_id": d.endpoint_id,
                "status": d.status,
                "attempts": d.attempts,
                "next_attempt_at": _ts(d.next_attempt_at),
                "last_status_code": d.last_status_code,
                "last_error": d.last_error,
                "log": [
                    {"at": rfc3339(a.at), "status_code": a.status_code,
                     "latency_ms": a.latency_ms, "error": a.error}
                    for a in d.log
                ],
            }
            for d in rec.deliveries
        ]
    return doc
