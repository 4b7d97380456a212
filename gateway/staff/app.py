"""The staff console's aiohttp application; served only on `[staff] listen`."""

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.http.csrf import Csrf
from gateway.http.security import security_headers
from gateway.staff import (
    routes_admin,
    routes_auth,
    routes_cash,
    routes_finance,
    routes_refunds,
    routes_support,
    routes_vouchers,
)
from gateway.staff.context import (
    ADMIN,
    CASH,
    EDGE,
    FINANCE,
    LOOKS,
    MEMBERS,
    PREFIX,
    REFUNDS,
    RUNS,
    STAFF_CSRF,
    SUPPORT,
    VOUCHERS,
    ConsoleAreas,
    RunHolder,
)
from gateway.staff.pages import access_log, html_errors

STATIC = Path(__file__).resolve().parent / "static"


async def _stop_runs(app: web.Application) -> None:
    for task in list(app[RUNS].tasks):
        task.cancel()


def create_staff_app(areas: ConsoleAreas) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[access_log, html_errors])
    app[MEMBERS] = areas.members
    app[LOOKS] = areas.looks
    app[FINANCE] = areas.finance
    app[SUPPORT] = areas.support
    app[ADMIN] = areas.admin
    app[EDGE] = areas.edge
    if areas.refunds is not None:
        app[REFUNDS] = areas.refunds
    if areas.vouchers is not None:
        app[VOUCHERS] = areas.vouchers
    if areas.cash is not None:
        app[CASH] = areas.cash
    app[STAFF_CSRF] = Csrf(areas.edge.csrf_key + b":staff", areas.edge.trusted_proxies)
    app[RUNS] = RunHolder()
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(_stop_runs)
    aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("gateway.staff", "templates"),
        autoescape=jinja2.select_autoescape(default=True))
    for module in (routes_auth, routes_support, routes_finance, routes_admin):
        app.router.add_routes(module.routes)
    if areas.refunds is not None:
        app.router.add_routes(routes_refunds.routes)
    if areas.vouchers is not None:
        app.router.add_routes(routes_vouchers.routes)
    if areas.cash is not None:
        app.router.add_routes(routes_cash.routes)
    app.router.add_static(PREFIX + "/static", STATIC, append_version=False)
    return app
