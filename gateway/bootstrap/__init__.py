"""Composition root: the only package that builds concrete adapters.

`build(settings)` wires one area at a time, each builder taking what it needs and
returning what it provides (a small frozen dataclass):

    core        settings, clock, keys, database, units of work, metrics registry
    credentials password hashing, TOTP codes, the failure-throttle policy
    mail        direct SMTP, the durable queue and its sender
    chains      followers (by family, or injected), the chain directory, the wallet
    accounts    accounts, second factor, recovery, email changes, API keys
    billing     invoices and billing: rates, invoices, prepaid time, tracker, finance
    webhooks    the delivery worker, endpoints, events
    privacy     privacy, retention, the legal register, policy notices
    staff       the console's accounts
    ops         readiness and metrics

`build_app(gw)` hands the HTTP layer one object per area (`gateway.http.keys`), and the
staff console its own (`gateway.staff.context`, `console_areas`), and gives
every resource, listener and background job its own cleanup context.
"""

from gateway.adapters.backup.files import BackupError, backup_times, prune
from gateway.adapters.backup.stream import BackupFormatError
from gateway.bootstrap.app import (
    BACKGROUND_STOP_SECONDS,
    SEVERAL_INSTANCES,
    ListenError,
    build_app,
    console_areas,
    http_areas,
    listen_error,
    start_ops_listener,
    start_staff_listener,
)
from gateway.bootstrap.background import Job, background_jobs, build_backups
from gateway.bootstrap.billing import build_rates
from gateway.bootstrap.chains import STARTUP_CHECK_SECONDS, build_chains, startup_problems
from gateway.bootstrap.core import Clock, Keys, Overrides, utcnow
from gateway.bootstrap.ops import SchemaNotReady
from gateway.bootstrap.root import Gateway, Services, build

# For the backup commands (entry points reach adapters through here): what a backup run
# can fail with, and the pruning of old backups.
prune_backups = prune

__all__ = ["BACKGROUND_STOP_SECONDS", "SEVERAL_INSTANCES", "STARTUP_CHECK_SECONDS",
           "BackupError", "BackupFormatError", "Clock", "Gateway", "Job", "Keys",
           "ListenError", "Overrides", "SchemaNotReady", "Services", "background_jobs",
           "backup_times", "build", "build_app", "build_backups", "build_chains",
           "build_rates", "console_areas", "http_areas", "listen_error", "prune_backups",
           "start_ops_listener", "start_staff_listener", "startup_problems", "utcnow"]
