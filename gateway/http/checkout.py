"""What the checkout page and its event stream show: presentation only, in the
request's language (a `Voice`: its catalog and formats)."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import segno

from chains.base import BlockRef, Lock, NetworkFacts
from gateway.domain.invoices import InvoiceException, Status
from gateway.domain.payments import PaymentStatus
from gateway.domain.timestamps import rfc3339
from gateway.i18n import ENGLISH, N_, Voice
from gateway.services.invoices import InvoiceView

FINAL = {Status.SETTLED.value, Status.EXPIRED.value, Status.INVALID.value}

STATUS_TEXT: dict[str, str] = {
    Status.NEW: N_("Waiting for your payment."),
    Status.PROCESSING: N_("Payment received. Waiting for confirmations."),
    Status.SETTLED: N_("Paid. Thank you!"),
    Status.EXPIRED: N_("This invoice has expired."),
    Status.INVALID: N_("The payment was not confirmed in time. Please contact support."),
}
EXCEPTION_TEXT: dict[str, str] = {
    InvoiceException.PAID_PARTIAL: N_("Only part of the amount arrived."),
    InvoiceException.PAID_OVER: N_("More than the amount due arrived."),
    InvoiceException.PAID_LATE: N_("A payment arrived after expiry; it is being reviewed."),
    InvoiceException.REVERTED_AFTER_SETTLEMENT:
        N_("A payment left the blockchain after settlement."),
}
ENGLISH_VOICE = ENGLISH.voice(None)


# The finality tags a network may settle by: what the page says while it waits for one.
FINALITY_TEXT = {
    "safe": N_("Your payment is seen within seconds; settlement waits until %(network)s "
               "marks its block safe."),
    "finalized": N_("Your payment is seen within seconds; settlement waits until "
                    "%(network)s marks its block finalized."),
}


def settlement_text(network: NetworkFacts | None, required: int,
                    voice: Voice = ENGLISH_VOICE) -> str:
    """How long settlement takes, from the network's typical block interval (its family's
    and configuration's) and its finality."""
    if network is not None and network.finality in FINALITY_TEXT:
        return voice.gettext(FINALITY_TEXT[network.finality], network=network.name)
    seconds = network.block_seconds if network is not None else None
    if not seconds:
        return voice.ngettext(
            "Your payment is seen within seconds; settlement waits for %(n)s confirmation.",
            "Your payment is seen within seconds; settlement waits for %(n)s confirmations.",
            required)
    return voice.ngettext(
        "Your payment is seen within seconds; settlement waits for %(n)s confirmation "
        "(about %(minutes)s minutes).",
        "Your payment is seen within seconds; settlement waits for %(n)s confirmations "
        "(about %(minutes)s minutes).",
        required, minutes=round(required * seconds / 60))


def lock_text(network: NetworkFacts | None, lock: Lock, tip: BlockRef | None,
              now: datetime, voice: Voice = ENGLISH_VOICE) -> str:
    """A payment held from counting by its lock, in a customer's words: "Received;
    spendable from block N, about <time>." (the estimate from the coin's typical block
    interval), or "... from <time>." for a time lock."""
    parts = []
    if lock.height is not None:
        seconds = network.block_seconds if network is not None else None
        if seconds and tip is not None:
            # It may be spent in block N: once the chain's tip is N - 1.
            at = now + timedelta(seconds=max(lock.height - 1 - tip.height, 0) * seconds)
            parts.append(voice.gettext("block %(height)s, about %(time)s",
                                       height=lock.height, time=voice.when(at)))
        else:
            parts.append(voice.gettext("block %(height)s", height=lock.height))
    if lock.time is not None:
        parts.append(voice.when(lock.time))
    if len(parts) == 2:
        return voice.gettext("Received; spendable from %(block)s and not before %(time)s.",
                             block=parts[0], time=parts[1])
    return voice.gettext("Received; spendable from %(when)s.", when=parts[0])


def _confirmations_text(view: InvoiceView, live: bool, confirmations: int,
                        voice: Voice) -> str:
    inv = view.record.invoice
    required = inv.terms.confirmations_required
    if not live:
        return voice.gettext("No payment seen yet.")
    if inv.status is Status.SETTLED:
        return voice.ngettext("Confirmed (%(n)s confirmation).",
                              "Confirmed (%(n)s confirmations).", confirmations)
    return voice.ngettext("%(count)s of %(n)s confirmation.", "%(count)s of %(n)s confirmations.",
                          required, count=min(confirmations, required))


