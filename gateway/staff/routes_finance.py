"""Finance: the payments ledger by period and coin, its CSV (which names accounts, so it
needs a reason: gateway/staff/looks.py), a chart, reconciliation."""

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.timestamps import parse_time
from gateway.services.finance import (
    COLUMNS,
    CREDIT_COLUMNS,
    VOUCHER_COLUMNS,
    PaymentLine,
    Period,
)
from gateway.services.ports import StaffSession
from gateway.staff import looks
from gateway.staff.chart import payments_chart
from gateway.staff.context import FINANCE, MEMBERS, PREFIX, RUNS, ReconcileRun
from gateway.staff.pages import action, ip, page, redirect, render, text
from gateway.tabular import csv_text

routes = web.RouteTableDef()
MAX_LINES = 5000  # the page shows at most this many; narrow the period for more


def _time(raw: str, name: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        return parse_time(raw.strip())
    except ValueError as exc:
        raise InvalidInput(name, str(exc)) from None


def _period(query: Any) -> Period:
    coin = str(query.get("coin", "")).strip() or None
    return Period(_time(str(query.get("from", "")), "from"),
                  _time(str(query.get("to", "")), "to"), coin)


async def _lines(request: web.Request, period: Period) -> list[PaymentLine]:
    lines = []
    async for line in request.app[FINANCE].finance.stream(period):
        lines.append(line)
        if len(lines) >= MAX_LINES:
            break
    return lines


@routes.get(PREFIX + "/finance")
@page("finance")
async def ledger(request: web.Request, session: StaffSession) -> web.Response:
    q = request.query
    period = _period(q)
    lines = await _lines(request, period)
    rows = [line.as_dict() for line in lines]
    # Totals per day and coin (by the time the payment was seen), in coin and in fiat.
    totals: dict[tuple[date, str, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0)])
    counts: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line, row in zip(lines, rows, strict=True):
        day = line.row.seen_at.date()
        t = totals[(day, line.row.coin, str(row["fiat_currency"]))]
        t[0] += 1
        t[1] += Decimal(str(row["amount"]))
        t[2] += Decimal(str(row["fiat_value"]))
        counts[day][line.row.coin] += 1
    coins = sorted({line.row.coin for line in lines})
    query = {k: q[k] for k in ("from", "to", "coin") if q.get(k)}
    await request.app[MEMBERS].staff.record(session, "ledger_viewed", None, ip(request))
    return render(request, "finance.html", {
        "rows": rows, "columns": COLUMNS, "capped": len(lines) >= MAX_LINES,
        "totals": [{"day": d, "coin": c, "currency": cur, "count": int(v[0]),
                    "amount": v[1], "fiat": v[2]} for (d, c, cur), v in sorted(totals.items())],
        "chart": payments_chart(counts, coins), "coins": request.app[FINANCE].coins,
        "q": {"from": q.get("from", ""), "to": q.get("to", ""), "coin": q.get("coin", "")},
        "csv_query": query, "credit_columns": CREDIT_COLUMNS,
        "credit": (await request.app[FINANCE].finance.credit(period))[:MAX_LINES],
        "voucher_columns": VOUCHER_COLUMNS,
        "vouchers": await request.app[FINANCE].finance.vouchers(period, datetime.now(UTC))})


@routes.get(PREFIX + "/finance/payments.csv")
@page("finance")
async def ledger_csv(request: web.Request, session: StaffSession) -> web.Response:
    period = _period(request.query)
    # The CSV names the account of every payment (the page does not): a look at those
    # customers' data, with a reason, in each one's access audit.
    reason = looks.ask(request, "Payments as CSV", {
        k: request.query[k] for k in ("from", "to", "coin") if request.query.get(k)})
    if isinstance(reason, web.Response):
        return reason
    lines = await _lines(request, period)
    await looks.audit(request, session, reason, (line.row.account_id for line in lines),
                      "staff_exported_payments", ("payments", "account_id"))
    await request.app[MEMBERS].staff.record(session, "payments_exported", None, ip(request))
    resp = web.Response(text=csv_text(COLUMNS, [line.as_dict() for line in lines]),
                        content_type="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="payments.csv"'
    return resp


@routes.get(PREFIX + "/finance/reconcile")
@page("finance")
async def reconcile_page(request: web.Request, session: StaffSession) -> web.Response:
    run = request.app[RUNS].run
    now = datetime.now(UTC)
    return render(request, "reconcile.html", {
        "run": run, "coins": request.app[FINANCE].coins,
        "running": run is not None and run.report is None and run.error is None,
        "default_from": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "default_to": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})


@routes.post(PREFIX + "/finance/reconcile")
@action("finance")
async def reconcile_start(request: web.Request, session: StaffSession,
                          form: Any) -> web.Response:
    holder = request.app[RUNS]
    if holder.run is not None and holder.run.report is None and holder.run.error is None:
        return redirect("/finance/reconcile")  # one at a time
    start, end = _time(text(form, "from"), "from"), _time(text(form, "to"), "to")
    if start is None or end is None:
        raise InvalidInput("from", "both from and to are needed")
    coin = text(form, "coin") or None
    run = ReconcileRun(session.member.name, f"{text(form, 'from')} to {text(form, 'to')} "
                                            f"{coin or 'every coin'}")
    holder.run = run

    async def work() -> None:
        try:
            run.report = await request.app[FINANCE].reconcile.run(start, end, coin, run)
        except Exception as exc:  # shown on the page; the console keeps running
            run.error = str(exc) or type(exc).__name__

    task = asyncio.create_task(work())
    holder.tasks.add(task)
    task.add_done_callback(holder.tasks.discard)
    await request.app[MEMBERS].staff.record(session, "reconcile_started", coin, ip(request))
    return redirect("/finance/reconcile")
