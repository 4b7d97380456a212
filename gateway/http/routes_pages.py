"""Server-rendered pages. Every link is relative, so they work under a path prefix and
from an onion host alike; nothing is loaded from another origin."""

import asyncio
import json
import time
from datetime import UTC, datetime

import aiohttp_jinja2
from aiohttp import web

from gateway.http.auth import api_key, customer, session_token
from gateway.http.checkout import page_context, status_doc
from gateway.http.client_ip import client_ip
from gateway.http.keys import SERVICES
from gateway.services.errors import NotFound

routes = web.RouteTableDef()

STREAM_LIMIT_SECONDS = 30 * 60
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15


@routes.get("/pay/{invoice_id}")
async def pay_page(request: web.Request) -> web.Response:
    view = await request.app[SERVICES].invoices.read(request.match_info["invoice_id"])
    context = page_context(view, datetime.now(UTC))
    context["static"] = "../static"
    return aiohttp_jinja2.render_template("pay.html", request, context)


async def stream_status(request: web.Request, invoice_id: str) -> web.StreamResponse:
    """Server-sent `status` events whenever what the customer sees changes, until the
    invoice is final or the stream has run for 30 minutes. Open streams are capped per
    client and in total (429 / 503 with Retry-After beyond)."""
    services = request.app[SERVICES]
    invoices = services.invoices
    await invoices.read(invoice_id)  # 404 before the stream starts
    release = (services.stream_slots.take(client_ip(request, services.trusted_proxies))
               if services.stream_slots is not None else None)
    try:
        return await _stream(request, invoice_id)
    finally:
        if release is not None:
            release()


async def _stream(request: web.Request, invoice_id: str) -> web.StreamResponse:
    invoices = request.app[SERVICES].invoices
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })
    await resp.prepare(request)
    last: dict[str, object] | None = None
    started = beat = time.monotonic()
    try:
        while time.monotonic() - started < STREAM_LIMIT_SECONDS:
            transport = request.transport
            if transport is None or transport.is_closing():
                break  # the browser went away: stop polling for it now, not at a write
            doc = status_doc(await invoices.read(invoice_id))
            if doc != last:
                await resp.write(f"event: status\ndata: {json.dumps(doc)}\n\n".encode())
                last, beat = doc, time.monotonic()
            if doc["final"]:
                break
            if time.monotonic() - beat > HEARTBEAT_SECONDS:
                await resp.write(b": keep-alive\n\n")
                beat = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away
    return resp


@routes.get("/pay/{invoice_id}/events")
async def pay_events(request: web.Request) -> web.StreamResponse:
    # Public like the page itself: the invoice id is an unguessable capability, and the
    # stream carries status and confirmations only.
    return await stream_status(request, request.match_info["invoice_id"])


@routes.get("/v1/invoices/{invoice_id}/events")
async def invoice_events(request: web.Request) -> web.StreamResponse:
    invoice_id = request.match_info["invoice_id"]
    token = session_token(request)
    if token is not None and not token.startswith("gk_"):
        account_id = await customer(request)
        view = await request.app[SERVICES].invoices.read(invoice_id)
        if view.record.invoice.account_id != account_id:
            raise NotFound("invoice")
    else:
        await api_key(request, "invoices:read")
    return await stream_status(request, invoice_id)
