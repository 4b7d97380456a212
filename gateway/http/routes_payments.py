"""Finance: every recorded payment, by period and by transaction hash."""

import re
from datetime import datetime

from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.timestamps import parse_time
from gateway.http.auth import api_key
from gateway.http.keys import BILLING
from gateway.http.paging import integer
from gateway.services.errors import NotFound
from gateway.services.finance import COLUMNS, Period
from gateway.tabular import csv_text

routes = web.RouteTableDef()


# RFC 3339 date-time, as the OpenAPI document's pattern says (upper-case T and Z).
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                     r"(Z|[+-][0-9]{2}:[0-9]{2})")


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not RFC3339.fullmatch(raw):
        raise InvalidInput(name, f"{raw[:40]!r} is not an RFC 3339 time such as "
                                 "2026-01-01T00:00:00Z")
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise InvalidInput(name, str(exc)) from None


@routes.get("/v1/payments")
async def list_payments(request: web.Request) -> web.Response:
    await api_key(request, "payments:read")
    q = request.query
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", "must be json or csv")
    limit = integer(q.get("limit", "100"), "limit")
    after = None
    if "cursor" in q:
        if not re.fullmatch(r"[0-9]{1,18}", q["cursor"]):
            raise InvalidInput("cursor", "must be the next_cursor of the last page (digits)")
        after = int(q["cursor"])
    period = Period(_time(request, "from"), _time(request, "to"), q.get("coin"))
    lines = await request.app[BILLING].finance.page(period, after, limit)
    next_cursor = str(lines[-1].row.id) if lines and len(lines) == limit else None
    rows = [line.as_dict() for line in lines]
    if fmt == "csv":
        resp = web.Response(text=csv_text(COLUMNS, rows), content_type="text/csv")
        if next_cursor is not None:
            resp.headers["X-Next-Cursor"] = next_cursor
        return resp
    return web.json_response({"data": rows, "next_cursor": next_cursor})


@routes.get("/v1/payments/{txid}")
async def payment(request: web.Request) -> web.Response:
    await api_key(request, "payments:read")
    lines = await request.app[BILLING].finance.by_txid(request.match_info["txid"])
    if not lines:
        raise NotFound("payment with this transaction hash")
    return web.json_response({"data": [line.as_dict() for line in lines]})
