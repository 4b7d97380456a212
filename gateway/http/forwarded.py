"""What a trusted reverse proxy says about the original request.

Behind a TLS-terminating proxy the gateway sees plain HTTP from the proxy: `request.scheme`
is `http`, so the Origin check of the portal forms would refuse every browser and HSTS
would never be sent. From a peer inside `[server] trusted_proxies` only, the nearest
proxy's `X-Forwarded-Proto` and `X-Forwarded-Host` are believed: the handler (and the
response hooks) see a clone of the request with that scheme and host. From anyone else
both headers are ignored. The client address is `client_ip`'s business."""

import re
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.http.client_ip import Network, within
from gateway.http.problems import Handler

_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def _nearest(value: str | None) -> str | None:
    """The value the proxy next to us added: the last of a comma-separated list."""
    if not value:
        return None
    last = value.split(",")[-1].strip()
    return last or None


def forwarded_changes(request: web.BaseRequest, trusted: Sequence[Network]
                      ) -> dict[str, str]:
    if not trusted or not within(request.remote or "", trusted):
        return {}
    changes: dict[str, str] = {}
    proto = (_nearest(request.headers.get("X-Forwarded-Proto")) or "").lower()
    if proto in ("http", "https") and proto != request.scheme:
        changes["scheme"] = proto
    host = _nearest(request.headers.get("X-Forwarded-Host"))
    if host is not None and len(host) <= 255 and _HOST.match(host) and host != request.host:
        changes["host"] = host
    return changes


def forwarded_middlewares(trusted: Sequence[Network]) -> tuple[Middleware, ...]:
    """The middleware, or none at all without trusted proxies: every request would pay
    for a middleware that can only pass it on."""
    return (forwarded_middleware(trusted),) if trusted else ()


def forwarded_middleware(trusted: Sequence[Network]) -> Middleware:
    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        changes = forwarded_changes(request, trusted)
        if not changes:
            return await handler(request)
        seen = request.clone(scheme=changes.get("scheme", request.scheme),
                             host=changes.get("host", request.host))
        resp = await handler(seen)
        if not resp.prepared:
            # aiohttp would prepare it with the original request; the response hooks
            # (HSTS in security.py) must see the scheme the client used.
            await resp.prepare(seen)
        return resp

    return forwarded
