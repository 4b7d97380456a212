"""The aiohttp application `gateway serve` runs: each area handed to the HTTP layer under
its own key, and one cleanup context per resource, listener and background job (started
in that order, stopped in the reverse: jobs first, resources last)."""

import asyncio
import errno
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway.adapters.backup.files import backup_times
from gateway.bootstrap.background import Job, background_jobs
from gateway.bootstrap.refunds import build_proven_refunds
from gateway.bootstrap.resources import Resource
from gateway.bootstrap.root import Gateway
from gateway.http import keys as http
from gateway.http.app import create_app, create_ops_app
from gateway.http.ratelimit import SlidingWindow
from gateway.http.streams import StreamSlots
from gateway.http.vocabulary import vocabulary
from gateway.promise_checks import promise_checks
from gateway.staff import context as staff
from gateway.staff.app import create_staff_app

log = logging.getLogger("gateway.bootstrap")
BACKGROUND_STOP_SECONDS = 10.0  # what a cancelled background job gets to end
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


class ListenError(Exception):
    """A listener could not be opened; one line naming the setting."""


# Said after a listener's "address already in use": the likely cause, and the way out.
SEVERAL_INSTANCES = ("is another gateway running on this host? Each instance needs its "
                     "own [server] port, [server] metrics_listen and [staff] listen "
                     "(OPERATIONS.md, \"Several instances on one host\")")


def listen_error(key: str, value: object, exc: OSError) -> ListenError:
    # The system's own words for the error (asyncio and socket.create_server each wrap
    # them in a sentence of their own).
    said = f"{key} {value}: {os.strerror(exc.errno).lower() if exc.errno else exc}"
    if exc.errno == errno.EADDRINUSE:
        said += f"; {SEVERAL_INSTANCES}"
    return ListenError(said)


def http_areas(gw: Gateway) -> http.Areas:
    """What the HTTP handlers may use, area by area; no adapter among it."""
    settings, sec, server = gw.settings, gw.settings.security, gw.settings.server
    a, b = gw.accounts, gw.billing
    monitoring = gw.ops.monitoring
    return http.Areas(
        accounts=http.AccountsArea(
            accounts=a.accounts, two_factor=a.two_factor, recovery=a.recovery,
            api_keys=a.api_keys, email_changes=a.email_changes,
            login_limit=SlidingWindow(sec.login_per_ip_per_minute, 60),
            signup_limit=SlidingWindow(sec.signup_per_ip_per_hour, 3600),
            datacenters=tuple(settings.accounts.datacenters),
            currencies=tuple(settings.accounts.currencies)),
        billing=http.BillingArea(
            invoices=b.invoices, finance=b.finance, billing=b.billing,
            invoice_limit=SlidingWindow(sec.portal_invoices_per_ip_per_hour, 3600),
            stream_slots=StreamSlots(server.event_streams_per_client,
                                     server.event_streams_total,
                                     server.event_streams_per_account),
            changes=gw.changes, credit=b.credit, purchases=b.purchases,
            refunds=gw.refunds, vouchers=b.vouchers, cash=gw.cash),
        webhooks=http.WebhooksArea(endpoints=gw.webhooks.endpoints,
                                   events=gw.webhooks.events),
        privacy=http.PrivacyArea(privacy=gw.privacy.privacy),
        ops=http.OpsArea(readiness=gw.ops.readiness.readiness, metrics=monitoring.render,
                         observe=monitoring.observe_http, vocabulary=vocabulary(settings)),
        edge=http.EdgeArea(
            trusted_proxies=tuple(ipaddress.ip_network(c, strict=False)
                                  for c in server.trusted_proxies),
            csrf_key=gw.keys.session, catalogs=gw.catalogs))


def resource_context(resource: Resource) -> CleanupContext:
    async def context(_app: web.Application) -> AsyncIterator[None]:
        yield
        await resource.aclose()

    return context


