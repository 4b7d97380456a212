from aiohttp import web

from gateway.domain.money import parse_fiat
from gateway.http.auth import api_key
from gateway.http.keys import SERVICES
from gateway.http.schemas import InvoiceBody, read_json
from gateway.http.views import account_json, invoice_json

routes = web.RouteTableDef()


@routes.post("/v1/invoices")
async def create_invoice(request: web.Request) -> web.Response:
    await api_key(request, "invoices:write")
    body = InvoiceBody.model_validate(await read_json(request))
    price = parse_fiat(body.price.amount, body.price.currency)
    view = await request.app[SERVICES].invoices.create(
        body.account_id, price, body.coin, body.metadata
    )
    resp = web.json_response(invoice_json(view), status=201)
    resp.headers["Location"] = f"/v1/invoices/{view.record.invoice.id}"
    return resp


@routes.get("/v1/invoices/{invoice_id}")
async def get_invoice(request: web.Request) -> web.Response:
    await api_key(request, "invoices:read")
    view = await request.app[SERVICES].invoices.read(request.match_info["invoice_id"])
    return web.json_response(invoice_json(view))


@routes.get("/v1/invoices")
async def list_invoices(request: web.Request) -> web.Response:
    await api_key(request, "invoices:read")
    q = request.query
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    views = await request.app[SERVICES].invoices.list(
        account_id=q.get("account_id"), status=q.get("status"), after=q.get("cursor"),
        limit=limit,
    )
    data = [invoice_json(v) for v in views]
    next_cursor = data[-1]["id"] if len(data) == limit else None
    return web.json_response({"data": data, "next_cursor": next_cursor})


@routes.get("/v1/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    await api_key(request, "accounts:read")
    view = await request.app[SERVICES].accounts.view(request.match_info["account_id"])
    return web.json_response(account_json(view))
