"""Finance: the refunds queue (docs/refunds.md). Approve or refuse with a reason; above
the threshold two different members approve (enforced by the service, not the page).
Every action is in the staff log."""

from typing import Any

import segno
from aiohttp import web

from gateway.services.ports import StaffSession
from gateway.staff import looks
from gateway.staff.context import MEMBERS, PREFIX, REFUNDS
from gateway.staff.pages import action, ip, page, redirect, render, text

routes = web.RouteTableDef()


def _qr(uri: str | None) -> str | None:
    if not uri or ":" not in uri.split(" ", 1)[0]:
        return None
    return segno.make(uri, error="m").svg_data_uri(scale=4)


@routes.get(PREFIX + "/finance/refunds")
@page("finance")
async def queue(request: web.Request, session: StaffSession) -> web.Response:
    refunds = await request.app[REFUNDS].refunds.open()
    await request.app[MEMBERS].staff.record(session, "refunds_viewed", None, ip(request))
    return render(request, "refunds.html", {"refunds": refunds, "me_id": session.member.id})


def _back(refund_id: str, form: Any) -> web.Response:
    """To the refund's page, with the look's reason the form carried (else it is asked
    again)."""
    reason = looks.normal(form.get("look_reason"))
    if looks.reason_error(reason) is None:
        return web.Response(status=303, headers={"Location": looks.with_reason(
            f"/finance/refunds/{refund_id}", reason)})
    return redirect(f"/finance/refunds/{refund_id}")


@routes.get(PREFIX + "/finance/refunds/{refund_id}")
@page("finance")
async def one(request: web.Request, session: StaffSession) -> web.Response:
    """The refund with the customer's address: a look at personal data, so a reason
    first, in the customer's access audit."""
    refund = await request.app[REFUNDS].refunds.get(request.match_info["refund_id"])
    reason = looks.ask(request, f"Refund {refund.id}")
    if isinstance(reason, web.Response):
        return reason
    await looks.audit(request, session, reason, (refund.account_id,),
                      "staff_viewed_refund", ("refunds", "address"))
    await request.app[MEMBERS].staff.record(session, "refund_viewed", refund.id, ip(request))
    proven = request.app[REFUNDS].proven
    return render(request, "refund.html", {
        "r": refund, "qr": _qr(refund.quote.uri if refund.quote else None),
        "tx_key_form": proven is not None and proven.asks_tx_key(refund.coin),
        "look_reason": reason,
        "approved_by_me": any(a.staff_id == session.member.id for a in refund.approvals)})


@routes.get(PREFIX + "/finance/refunds/{refund_id}/refund.psbt")
@page("finance")
async def psbt(request: web.Request, session: StaffSession) -> web.Response:
    refund = await request.app[REFUNDS].refunds.get(request.match_info["refund_id"])
    if refund.quote is None or refund.quote.psbt is None:
        raise web.HTTPNotFound(text="this refund has no PSBT")
    reason = looks.ask(request, f"The PSBT of refund {refund.id}")
    if isinstance(reason, web.Response):
        return reason
    await looks.audit(request, session, reason, (refund.account_id,),
                      "staff_downloaded_refund_psbt", ("refunds", "address"))
    await request.app[MEMBERS].staff.record(session, "refund_psbt_downloaded", refund.id,
                                            ip(request))
    resp = web.Response(text=refund.quote.psbt, content_type="text/plain")
    resp.headers["Content-Disposition"] = f'attachment; filename="{refund.id}.psbt"'
    return resp


@routes.post(PREFIX + "/finance/refunds/{refund_id}/approve")
@action("finance")
async def approve(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    refund_id = request.match_info["refund_id"]
    refund = await request.app[REFUNDS].refunds.approve(refund_id, session.member.id,
                                                        text(form, "reason"))
    await request.app[MEMBERS].staff.record(
        session, "refund_approved" if refund.quote else "refund_first_approval", refund_id,
        ip(request))
    return _back(refund_id, form)


@routes.post(PREFIX + "/finance/refunds/{refund_id}/refuse")
@action("finance")
async def refuse(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    refund_id = request.match_info["refund_id"]
    await request.app[REFUNDS].refunds.refuse(refund_id, session.member.id,
                                              text(form, "reason"))
    await request.app[MEMBERS].staff.record(session, "refund_refused", refund_id, ip(request))
    return _back(refund_id, form)


@routes.post(PREFIX + "/finance/refunds/{refund_id}/tx-key")
@action("finance")
async def tx_key(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    """Monero: the operator's wallet sent it; the txid and tx key prove what it paid."""
    refund_id = request.match_info["refund_id"]
    proven = request.app[REFUNDS].proven
    if proven is None:
        raise web.HTTPNotFound(text="no coin here proves refunds by tx key")
    await proven.record_tx_key(refund_id, text(form, "txid"), text(form, "tx_key"))
    await request.app[MEMBERS].staff.record(session, "refund_tx_key_entered", refund_id,
                                            ip(request))
    return _back(refund_id, form)