def job_context(job: Job) -> CleanupContext:
    """The job runs from start-up to shutdown; then it is cancelled and awaited, bounded:
    a job that ignores its cancellation must not keep the process from stopping
    (systemd would SIGKILL it mid-cleanup); it is named instead."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(job.run(), name=job.name)
        yield
        task.cancel()
        _, pending = await asyncio.wait([task], timeout=BACKGROUND_STOP_SECONDS)
        if pending:
            log.warning("stopping: background job %s did not end within %.0f s",
                        job.name, BACKGROUND_STOP_SECONDS)

    return context


def listener_context(start: Callable[[], Awaitable[web.AppRunner | None]]
                     ) -> CleanupContext:
    async def context(_app: web.Application) -> AsyncIterator[None]:
        runner = await start()
        yield
        if runner is not None:
            await runner.cleanup()

    return context


def build_app(gw: Gateway) -> web.Application:
    areas = http_areas(gw)
    app = create_app(areas, gw.settings.server.path_prefix)
    contexts = [resource_context(r) for r in gw.resources]
    contexts.append(listener_context(lambda: start_ops_listener(gw, areas.ops)))
    contexts.append(listener_context(lambda: start_staff_listener(gw, areas.edge)))
    contexts.extend(job_context(job) for job in background_jobs(gw))
    app.cleanup_ctx.extend(contexts)
    return app


async def _serve(runner: web.AppRunner, host: str, port: int, key: str, value: object,
                 ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    except OSError as exc:
        await runner.cleanup()
        raise listen_error(key, value, exc) from None
    return runner


async def start_ops_listener(gw: Gateway, ops: http.OpsArea) -> web.AppRunner | None:
    """/metrics and /readyz on their own listener ([server] metrics_listen), if any."""
    address = gw.settings.server.metrics_address()
    if address is None:
        return None
    runner = web.AppRunner(create_ops_app(ops), access_log=None)
    return await _serve(runner, *address, "[server] metrics_listen",
                        gw.settings.server.metrics_listen)


def console_areas(gw: Gateway, edge: http.EdgeArea) -> staff.ConsoleAreas:
    """What the console's pages may use, area by area (as `http_areas` for the API),
    taken from the areas `build` wired; no adapter among it (the promise checks read
    the backup files through the closure here)."""
    readiness, retention = gw.ops.readiness, gw.privacy.retention
    return staff.ConsoleAreas(
        members=staff.MembersArea(staff=gw.staff.staff),
        looks=staff.LooksArea(privacy=gw.privacy.privacy),
        finance=staff.FinanceArea(finance=gw.billing.finance, reconcile=gw.billing.reconcile,
                                  coins=gw.chain_area.directory.coins()),
        support=staff.SupportArea(accounts=gw.accounts.accounts,
                                  invoices=gw.billing.invoices, events=gw.webhooks.events),
        admin=staff.AdminArea(
            endpoints=gw.webhooks.endpoints, api_keys=gw.accounts.api_keys,
            chain_status=lambda: readiness.chain_status(2), outbox=readiness.outbox,
            promises=lambda: promise_checks(gw.settings, retention, gw.clock(),
                                            backup_times)),
        refunds=staff.RefundsArea(
            refunds=gw.refunds, proven=build_proven_refunds(gw.core, gw.chain_area)),
        vouchers=staff.VouchersArea(
            vouchers=gw.billing.vouchers, clock=gw.clock,
            plans=tuple(sorted(gw.billing.billing.prepaid.periods))),
        cash=staff.CashArea(
            cash=gw.cash, currencies=tuple(gw.settings.accounts.currencies),
            refusals=SlidingWindow(gw.settings.cash.refused_lookups_per_hour, 3600)),
        edge=staff.ConsoleEdge(
            trusted_proxies=edge.trusted_proxies,
            login_limit=SlidingWindow(gw.settings.security.login_per_ip_per_minute, 60),
            csrf_key=gw.keys.session))


def _staff_tls(gw: Gateway) -> ssl.SSLContext | None:
    cfg = gw.settings.staff
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ssl_context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        ssl_context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ListenError(f"[staff] tls_cert/tls_key: {exc}") from None
    return ssl_context


async def start_staff_listener(gw: Gateway, edge: http.EdgeArea) -> web.AppRunner | None:
    """The staff console on its own listener ([staff] listen), if any; never on the
    public one."""
    address = gw.settings.staff.address()
    if address is None:
        return None
    ssl_context = _staff_tls(gw)
    runner = web.AppRunner(create_staff_app(console_areas(gw, edge)), access_log=None)
    return await _serve(runner, *address, "[staff] listen", gw.settings.staff.listen,
                        ssl_context)

