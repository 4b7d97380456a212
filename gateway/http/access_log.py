"""The access log both listeners write (portal/API and staff console): method, route
pattern, status, time. Never the client address, query strings or headers."""

import logging
import time
from collections.abc import Callable

from aiohttp import web

from gateway.http.problems import Handler

Observe = Callable[[str, str, int, float], None]


async def timed(request: web.Request, handler: Handler, log: logging.Logger,
                observe: Observe | None = None) -> web.StreamResponse:
    """Runs `handler`, then logs one line (and tells `observe`, for the metrics)."""
    started = time.monotonic()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else "-"
        elapsed = time.monotonic() - started
        log.info("%s %s %d %.1fms", request.method, pattern, status, elapsed * 1000)
        if observe is not None:
            observe(request.method, pattern, status, elapsed)
