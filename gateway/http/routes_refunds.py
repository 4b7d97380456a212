"""Refunds, the customer's side of the API (docs/refunds.md): ask, list, cancel; and a
cash-by-mail token (docs/cash.md), the other way credit comes in from outside a chain."""

from datetime import datetime

from aiohttp import web

from gateway.domain.refunds import Refund
from gateway.domain.timestamps import rfc3339
from gateway.http.auth import customer
from gateway.http.ids import checked_id
from gateway.http.keys import BILLING
from gateway.http.schemas import RefundBody, read_json
from gateway.services.errors import Conflict
from gateway.services.refunds import RefundAsk, RefundService

routes = web.RouteTableDef()


def refunds(request: web.Request) -> RefundService:
    service = request.app[BILLING].refunds
    assert service is not None, "the application was built without refunds"
    return service


def _time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def refund_json(r: Refund) -> dict[str, object]:
    return {
        "id": r.id, "status": r.status.value, "amount": r.amount_text,
        "currency": r.currency, "coin": r.coin, "address": r.address,
        "approvals_needed": r.approvals_needed,
        "approvals": [{"at": rfc3339(a.at)} for a in r.approvals],
        "amount_base_units": str(r.quote.crypto_amount) if r.quote else None,
        "refusal_reason": r.refused_reason, "txid": r.txid,
        "requested_at": rfc3339(r.requested_at), "decided_at": _time(r.decided_at),
        "completed_at": _time(r.completed_at)}


@routes.post("/v1/me/refunds")
async def request_refund(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = RefundBody.model_validate(await read_json(request))
    refund = await refunds(request).request(account_id, RefundAsk(
        body.amount, body.coin, body.address, body.currency, body.current_password,
        body.totp_code))
    return web.json_response(refund_json(refund), status=201)


@routes.get("/v1/me/refunds")
async def list_refunds(request: web.Request) -> web.Response:
    account_id = await customer(request)
    found = await refunds(request).mine(account_id)
    return web.json_response({"data": [refund_json(r) for r in found]})


@routes.post("/v1/me/cash-tokens")
async def new_cash_token(request: web.Request) -> web.Response:
    """Cash by mail (docs/cash.md): a new one-time token, shown in this answer only."""
    account_id = await customer(request)
    service = request.app[BILLING].cash
    if service is None or service.instructions is None:
        raise Conflict("cash by mail is not offered here")
    issued = await service.new_token(account_id)
    where = service.instructions
    return web.json_response({
        "id": issued.record.id, "token": issued.token,
        "created_at": rfc3339(issued.record.created_at),
        "expires_at": rfc3339(issued.record.expires_at), "replaced": issued.replaced,
        "postal_address": where.postal_address, "instructions": where.instructions},
        status=201, headers={"Cache-Control": "no-store"})


@routes.post("/v1/me/refunds/{refund_id}/cancel")
async def cancel_refund(request: web.Request) -> web.Response:
    account_id = await customer(request)
    refund_id = checked_id(request.match_info["refund_id"], "rfd_", "refund_id")
    assert refund_id is not None
    refund = await refunds(request).cancel(account_id, refund_id)
    return web.json_response(refund_json(refund))
