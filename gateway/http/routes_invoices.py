import hashlib
import json
from typing import Any

from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.money import parse_fiat
from gateway.http.auth import api_key, customer
from gateway.http.ids import checked_id
from gateway.http.invoice_limits import created_invoice, may_create_invoice
from gateway.http.keys import ACCOUNTS, BILLING
from gateway.http.paging import page_request, page_response
from gateway.http.schemas import InvoiceBody, PlanInvoiceBody, read_json
from gateway.http.views import account_doc, invoice_json
from gateway.services.credit_spending import Bought
from gateway.services.invoices import IdempotencyRequest, InvoiceView

routes = web.RouteTableDef()


def idempotency(request: web.Request, scope: str, body: dict[str, Any]
                ) -> IdempotencyRequest | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidInput("Idempotency-Key", "must be 1-255 printable characters")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode())
    return IdempotencyRequest(scope, key, digest.hexdigest())


def created(view: InvoiceView, replayed: bool) -> web.Response:
    resp = web.json_response(invoice_json(view), status=201)
    resp.headers["Location"] = f"/v1/invoices/{view.record.invoice.id}"
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


@routes.post("/v1/invoices")
async def create_invoice(request: web.Request) -> web.Response:
    key = await api_key(request, "invoices:write")
    raw = await read_json(request)
    body = InvoiceBody.model_validate(raw)
    price = parse_fiat(body.price.amount, body.price.currency)
    view, replayed = await request.app[BILLING].invoices.create_once(
        body.account_id, price, body.coin, body.metadata, idempotency(request, key.id, raw)
    )
    return created(view, replayed)


@routes.post("/v1/me/invoices")
async def create_my_invoice(request: web.Request) -> web.Response:
    account_id = await customer(request)
    raw = await read_json(request)
    body = PlanInvoiceBody.model_validate(raw)
    await may_create_invoice(request, account_id)
    area = request.app[BILLING]
    plan = area.invoices.plan(body.plan)
    idem = idempotency(request, account_id, raw)
    if area.purchases is not None:
        result = await area.purchases.buy(account_id, plan, body.coin, idem)
        if isinstance(result, Bought):  # credit paid it all: no invoice (docs/credit.md)
            view_ = await request.app[ACCOUNTS].accounts.view(account_id)
            return web.json_response(await account_doc(request, view_))
        view, replayed = result
    else:
        currency = (await request.app[ACCOUNTS].accounts.view(account_id)).account.currency
        view, replayed = await area.invoices.create_once(
            account_id, plan.price_in(currency), body.coin, {"plan": plan.name}, idem,
            for_plan=plan)
    resp = created(view, replayed)
    if view.reused:
        resp.set_status(200)  # your open invoice for this plan and coin, not a new one
    elif not replayed:
        created_invoice(request)
    return resp


@routes.get("/v1/invoices/{invoice_id}")
async def get_invoice(request: web.Request) -> web.Response:
    await api_key(request, "invoices:read")
    view = await request.app[BILLING].invoices.read(request.match_info["invoice_id"])
    return web.json_response(invoice_json(view))


@routes.get("/v1/invoices")
async def list_invoices(request: web.Request) -> web.Response:
    await api_key(request, "invoices:read")
    cursor, limit = page_request(request, "inv_")
    views = await request.app[BILLING].invoices.list(
        account_id=checked_id(request.query.get("account_id"), "acc_", "account_id"),
        status=request.query.get("status"),
        after=cursor, limit=limit,
    )
    return page_response([invoice_json(v) for v in views], limit)
