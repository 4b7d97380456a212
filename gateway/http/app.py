"""The aiohttp application factory. Builds no adapters: it is handed one object per
area, each under its own typed key (`gateway.http.keys`)."""

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.http import (
    protocol_errors,
    routes_accounts,
    routes_email_change,
    routes_invoices,
    routes_language,
    routes_ops,
    routes_pages,
    routes_payments,
    routes_portal,
    routes_portal_billing,
    routes_portal_cash,
    routes_portal_privacy,
    routes_portal_recovery,
    routes_portal_refunds,
    routes_portal_vouchers,
    routes_privacy,
    routes_refunds,
    routes_vouchers,
    routes_webhooks,
)
from gateway.http.access_log import timed
from gateway.http.background import JOBS, BackgroundJobs, close_jobs
from gateway.http.csrf import Csrf
from gateway.http.forwarded import forwarded_middlewares
from gateway.http.i18n import CATALOGS, language_middleware
from gateway.http.i18n import install as install_i18n
from gateway.http.keys import (
    ACCOUNTS,
    BILLING,
    CSRF,
    EDGE,
    OPS,
    PREFIX,
    PRIVACY,
    WEBHOOKS,
    Areas,
    OpsArea,
)
from gateway.http.problems import Handler, problem_middleware
from gateway.http.security import security_headers

MAX_BODY = 1024 * 1024
STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("gateway.http")


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our own access log (`access_log.timed`); the client IP only ever goes to the
    security log."""
    return await timed(request, handler, log, request.app[OPS].observe)


async def end_streams(app: web.Application) -> None:
    """Open checkout streams end when the server stops (`ChangeHub.close`)."""
    changes = app[BILLING].changes
    if changes is not None:
        changes.close()


def create_ops_app(ops: OpsArea) -> web.Application:
    """The operations listener: /healthz, /readyz and /metrics, for monitoring only."""
    protocol_errors.install()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware])
    app[OPS] = ops
    app.on_response_prepare.append(security_headers)
    app.router.add_routes(routes_ops.ops_routes)
    return app


def create_app(areas: Areas, path_prefix: str = "") -> web.Application:
    protocol_errors.install()
    # Outermost: everything after it sees the scheme and host a trusted proxy reports.
    edge = areas.edge
    forwarded = forwarded_middlewares(edge.trusted_proxies)
    app = web.Application(
        client_max_size=MAX_BODY,
        # The language before the problems: an error's title and detail are translated.
        middlewares=[*forwarded, request_log, language_middleware, problem_middleware],
    )
    app[ACCOUNTS] = areas.accounts
    app[BILLING] = areas.billing
    app[WEBHOOKS] = areas.webhooks
    app[PRIVACY] = areas.privacy
    app[OPS] = areas.ops
    app[EDGE] = edge
    app[CSRF] = Csrf(edge.csrf_key, edge.trusted_proxies)
    app[PREFIX] = path_prefix
    app[CATALOGS] = edge.catalogs
    app[JOBS] = BackgroundJobs()
    app.on_shutdown.append(close_jobs)  # before cleanup closes the database
    app.on_shutdown.append(end_streams)  # before the server waits for open requests
    app.on_response_prepare.append(security_headers)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.http", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    install_i18n(env)
    for module in (routes_accounts, routes_email_change, routes_invoices, routes_webhooks,
                   routes_ops, routes_pages, routes_portal, routes_portal_billing,
                   routes_portal_privacy, routes_portal_recovery, routes_privacy,
                   routes_payments, routes_refunds, routes_portal_refunds, routes_vouchers,
                   routes_portal_vouchers, routes_portal_cash, routes_language):
        app.router.add_routes(module.routes)
    app.router.add_static("/static", STATIC, append_version=False)
    if not path_prefix:
        return app
    # Served below a prefix (a reverse proxy that does not strip it): pages link
    # relatively, so they need no knowledge of it.
    root = web.Application(client_max_size=MAX_BODY,
                           middlewares=[*forwarded, problem_middleware])
    root.on_response_prepare.append(security_headers)
    root.add_subapp(path_prefix, app)
    return root
