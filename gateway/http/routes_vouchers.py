"""Vouchers, the customer's side of the API (docs/vouchers.md): redeem a code."""

from typing import Any

from aiohttp import web

from gateway.domain.credit import signed_fiat
from gateway.domain.timestamps import rfc3339
from gateway.http.auth import customer
from gateway.http.keys import BILLING, client_address
from gateway.http.schemas import VoucherBody, read_json
from gateway.services.vouchers import Redemption, VoucherService

routes = web.RouteTableDef()


def vouchers(request: web.Request) -> VoucherService:
    service = request.app[BILLING].vouchers
    assert service is not None, "the application was built without vouchers"
    return service


def redemption_json(r: Redemption) -> dict[str, Any]:
    """What was credited and bought; never the code."""
    a, e = r.account, r.entry
    return {
        "kind": e.kind.value, "amount": signed_fiat(e.amount, e.currency),
        "amount_minor": e.amount, "currency": e.currency,
        "credit": {"balance": signed_fiat(r.balance, e.currency), "balance_minor": r.balance,
                   "currency": e.currency},
        "plan": r.batch.plan, "periods_bought": r.periods_bought,
        "paid_until": rfc3339(a.paid_until) if a.paid_until else None,
        "billing_state": a.billing_state.value if a.billing_state else None}


@routes.post("/v1/me/vouchers")
async def redeem_voucher(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = VoucherBody.model_validate(await read_json(request))
    redeemed = await vouchers(request).redeem(account_id, body.code,
                                              client_address(request))
    return web.json_response(redemption_json(redeemed))
