"""What the checkout page and its event stream show: presentation only."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import segno

from chains.base import BlockRef, Lock, NetworkFacts
from gateway.domain.invoices import InvoiceException, Status
from gateway.domain.payments import PaymentStatus
from gateway.domain.timestamps import rfc3339
from gateway.services.invoices import InvoiceView

FINAL = {Status.SETTLED.value, Status.EXPIRED.value, Status.INVALID.value}

STATUS_TEXT: dict[str, str] = {
    Status.NEW: "Waiting for your payment.",
    Status.PROCESSING: "Payment received. Waiting for confirmations.",
    Status.SETTLED: "Paid. Thank you!",
    Status.EXPIRED: "This invoice has expired.",
    Status.INVALID: "The payment was not confirmed in time. Please contact support.",
}
EXCEPTION_TEXT: dict[str, str] = {
    InvoiceException.PAID_PARTIAL: "Only part of the amount arrived.",
    InvoiceException.PAID_OVER: "More than the amount due arrived.",
    InvoiceException.PAID_LATE: "A payment arrived after expiry; it is being reviewed.",
    InvoiceException.REVERTED_AFTER_SETTLEMENT:
        "A payment left the blockchain after settlement.",
}


TIME_FORMAT = "%H:%M UTC, %d %b %Y"


def settlement_text(network: NetworkFacts | None, required: int) -> str:
    """How long settlement takes, from the network's typical block interval (its family's
    and configuration's) and its finality."""
    if network is not None and network.finality != "depth":
        return (f"Your payment is seen within seconds; settlement waits until {network.name} "
                f"marks its block {network.finality}.")
    seconds = network.block_seconds if network is not None else None
    about = f" (about {round(required * seconds / 60)} minutes)" if seconds else ""
    return (f"Your payment is seen within seconds; settlement waits for {required} "
            f"confirmations{about}.")


def lock_text(network: NetworkFacts | None, lock: Lock, tip: BlockRef | None,
              now: datetime) -> str:
    """A payment held from counting by its lock, in a customer's words: "Received;
    spendable from block N, about <time>." (the estimate from the coin's typical block
    interval), or "... from <time>." for a time lock."""
    parts = []
    if lock.height is not None:
        part = f"block {lock.height}"
        seconds = network.block_seconds if network is not None else None
        if seconds and tip is not None:
            # It may be spent in block N: once the chain's tip is N - 1.
            at = now + timedelta(seconds=max(lock.height - 1 - tip.height, 0) * seconds)
            part += f", about {at.strftime(TIME_FORMAT)}"
        parts.append(part)
    if lock.time is not None:
        parts.append(lock.time.strftime(TIME_FORMAT))
    return f"Received; spendable from {' and not before '.join(parts)}."


def status_doc(view: InvoiceView, network: NetworkFacts | None = None) -> dict[str, Any]:
    inv = view.record.invoice
    live = [p for p in view.record.payments if p.status != PaymentStatus.REVERTED]
    confirmations = min((view.confirmations(p) for p in live), default=0)
    # The payment whose lock holds longest (a sender's unlock_time in the future).
    held = [p.lock for p in live if p.lock is not None and view.locked_until(p) is not None]
    lock = max(held, key=lambda k: (k.height or 0, k.time or datetime.min.replace(tzinfo=UTC)),
               default=None)
    required = inv.terms.confirmations_required
    text = STATUS_TEXT[inv.status.value]
    if inv.exception is not None:
        text = f"{text} {EXCEPTION_TEXT[inv.exception.value]}"
    if not live:
        conf_text = "No payment seen yet."
    elif inv.status is Status.SETTLED:
        conf_text = f"Confirmed ({confirmations} confirmations)."
    else:
        conf_text = f"{min(confirmations, required)} of {required} confirmations."
    held_text = None
    if lock is not None and inv.status is not Status.SETTLED:
        held_text = lock_text(network, lock, view.tip, view.now or datetime.now(UTC))
        conf_text = f"{conf_text} {held_text}"
    return {
        "status": inv.status.value,
        "exception": inv.exception.value if inv.exception else None,
        "status_text": text,
        "confirmations": confirmations,
        "confirmations_required": required,
        "confirmations_text": conf_text,
        "lock_text": held_text,
        "final": inv.status.value in FINAL,
    }


def network_notice(payment_uri: str, network: NetworkFacts | None) -> dict[str, Any] | None:
    """An EIP-681 URI names the chain and, for a token, its contract: the page shows both,
    because a wallet can send the same symbol on another network or from another token
    contract, and the gateway watches only this one."""
    if not payment_uri.startswith("ethereum:"):
        return None
    target, _, rest = payment_uri.removeprefix("ethereum:").partition("@")
    chain_text = rest.split("/", 1)[0].split("?", 1)[0]
    chain_id = int(chain_text) if chain_text.isdigit() else 1
    name = network.name if network is not None else "EVM network"
    return {"network": f"{name} (chain id {chain_id})",
            "token_contract": target if "/transfer?" in rest else None}


@lru_cache(maxsize=1024)
def qr_svg(payment_uri: str) -> str:
    """The payment URI's QR code as inline SVG. An invoice's URI never changes and the
    page without JavaScript reloads itself every few seconds: drawing the code (about
    10 ms of the event loop's CPU) once per invoice instead of once per view keeps the
    page cheap under load. Bounded: the oldest invoices' codes are dropped first."""
    qr = segno.make(payment_uri, error="m")
    return str(qr.svg_inline(scale=5, border=2, title=f"QR code: {payment_uri}"))


def page_context(view: InvoiceView, now: datetime, network: NetworkFacts | None = None
                 ) -> dict[str, Any]:
    """`network`: what the coin's family says of its network (InvoiceService.network)."""
    from gateway.domain.money import format_units

    inv = view.record.invoice
    doc = status_doc(view, network)
    expires = inv.terms.expires_at
    return {
        **doc,
        "invoice_id": inv.id,
        "coin": inv.coin,
        "amount": format_units(inv.terms.amount_due, inv.terms.decimals),
        "price": inv.price.as_decimal_string(),
        "currency": inv.price.currency,
        "plan": inv.metadata.get("plan") if isinstance(inv.metadata.get("plan"), str) else None,
        "address": view.record.address,
        "payment_uri": view.record.payment_uri,
        "qr_svg": qr_svg(view.record.payment_uri),
        "expires_iso": rfc3339(expires),
        "expires_text": expires.strftime(TIME_FORMAT),
        "minutes_left": max(int((expires - now).total_seconds() // 60), 0),
        "show_payment": inv.status in (Status.NEW, Status.PROCESSING),
        "network_notice": network_notice(view.record.payment_uri, network),
        "network_name": network.name if network is not None else None,
        "settlement_text": settlement_text(network, inv.terms.confirmations_required),
        "refresh_seconds": 10,
    }
