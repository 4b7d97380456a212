"""Cursor pagination: `?cursor=<id of the last item seen>&limit=N`."""

import re
from typing import Any

from aiohttp import web

from gateway.http.ids import checked_id


def integer(raw: str, name: str) -> int:
    """A query parameter of type integer: ASCII digits with an optional minus, nothing
    else (`int()` would also take blanks, a plus sign, underscores and other scripts'
    digits, which the OpenAPI document does not allow)."""
    if not re.fullmatch(r"-?[0-9]{1,18}", raw):
        raise web.HTTPBadRequest(text=f"{name} must be an integer, not {raw[:20]!r}")
    return int(raw)


def page_request(request: web.Request, prefix: str, default: int = 50
                 ) -> tuple[str | None, int]:
    """The cursor (an id with `prefix`) and the limit of a page request."""
    limit = integer(request.query.get("limit", str(default)), "limit")
    return checked_id(request.query.get("cursor"), prefix, "cursor"), limit


def page_response(data: list[dict[str, Any]], limit: int) -> web.Response:
    """`next_cursor` is set when the page is full: there may be more."""
    next_cursor = data[-1]["id"] if data and len(data) == limit else None
    return web.json_response({"data": data, "next_cursor": next_cursor})
