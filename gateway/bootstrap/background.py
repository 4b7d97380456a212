"""The background jobs `gateway serve` runs, each with a name: delivery and mail workers
on every instance; the sweeper, retention, billing, account credit, backups and one
watcher per chain follower on one instance at a time."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.adapters.backup.files import Backups, prune
from gateway.adapters.db import notify
from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.adapters.db.leadership import AdvisoryLockLeadership, LocalLeadership
from gateway.bootstrap.refunds import build_proven_refunds
from gateway.bootstrap.root import Gateway
from gateway.config import Settings
from gateway.jobs import every, run_backups, run_retention, run_sweeper
from gateway.watcher import ChainWatcher


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]


def build_backups(settings: Settings) -> Backups:
    """Raises `ConfigError` when no [backup] key is configured."""
    return Backups(settings.database.url, settings.backup.key_bytes())


def _backup_job(gw: Gateway, leadership: LocalLeadership | AdvisoryLockLeadership
                ) -> Job | None:
    backup, settings, metrics = gw.settings.backup, gw.settings, gw.core.metrics
    if backup.dir is None or backup.key is None:
        return None
    folder = Path(backup.dir)
    return Job("backups", lambda: leadership.run_exclusively(
        "gateway:backup", lambda: run_backups(
            build_backups(settings), folder, timedelta(days=settings.retention.backup_days),
            backup.interval_hours * 3600, gw.clock, prune,
            lambda run: metrics.backup_run(run.written is not None, run.prune_failed))))


def _watcher_jobs(gw: Gateway, leadership: LocalLeadership | AdvisoryLockLeadership
                  ) -> list[Job]:
    def job(watcher: ChainWatcher, feed: str) -> Job:
        # Its lock is named after its feed.
        return Job(f"watcher {feed}", lambda: leadership.run_exclusively(
            f"gateway:watcher:{feed}", watcher.run))

    # One watcher per follower (per node).
    # The cipher reads approved refunds' addresses into the watched set.
    return [job(ChainWatcher(follower, gw.billing.tracker,
                             SqlWatchlist(gw.engine, follower.address_space, gw.core.cipher)),
                follower.feed)
            for follower in gw.chains.followers()]


def background_jobs(gw: Gateway) -> list[Job]:
    postgres = gw.engine.dialect.name == "postgresql"
    leadership = AdvisoryLockLeadership(gw.engine) if postgres else LocalLeadership()
    settings, billing, retention = gw.settings, gw.billing, gw.privacy.retention
    metrics = gw.core.metrics
    # Delivery workers run everywhere (they claim with SKIP LOCKED); each chain watcher
    # and the sweeper run on one instance at a time.
    jobs = [
        Job("delivery worker", gw.webhooks.worker.run),
        Job("sweeper", lambda: leadership.run_exclusively(
            "gateway:sweeper", lambda: run_sweeper(billing.tracker))),
        Job("retention", lambda: leadership.run_exclusively(
            "gateway:retention", lambda: run_retention(
                retention, settings.retention.interval_seconds, metrics.retention_run))),
        # Renewals, reminders and billing states: one instance at a time (and idempotent
        # anyway: docs/prepaid-time.md).
        Job("billing", lambda: leadership.run_exclusively(
            "gateway:billing", lambda: every(settings.billing.interval_seconds,
                                             billing.billing.run, "billing run"))),
        # Crediting payments no invoice used, spends given back, expiry: one instance at
        # a time (idempotent anyway: one entry per cause, docs/credit.md).
        Job("credit", lambda: leadership.run_exclusively(
            "gateway:credit", lambda: every(settings.credit.interval_seconds,
                                            billing.credit.run, "credit run"))),
        # Refunds proven by a tx key (Monero) are completed at the coin's depth, on the
        # credit task's schedule.
        Job("proven refunds", lambda: leadership.run_exclusively(
            "gateway:proven-refunds", lambda: every(
                settings.credit.interval_seconds, build_proven_refunds(
                    gw.core, gw.chain_area).run, "proven refunds run"))),
    ]
    if postgres:
        # Every instance hears the others' changes for its open checkout streams.
        jobs.append(Job("change listener", lambda: notify.listen(
            settings.database.url, gw.changes.publish)))
    sender = gw.mail.sender
    if sender is not None:
        jobs.append(Job("mail sender", sender.run))  # every instance: SKIP LOCKED claims
    backup = _backup_job(gw, leadership)
    if backup is not None:
        jobs.append(backup)
    return jobs + _watcher_jobs(gw, leadership)
