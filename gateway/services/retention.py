"""Deleting what the privacy policy says we no longer keep, and carrying out deletions
whose grace period has passed."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from gateway.i18n import ENGLISH, N_, Catalogs
from gateway.logs import describe
from gateway.services.ports import Clock, DeletionLedger, RetentionUnit
from gateway.services.recovery import Mailer

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# Written in the account's language (`catalogs`).
INACTIVITY_BODY = N_("""Hello,

Your account has had no paid invoice and no login for %(inactive)s days. We keep data
only while an account is in use, so it will be deleted, with everything we hold about
you, on or after %(due)s.

To keep it, log in before then: %(login_url)s

Nothing else is needed, and if you do not want the account any more you need do nothing.
""")

LAPSED_BODY = N_("""Hello,

The paid time of your account has ended, and it has had no payment, no login and no
session for %(inactive)s days. We keep data only while an account is in use, so it will be
deleted, with everything we hold about you, on or after %(due)s. Your invoices and
payments stay as the billing records the law requires us to keep, without your email or
anything else that identifies you.

To keep it, log in before then: %(login_url)s

Nothing else is needed, and if you do not want the account any more you need do nothing.
""")


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
    # A refund's address and tx key, after the refund ended (docs/refunds.md).
    refund_addresses: timedelta = timedelta(days=30)
    # A cash token, after its envelope was recorded (`[cash] keep_used_days`); an unused
    # one goes when its validity ends (docs/cash.md).
    cash_tokens_after_use: timedelta = timedelta(days=40)


class RetentionService:
    def __init__(self, uow: Callable[[], RetentionUnit], clock: Clock, *, periods: RetentionPeriods,
                 flush: Callable[[], Awaitable[bool | None]] | None = None,
                 mailer: Mailer | None = None, login_url: str = "",
                 ledger: DeletionLedger | None = None, catalogs: Catalogs = ENGLISH) -> None:
        """`flush` makes erased data leave the disk now, where the store keeps old copies
        (SQLite's write-ahead log, PostgreSQL's dead tuples). `mailer` (the durable mail
        queue) carries inactivity notices; without one, no inactive account is deleted,
        as none can be warned."""
        self._flush = flush
        self._catalogs = catalogs
        self._ledger = ledger
        self._mailer = mailer
        self._login_url = login_url
        self._uow = uow
        self._clock = clock
        self._periods = periods

    async def run(self, dry_run: bool = False) -> dict[str, int]:
        """Rows strictly older than their period: removed, or (dry run) only counted.

        The customers' own deletions come first, and every stage is on its own: one that
        fails (a purge, the inactivity notices, the flush) is logged, counted in
        `stage_failures` and retried at the next run, and stops no other stage."""
        run = _Run(self._clock(), dry_run)
        counts: dict[str, int] = {}
        await self._erasures(run, counts)
        # Before the inactivity notices: a notice the queue purge drops un-warns its
        # account, which is then warned again in this same run.
        await self._purges(run, counts)
        await self._refund_addresses(run, counts)
        await self._cash_tokens(run, counts)
        await self._inactive_accounts(run, counts)
        legal, ledger, prune_failed = await self._prune_registers(run.now, dry_run)
        counts["legal_requests"] = legal
        counts["deletion_ledger"] = ledger
        counts["prune_failures"] = prune_failed
        counts["flush_owed"] = 0 if dry_run else await run.guarded(
            "flush", self._flush_owed_now, 0)
        counts["stage_failures"] = len(run.failed)
        return counts

    async def _erasures(self, run: "_Run", counts: dict[str, int]) -> None:
        """The customers' own deletions that are due, then the deletion ledger
        re-applied (erasures a restored backup brought back)."""
        nobody: list[str] = []
        due = await run.guarded("due_list", partial(self.overdue_erasures, run.now), nobody)
        counts["account_deletions"] = len(due)
        counts["erasure_failures"] = 0
        if not run.dry_run:
            erased, erase_failed = await self._each(due, self.erase)
            counts["account_deletions"] = erased
            counts["erasure_failures"] += erase_failed
        reapplied, reapply_failed = (0, 0) if run.dry_run else await self._reapply_guarded()
        counts["ledger_reapplied"] = reapplied
        counts["erasure_failures"] += reapply_failed

    async def _purges(self, run: "_Run", counts: dict[str, int]) -> None:
        """Each kind of row past its period, each in a transaction of its own."""
        now, dry_run, p = run.now, run.dry_run, self._periods
        purges: list[tuple[str, Callable[[Any], Awaitable[int]]]] = [
            ("security_log", lambda u: u.security_log.purge(now - p.security_log, dry_run)),
            ("sessions", lambda u: u.retention.sessions(now, dry_run)),
            ("idempotency_keys", lambda u: u.retention.idempotency_keys(
                now - p.idempotency_keys, dry_run)),
            ("delivery_logs", lambda u: u.retention.delivery_logs(
                now - p.delivery_logs, dry_run)),
            ("mail_queue", lambda u: u.retention.mail_queue(now - p.mail_queue, dry_run)),
            ("audit_log", lambda u: u.retention.audit_log(
                now - p.audit_log_after_deletion, dry_run)),
            ("login_throttle", lambda u: u.retention.login_throttle(
                now - p.login_throttle, now, dry_run)),
            ("disabled_endpoint_events", lambda u: u.retention.disabled_endpoint_events(
                now - p.disabled_endpoint_events, dry_run)),
        ]
        for name, purge in purges:
            counts[name] = await run.guarded(name, partial(self._in_transaction, purge,
                                                           dry_run), 0)
        if not dry_run:
            # Rows from before 0012a: nothing stays in clear after the first run.
            await run.guarded("encrypt_legacy", lambda: self._in_transaction(
                self._encrypt_legacy, dry_run), 0)

    async def _refund_addresses(self, run: "_Run", counts: dict[str, int]) -> None:
        """The addresses and tx keys of refunds that ended `refund_addresses` ago (or whose
        account is erased), refund by refund: one that fails holds back no other, stays
        due and is retried at the next run."""
        before = run.now - self._periods.refund_addresses

        async def due() -> list[str]:
            async with self._uow() as uow:
                return await uow.refunds.addresses_due(before)

        nothing: list[str] = []
        ids = await run.guarded("refund_addresses", due, nothing)
        counts["refund_addresses"] = len(ids)
        counts["refund_address_failures"] = 0
        if run.dry_run:
            return

        async def erase(refund_id: str) -> bool:
            async with self._uow() as uow:
                done = await uow.refunds.erase_address(refund_id, run.now)
                await uow.commit()
            return done

        erased, failed = await self._each(ids, erase)
        counts["refund_addresses"] = erased
        counts["refund_address_failures"] = failed

    async def _cash_tokens(self, run: "_Run", counts: dict[str, int]) -> None:
        """Cash tokens used `cash_tokens_after_use` ago, or unused past their validity,
        token by token: one that fails holds back no other, stays due and is retried at
        the next run."""
        used_before = run.now - self._periods.cash_tokens_after_use

        async def due() -> list[str]:
            async with self._uow() as uow:
                return await uow.cash_tokens.due(used_before, run.now)

        nothing: list[str] = []
        ids = await run.guarded("cash_tokens", due, nothing)
        counts["cash_tokens"] = len(ids)
        counts["cash_token_failures"] = 0
        if run.dry_run:
            return

        async def erase(token_id: str) -> bool:
            async with self._uow() as uow:
                done = await uow.cash_tokens.erase(token_id, used_before, run.now)
                if done:
                    await self._owe_flush(uow, run.now)
                await uow.commit()
            return done

        erased, failed = await self._each(ids, erase)
        counts["cash_tokens"] = erased
        counts["cash_token_failures"] = failed

    async def _inactive_accounts(self, run: "_Run", counts: dict[str, int]) -> None:
        """Inactivity notices, then the accounts warned long enough ago deleted, then
        the flush that takes erased data off the disk."""
        nobody: list[str] = []

        async def inactivity() -> tuple[int, list[str], int]:
            return await self._inactivity(run.now, run.dry_run)

        warned, inactive, notice_failed = await run.guarded("inactivity", inactivity,
                                                            (0, nobody, 0))
        counts["inactivity_notices"] = warned
        counts["inactive_deletions"] = len(inactive)
        counts["erasure_failures"] += notice_failed
        if not run.dry_run:
            erased, erase_failed = await self._each(inactive, self._delete_inactive)
            counts["inactive_deletions"] = erased
            counts["erasure_failures"] += erase_failed
            await run.guarded("flush", lambda: self._flush_now(), None)

    async def _in_transaction(self, work: Callable[[Any], Awaitable[int]],
                              dry_run: bool) -> int:
        async with self._uow() as uow:
            n = await work(uow)
            if not dry_run:
                await uow.commit()
        return n

    @staticmethod
    async def _encrypt_legacy(uow: RetentionUnit) -> int:
        await uow.security_log.encrypt_legacy()
        await uow.audit.encrypt_legacy()
        return 0

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

    async def _owe_flush(self, uow: RetentionUnit, now: datetime) -> None:
        """In the erasure's own transaction: a flush that fails, or a process that stops
        before it, leaves the debt in the database for the next run. Without a flush (a
        store that keeps no old copies) nothing is owed."""
        if self._flush is not None:
            await uow.retention.owe("flush", now)

    async def _flush_owed_now(self) -> int:
        """1 while a flush is owed (the gauge `gateway_retention_flush_owed`)."""
        return int(await self.flush_owed_since() is not None)

    async def flush_owed_since(self) -> datetime | None:
        """Since when erased data has waited to leave the database files (None: it has
        not). `gateway doctor` reports one owed for more than a day."""
        async with self._uow() as uow:
            return await uow.retention.owed("flush")

    async def _flush_now(self) -> None:
        if self._flush is None or await self.flush_owed_since() is None:
            return
        try:
            done = await self._flush()
        except Exception as exc:  # the next run tries again
            log.warning("erased data not yet cleared from the database files (%s); "
                        "retrying at the next run", describe(exc))
            return
        if done is False:
            log.warning("erased data not yet cleared from the database files (an older "
                        "transaction is open); retrying at the next run")
            return
        async with self._uow() as uow:
            await uow.retention.paid("flush")
            await uow.commit()

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
            account = await uow.accounts.get(account_id)
        days = self._periods.inactivity_notice.days
        voice = self._catalogs.voice(account.language if account else None)
        # Named for the account: a notice the queue drops undelivered un-warns it.
        sent = await self._mailer.send(
            profile.email, voice.ngettext("Your account will be deleted in %(n)s day",
                                          "Your account will be deleted in %(n)s days", days),
            voice.gettext(body, inactive=period.days - days,
                          due=voice.day(now + self._periods.inactivity_notice),
                          login_url=self._login_url), notice_for=account_id)
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
        p = self._periods
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted or account.deletion_due_at is not None:
                return False
            # Listed earlier in the run: a login (which clears the notice), an invoice or
            # a payment since then keeps the account.
            if not await uow.accounts.still_inactive(
                    account_id, now - (p.inactive_unpaid - p.inactivity_notice),
                    now - (p.inactive_lapsed - p.inactivity_notice),
                    now - p.inactivity_notice):
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
            await self._owe_flush(uow, now)
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
                await self._owe_flush(uow, self._clock())
                await uow.commit()
            return True

        count, failed = await self._each(alive, again)
        if count:
            await self._flush_now()
        return count, failed


@dataclass
class _Run:
    """One retention run: its time, whether it only counts, and the stages that failed."""

    now: datetime
    dry_run: bool
    failed: list[str] = field(default_factory=list)

    async def guarded(self, stage: str, work: Callable[[], Awaitable[_T]], default: _T) -> _T:
        """`work`, or `default` when it fails: logged, counted, retried at the next run."""
        try:
            return await work()
        except Exception as exc:
            self.failed.append(stage)
            log.error("retention stage %s failed (%s); retried at the next run",
                      stage, describe(exc))
            return default
