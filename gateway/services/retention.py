"""Deleting what the privacy policy says we no longer keep, and carrying out deletions
whose grace period has passed."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.services.ports import Clock, DeletionLedger, UnitOfWorkFactory
from gateway.services.recovery import Mailer

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """For the log: the kind of failure and, for a file, which one. Never the message of
    a database error, which may quote the row's values."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror or exc}{where}"
    return type(exc).__name__


INACTIVITY_SUBJECT = "Your account will be deleted in {days} days"
INACTIVITY_BODY = """Hello,

Your account has had no paid invoice and no login for {inactive} days. We keep data
only while an account is in use, so it will be deleted, with everything we hold about
you, on or after {due}.

To keep it, log in before then: {login_url}

Nothing else is needed, and if you do not want the account any more you need do nothing.
"""

LAPSED_BODY = """Hello,

The paid time of your account has ended, and it has had no payment, no login and no
session for {inactive} days. We keep data only while an account is in use, so it will be
deleted, with everything we hold about you, on or after {due}. Your invoices and
payments stay as the billing records the law requires us to keep, without your email or
anything else that identifies you.

To keep it, log in before then: {login_url}

Nothing else is needed, and if you do not want the account any more you need do nothing.
"""


@dataclass(frozen=True)
class RetentionPeriods:
    security_log: timedelta = timedelta(days=30)
    idempotency_keys: timedelta = timedelta(hours=24)
    delivery_logs: timedelta = timedelta(days=30)
    mail_queue: timedelta = timedelta(hours=24)
    audit_log_after_deletion: timedelta = timedelta(days=365)
    login_throttle: timedelta = timedelta(hours=24)
    disabled_endpoint_events: timedelta = timedelta(days=30)
    # Accounts that never paid: deleted after this long without a login, with a notice
    # mailed `inactivity_notice` before.
    inactive_unpaid: timedelta = timedelta(days=180)
    inactivity_notice: timedelta = timedelta(days=7)
    # Accounts that paid once and lapsed: the same notice and deletion after this long
    # with no paid time, payment, login or session.
    inactive_lapsed: timedelta = timedelta(days=365)
    # Registers: closed legal requests, and deletion-ledger entries (which must outlive
    # every backup that could restore the account: gateway.config checks it).
    legal_requests: timedelta = timedelta(days=1095)
    deletion_ledger: timedelta = timedelta(days=60)