def status_doc(view: InvoiceView, network: NetworkFacts | None = None,
               voice: Voice = ENGLISH_VOICE) -> dict[str, Any]:
    inv = view.record.invoice
    live = [p for p in view.record.payments if p.status != PaymentStatus.REVERTED]
    confirmations = min((view.confirmations(p) for p in live), default=0)
    # The payment whose lock holds longest (a sender's unlock_time in the future).
    held = [p.lock for p in live if p.lock is not None and view.locked_until(p) is not None]
    lock = max(held, key=lambda k: (k.height or 0, k.time or datetime.min.replace(tzinfo=UTC)),
               default=None)
    required = inv.terms.confirmations_required
    text = voice.gettext(STATUS_TEXT[inv.status.value])
    if inv.exception is not None:
        text = f"{text} {voice.gettext(EXCEPTION_TEXT[inv.exception.value])}"
    conf_text = _confirmations_text(view, bool(live), confirmations, voice)
    held_text = None
    if lock is not None and inv.status is not Status.SETTLED:
        held_text = lock_text(network, lock, view.tip, view.now or datetime.now(UTC), voice)
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


def network_notice(payment_uri: str, network: NetworkFacts | None,
                   voice: Voice = ENGLISH_VOICE) -> dict[str, Any] | None:
    """An EIP-681 URI names the chain and, for a token, its contract: the page shows both,
    because a wallet can send the same symbol on another network or from another token
    contract, and the gateway watches only this one."""
    if not payment_uri.startswith("ethereum:"):
        return None
    target, _, rest = payment_uri.removeprefix("ethereum:").partition("@")
    chain_text = rest.split("/", 1)[0].split("?", 1)[0]
    chain_id = int(chain_text) if chain_text.isdigit() else 1
    # A network's name is a proper name from its family and configuration (not translated).
    name = network.name if network is not None else voice.gettext("EVM network")
    return {"network": voice.gettext("%(name)s (chain id %(id)s)", name=name, id=chain_id),
            "token_contract": target if "/transfer?" in rest else None}


@lru_cache(maxsize=1024)
def qr_svg(payment_uri: str) -> str:
    """The payment URI's QR code as inline SVG. An invoice's URI never changes and the
    page without JavaScript reloads itself every few seconds: drawing the code (about
    10 ms of the event loop's CPU) once per invoice instead of once per view keeps the
    page cheap under load. Bounded: the oldest invoices' codes are dropped first."""
    qr = segno.make(payment_uri, error="m")
    return str(qr.svg_inline(scale=5, border=2, title=f"QR code: {payment_uri}"))


def page_context(view: InvoiceView, now: datetime, network: NetworkFacts | None = None,
                 voice: Voice = ENGLISH_VOICE) -> dict[str, Any]:
    """What the page shows. `network`: what the coin's family says of its network
    (InvoiceService.network). `amount`, `address` and `payment_uri` are the plain forms a
    wallet accepts (what is copied and encoded in the QR code); `amount_text` and
    `price_text` are the same values in the locale's style, only shown (docs/i18n.md)."""
    from gateway.domain.money import format_units

    inv = view.record.invoice
    doc = status_doc(view, network, voice)
    expires = inv.terms.expires_at
    amount = format_units(inv.terms.amount_due, inv.terms.decimals)
    return {
        **doc,
        "invoice_id": inv.id,
        "coin": inv.coin,
        "amount": amount,
        "amount_text": voice.amount(amount),
        "price": inv.price.as_decimal_string(),
        "price_text": voice.money(inv.price.as_decimal_string(), inv.price.currency),
        "currency": inv.price.currency,
        "plan": inv.metadata.get("plan") if isinstance(inv.metadata.get("plan"), str) else None,
        "address": view.record.address,
        "payment_uri": view.record.payment_uri,
        "qr_svg": qr_svg(view.record.payment_uri),
        "expires_iso": rfc3339(expires),
        "expires_text": voice.when(expires),
        "minutes_left": max(int((expires - now).total_seconds() // 60), 0),
        "show_payment": inv.status in (Status.NEW, Status.PROCESSING),
        "network_notice": network_notice(view.record.payment_uri, network, voice),
        "network_name": network.name if network is not None else None,
        "settlement_text": settlement_text(network, inv.terms.confirmations_required, voice),
        "refresh_seconds": 10,
    }
