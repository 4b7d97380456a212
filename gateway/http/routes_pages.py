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
from gateway.http.i18n import context as page_language
from gateway.http.i18n import voice
from gateway.http.keys import BILLING, PREFIX, client_address
from gateway.services.changes import Subscription, feed_key, invoice_key
from gateway.services.errors import NotFound

routes = web.RouteTableDef()

STREAM_LIMIT_SECONDS = 30 * 60
POLL_SECONDS = 0.5  # only without a change hub
GONE_CHECK_SECONDS = 5.0  # an idle stream checks its connection (no database read)
HEARTBEAT_SECONDS = 15


@routes.get("/pay/{invoice_id}")
async def pay_page(request: web.Request) -> web.Response:
    invoices = request.app[BILLING].invoices
    view = await invoices.read(request.match_info["invoice_id"])
    context = page_context(view, datetime.now(UTC), invoices.network(view.record.invoice.coin),
                           voice(request))
    context.update(page_language(request, request.app[PREFIX]))
    context["static"] = "../static"
    context["root"] = "../"
    return aiohttp_jinja2.render_template("pay.html", request, context)


async def stream_status(request: web.Request, invoice_id: str) -> web.StreamResponse:
    """Server-sent `status` events whenever what the customer sees changes, until the
    invoice is final or the stream has run for 30 minutes. Open streams are capped per
    client and in total (429 / 503 with Retry-After beyond)."""
    invoices = request.app[BILLING].invoices
    view = await invoices.read(invoice_id)  # 404 before the stream starts
    slots = request.app[BILLING].stream_slots
    release = (slots.take(client_address(request),
                          view.record.invoice.account_id)
               if slots is not None else None)
    try:
        return await _stream(request, invoice_id)
    finally:
        if release is not None:
            release()


class _Stream:
    """One open event stream: its clock, its heartbeat, its client."""

    def __init__(self, request: web.Request, resp: web.StreamResponse) -> None:
        self.request = request
        self.resp = resp
        self.started = self.beat = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.started >= STREAM_LIMIT_SECONDS

    def gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, doc: dict[str, object]) -> None:
        await self.resp.write(f"event: status\ndata: {json.dumps(doc)}\n\n".encode())
        self.beat = time.monotonic()

    async def wait_for_change(self, sub: Subscription | None) -> bool:
        """True when the invoice may have changed; False when the stream is to end."""
        if sub is None:
            await asyncio.sleep(POLL_SECONDS)
            return True
        while not await sub.wait(GONE_CHECK_SECONDS):
            # Quiet: no read. Check the browser is still there (its slot is freed within
            # seconds), and now and then send a comment so that proxies keep the stream
            # open.
            if self.gone() or sub.hub_closed or self.expired():
                return False
            if time.monotonic() - self.beat > HEARTBEAT_SECONDS:
                await self.resp.write(b": keep-alive\n\n")
                self.beat = time.monotonic()
        return not sub.hub_closed  # closed: the server is stopping


async def _stream(request: web.Request, invoice_id: str) -> web.StreamResponse:
    """Reads the invoice when told it changed (the process that changes an invoice, or
    advances its feed's tip, publishes to `changes`; on PostgreSQL other instances' changes
    arrive by NOTIFY): no timer reads the database. Without a hub, it polls."""
    area = request.app[BILLING]
    invoices = area.invoices
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })
    await resp.prepare(request)
    stream = _Stream(request, resp)
    last: dict[str, object] | None = None
    sub = None
    try:
        view = await invoices.read(invoice_id)
        network = invoices.network(view.record.invoice.coin)
        if area.changes is not None:
            # Subscribed before the first read that counts: no change slips in between.
            sub = area.changes.subscribe(
                invoice_key(invoice_id), feed_key(invoices.feed(view.record.invoice.coin)))
            view = await invoices.read(invoice_id)
        while not stream.expired():
            doc = status_doc(view, network, voice(request))
            if doc != last:
                await stream.send(doc)
                last = doc
            # A browser gone away: stop reading for it now, not at a write.
            if doc["final"] or not await stream.wait_for_change(sub) or stream.gone():
                break
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
        view = await request.app[BILLING].invoices.read(invoice_id)
        if view.record.invoice.account_id != account_id:
            raise NotFound("invoice")
    else:
        await api_key(request, "invoices:read")
    return await stream_status(request, invoice_id)