class RetentionService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, periods: RetentionPeriods,
                 flush: Callable[[], Awaitable[bool | None]] | None = None,
                 mailer: Mailer | None = None, login_url: str = "",
                 ledger: DeletionLedger | None = None) -> None:
        """`flush` makes erased data leave the disk now, where the store keeps old copies
        (SQLite's write-ahead log, PostgreSQL's dead tuples). `mailer` (the durable mail
        queue) carries inactivity notices; without one, no inactive account is deleted,
        as none can be warned."""
        self._flush = flush
        self._flush_owed = False  # a flush failed (e.g. a lock timeout): retried next run
        self._ledger = ledger
        self._mailer = mailer
        self._login_url = login_url
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
            if not dry_run:
                # Rows from before 0012a: nothing stays in clear after the first run.
                await uow.security_log.encrypt_legacy()
                await uow.audit.encrypt_legacy()
            due = await uow.accounts.due_for_deletion(now)
            if not dry_run:
                await uow.commit()
        counts["account_deletions"] = len(due)
        reapplied, reapply_failed = (0, 0) if dry_run else await self._reapply_guarded()
        counts["ledger_reapplied"] = reapplied
        warned, inactive, notice_failed = await self._inactivity(now, dry_run)
        counts["inactivity_notices"] = warned
        counts["inactive_deletions"] = len(inactive)
        counts["erasure_failures"] = reapply_failed + notice_failed
        if not dry_run:
            erased, failed = await self._each(due, self.erase)
            counts["account_deletions"] = erased
            counts["erasure_failures"] += failed
            erased, failed = await self._each(inactive, self._delete_inactive)
            counts["inactive_deletions"] = erased
            counts["erasure_failures"] += failed
            if counts["account_deletions"] or counts["inactive_deletions"] \
                    or counts["ledger_reapplied"]:
                self._flush_owed = True
            await self._flush_now()
        legal, ledger, prune_failed = await self._prune_registers(now, dry_run)
        counts["legal_requests"] = legal
        counts["deletion_ledger"] = ledger
        counts["prune_failures"] = prune_failed
        return counts

    async def _prune_registers(self, now: datetime, dry_run: bool) -> tuple[int, int, int]:
        """(closed legal requests, deletion-ledger entries, failures): each register on
        its own, so one that cannot be pruned neither stops the other nor the run; it is
        logged, counted and tried again at the next run."""
        p = self._periods
        legal = ledger = failed = 0
        try:
            async with self._uow() as uow:
                legal = await uow.legal.prune(now - p.legal_requests, dry_run)
                if not dry_run:
                    await uow.commit()
        except Exception as exc:
            failed += 1
            log.error("pruning the legal-request register failed (%s); retried at the "
                      "next run", describe(exc))
        if self._ledger is not None:
            try:
                ledger = self._ledger.prune(now - p.deletion_ledger, dry_run)
            except Exception as exc:
                failed += 1
                log.error("pruning the deletion ledger failed (%s); retried at the next "
                          "run", describe(exc))
        return legal, ledger, failed

    async def _each(self, account_ids: list[str],
                    erase: Callable[[str], Awaitable[bool]]) -> tuple[int, int]:
        """(erased, failed): account by account, so a failure (the ledger cannot be
        written, a lock timeout) holds back no other account; the failed one is still due
        and the next run tries it again."""
        erased = failed = 0
        for account_id in account_ids:
            try:
                erased += await erase(account_id)
            except Exception as exc:
                failed += 1
                log.error("erasing %s failed (%s); it is retried at the next run",
                          account_id, describe(exc))
        return erased, failed

    async def _reapply_guarded(self) -> tuple[int, int]:
        """(re-applied, failed; 1 when the ledger cannot be read): an unreadable ledger
        does not stop the erasures that are due."""
        try:
            return await self._reapply()
        except Exception as exc:
            log.error("re-applying the deletion ledger failed (%s); retried at the next "
                      "run", describe(exc))
            return 0, 1

    async def overdue_erasures(self, before: datetime) -> list[str]:
        """Accounts whose erasure was due before `before` and still are not erased."""
        async with self._uow() as uow:
            return await uow.accounts.due_for_deletion(before)

    async def _flush_now(self) -> None:
        if not self._flush_owed or self._flush is None:
            return
        try:
            done = await self._flush()
        except Exception as exc:  # the next run tries again
            log.warning("erased data not yet cleared from the database files (%s); "
                        "retrying at the next run", type(exc).__name__)
            return
        if done is False:
            log.warning("erased data not yet cleared from the database files (an older "
                        "transaction is open); retrying at the next run")
            return
        self._flush_owed = False

    async def _inactivity(self, now: datetime,
                          dry_run: bool) -> tuple[int, list[str], int]:
        """(warned, due for deletion, failed notices). Idle accounts, those that never
        paid and those whose paid time lapsed, each after their own period: warned once,
        then (still idle a notice period after the warning) returned for deletion. A
        notice that cannot be queued holds back no other and is tried at the next run."""
        if self._mailer is None:
            return 0, [], 0
        p = self._periods
        unpaid_cut = now - (p.inactive_unpaid - p.inactivity_notice)
        lapsed_cut = now - (p.inactive_lapsed - p.inactivity_notice)
        warned_before = now - p.inactivity_notice
        async with self._uow() as uow:
            to_warn = [(a, p.inactive_unpaid, INACTIVITY_BODY)
                       for a in await uow.accounts.to_warn_of_inactivity(unpaid_cut)]
            to_warn += [(a, p.inactive_lapsed, LAPSED_BODY)
                        for a in await uow.accounts.lapsed_to_warn(lapsed_cut)]
            inactive = await uow.accounts.inactive_after_notice(unpaid_cut, warned_before)
            inactive += await uow.accounts.lapsed_after_notice(lapsed_cut, warned_before)
        if dry_run:
            return len(to_warn), inactive, 0
        warned = failed = 0
        for account_id, period, body in to_warn:
            try:
                warned += await self._warn(account_id, now, period, body)
            except Exception as exc:
                failed += 1
                log.error("the inactivity notice to %s failed (%s); retried at the next "
                          "run", account_id, describe(exc))
        return warned, inactive, failed

    async def _warn(self, account_id: str, now: datetime, period: timedelta,
                    body: str) -> bool:
        assert self._mailer is not None
        async with self._uow() as uow:
            profile = await uow.accounts.profile(account_id)
        days = self._periods.inactivity_notice.days
        sent = await self._mailer.send(
            profile.email, INACTIVITY_SUBJECT.format(days=days),
            body.format(inactive=period.days - days,
                        due=(now + self._periods.inactivity_notice).date().isoformat(),
                        login_url=self._login_url))
        if not sent:  # not queued durably: retried next run
            return False
        async with self._uow() as uow:
            await uow.accounts.warned_of_inactivity(account_id, now)
            await uow.commit()
        return True

    async def _delete_inactive(self, account_id: str) -> bool:
        """The same path as a customer's own deletion: scheduled (due now, sessions
        ended, `account.deletion_scheduled`), then erased (`account.deleted`)."""
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted or account.deletion_due_at is not None:
                return False
            account.schedule_deletion(now, timedelta(0))
            await uow.accounts.save(account)
            await uow.sessions.revoke_all(account_id, now)
            await uow.security_log.add(account_id, "deletion_for_inactivity", None, now)
            await uow.commit()
        return await self.erase(account_id)

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
            if self._ledger is not None:
                self._ledger.record(account_id, now)  # before the commit: never missed
            await uow.commit()
        return True

    async def reapply_ledger(self) -> int:
        """Erases again every account the ledger says was erased but the database holds
        alive (a restored backup taken before the erasure). Returns how many; one that
        fails is logged and left for the next retention run."""
        return (await self._reapply())[0]

    async def _reapply(self) -> tuple[int, int]:
        """(re-erased, failed). Raises only when the ledger cannot be read."""
        if self._ledger is None:
            return 0, 0
        erased = self._ledger.entries()
        if not erased:
            return 0, 0
        async with self._uow() as uow:
            alive = await uow.accounts.alive_among(list(erased))

        async def again(account_id: str) -> bool:
            async with self._uow() as uow:
                account = await uow.accounts.get(account_id, for_update=True)
                if account is None or account.deleted:
                    return False
                account.erase(erased[account_id])
                await uow.accounts.erase_personal_data(account_id)
                await uow.accounts.save(account)
                await uow.commit()
            return True

        count, failed = await self._each(alive, again)
        if count:
            self._flush_owed = True
            await self._flush_now()
        return count, failed
