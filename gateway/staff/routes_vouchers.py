"""Admin: voucher batches (docs/vouchers.md). Make a batch (its codes shown once, on a
printable sheet, right after), list the batches, revoke one. Every action is in the
staff log; no code ever is."""

from typing import Any

from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.money import parse_fiat
from gateway.domain.vouchers import expiry_of
from gateway.services.ports import StaffSession
from gateway.services.vouchers import BatchSpec
from gateway.staff.context import MEMBERS, PREFIX, VOUCHERS
from gateway.staff.pages import action, ip, page, redirect, render, text

routes = web.RouteTableDef()


@routes.get(PREFIX + "/admin/vouchers")
@page("admin")
async def batches(request: web.Request, session: StaffSession) -> web.Response:
    area = request.app[VOUCHERS]
    return render(request, "vouchers.html", {
        "batches": await area.vouchers.batches(), "plans": area.plans,
        "now": area.clock(), "revoked": request.query.get("revoked")})


def _int(form: Any, name: str, default: int) -> int:
    raw = text(form, name)
    if not raw:
        return default
    # ASCII digits only: "²".isdigit() is true and int("²") raises.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise InvalidInput(name, "must be a whole number (digits 0-9)")
    return int(raw)


def _spec(form: Any, staff_id: str) -> BatchSpec:
    currency = text(form, "currency").upper() or None
    raw_value, plan = text(form, "value"), text(form, "plan") or None
    if raw_value and currency is None:
        raise InvalidInput("currency", "is required with a value (EUR, USD...)")
    value = parse_fiat(raw_value, currency, "value") if raw_value else None
    expires = expiry_of(text(form, "expires")) if text(form, "expires") else None
    return BatchSpec(_int(form, "count", 0), value, currency, plan,
                     _int(form, "periods", 1 if plan else 0), expires, text(form, "label"),
                     staff_id)


@routes.post(PREFIX + "/admin/vouchers")
@action("admin")
async def create(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    """The sheet of codes is this answer: they are shown once, never stored, never
    cached."""
    made = await request.app[VOUCHERS].vouchers.create(_spec(form, session.member.id))
    await request.app[MEMBERS].staff.record(session, "voucher_batch_created", made.batch.id,
                                            ip(request))
    resp = render(request, "voucher_sheet.html", {"b": made.batch, "codes": made.codes})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@routes.post(PREFIX + "/admin/vouchers/{batch_id}/revoke")
@action("admin")
async def revoke(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    batch = await request.app[VOUCHERS].vouchers.revoke(request.match_info["batch_id"])
    await request.app[MEMBERS].staff.record(session, "voucher_batch_revoked", batch.id,
                                            ip(request))
    return redirect(f"/admin/vouchers?revoked={batch.id}")
