"""Deleting what the privacy policy says we no longer keep, and carrying out deletions
whose grace period has passed."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from gateway.services.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True)
class RetentionPeriods:
    security_log: timedelta = timedelta(days=30)
    idempotency_keys: timedelta = timedelta(hours=24)
    delivery_logs: timedelta = timedelta(days=30)
    mail_queue: timedelta = timedelta(hours=24)
    audit_log_after_deletion: timedelta = timedelta(days=365)
    login_throttle: timedelta = timedelta(hours=24)
    disabled_endpoint_events: timedelta = timedelta(days=30)


class RetentionService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, periods: RetentionPeriods,
                 flush: Callable[[], Awaitable[None]] | None = None) -> None:
        """`flush` makes erased data leave the disk now, where the store keeps old copies
        (SQLite's write-ahead log)."""
        self._flush = flush
        self._uow = uow
        self._clock = clock
        self._periods = periods

    async def run(self, dry_run: bool = False) -> dict[str, int]:
        """Rows strictly older than their period: removed, or (dry run) only counted."""
        now = self._clock()
        p = self._periods
        async with self._uow() as uow:
            counts = {
                "security_log": await uow.security_log.purge(now - p.security_log, dry_run),
                "sessions": await uow.retention.sessions(now, dry_run),
                "idempotency_keys": await uow.retention.idempotency_keys(
                    now - p.idempotency_keys, dry_run),
                "delivery_logs": await uow.retention.delivery_logs(now - p.delivery_logs,
                                                                   dry_run),
                "mail_queue": await uow.retention.mail_queue(now - p.mail_queue, dry_run),
                "audit_log": await uow.retention.audit_log(
                    now - p.audit_log_after_deletion, dry_run),
                "login_throttle": await uow.retention.login_throttle(
                    now - p.login_throttle, now, dry_run),
                "disabled_endpoint_events": await uow.retention.disabled_endpoint_events(
                    now - p.disabled_endpoint_events, dry_run),
            }
            due = await uow.accounts.due_for_deletion(now)
            if not dry_run:
                await uow.commit()
        counts["account_deletions"] = len(due)
        if not dry_run:
            counts["account_deletions"] = sum([await self.erase(a) for a in due])
            if counts["account_deletions"] and self._flush is not None:
                await self._flush()
        return counts

    async def erase(self, account_id: str) -> bool:
        """One account per transaction, so one failure does not hold back the others."""
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted or account.deletion_due_at is None \
                    or account.deletion_due_at > now:
                return False  # cancelled or done since the list was read
            account.erase(now)
            await uow.accounts.erase_personal_data(account_id)
            await uow.accounts.save(account)
            await uow.commit()
        return True
