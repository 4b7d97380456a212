"""Cursor pagination: `?cursor=<id of the last item seen>&limit=N`."""

from typing import Any

from aiohttp import web


def page_request(request: web.Request, default: int = 50) -> tuple[str | None, int]:
    raw = request.query.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"limit must be an integer, not {raw[:20]!r}") from None
    return request.query.get("cursor"), limit


def page_response(data: list[dict[str, Any]], limit: int) -> web.Response:
    """`next_cursor` is set when the page is full: there may be more."""
    next_cursor = data[-1]["id"] if data and len(data) == limit else None
    return web.json_response({"data": data, "next_cursor": next_cursor})
