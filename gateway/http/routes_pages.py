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
from gateway.services.changes import feed_key, invoice_key
from gateway.services.errors import NotFound

routes = web.RouteTableDef()

STREAM_LIMIT_SECONDS = 30 * 60
POLL_SECONDS = 0.5  # only without a change hub
GONE_CHECK_SECONDS = 5.0  # an idle stream checks its connection (no database read)
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
    view = await invoices.read(invoice_id)  # 404 before the stream starts
    release = (services.stream_slots.take(client_ip(request, services.trusted_proxies),
                                           view.record.invoice.account_id)
               if services.stream_slots is not None else None)
    try:
        return await _stream(request, invoice_id)
    finally:
        if release is not None:
            release()


async def _stream(request: web.Request, invoice_id: str) -> web.StreamResponse:
    """Reads the invoice when told it changed (the process that changes an invoice, or
    advances its feed's tip, publishes to `changes`; on PostgreSQL other instances' changes
    arrive by NOTIFY): no timer reads the database. Without a hub, it polls."""
    services = request.app[SERVICES]
    invoices = services.invoices
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })
    await resp.prepare(request)
    last: dict[str, object] | None = None
    started = beat = time.monotonic()
    sub = None
    try:
        view = await invoices.read(invoice_id)
        if services.changes is not None:
            # Subscribed before the first read that counts: no change slips in between.
            sub = services.changes.subscribe(
                invoice_key(invoice_id), feed_key(invoices.feed(view.record.invoice.coin)))
            view = await invoices.read(invoice_id)
        while time.monotonic() - started < STREAM_LIMIT_SECONDS:
            doc = status_doc(view)
            if doc != last:
                await resp.write(f"event: status\ndata: {json.dumps(doc)}\n\n".encode())
                last, beat = doc, time.monotonic()
            if doc["final"]:
                break
            if sub is None:
                await asyncio.sleep(POLL_SECONDS)
            else:
                while not await sub.wait(GONE_CHECK_SECONDS):
                    # Quiet: no read. Check the browser is still there (its slot is freed
                    # within seconds), and now and then send a comment so that proxies
                    # keep the stream open.
                    transport = request.transport
                    if transport is None or transport.is_closing() or sub.hub_closed:
                        return resp
                    if time.monotonic() - beat > HEARTBEAT_SECONDS:
                        await resp.write(b": keep-alive\n\n")
                        beat = time.monotonic()
                    if time.monotonic() - started >= STREAM_LIMIT_SECONDS:
                        return resp
            if sub is not None and sub.hub_closed:
                break  # the server is stopping
            transport = request.transport
            if transport is None or transport.is_closing():
                break  # the browser went away: stop reading for it now, not at a write
            view = await invoices.read(invoice_id)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away
    finally:
        if sub is not None:
            sub.close()
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
