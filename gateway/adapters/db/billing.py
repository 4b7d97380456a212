"""Prepaid time in the database: renewal invoices (one per account and period), the
periods settled invoices paid for, and the reminder mail queued in the same
transaction."""

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import accounts, invoices, paid_periods, renewals
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.mail_queue import put_mail
from gateway.domain.billing import BillingState, Extension
from gateway.domain.states import Status
from gateway.services.ports import RenewalRecord


def _renewal(r: object) -> RenewalRecord:
    m = r._mapping  # type: ignore[attr-defined]
    return RenewalRecord(m["id"], m["account_id"], m["period_end"], m["invoice_id"],
                         m["created_at"], m["first_reminder_at"], m["second_reminder_at"],
                         Status(m["status"]))


_RENEWAL_COLUMNS = (renewals.c.id, renewals.c.account_id, renewals.c.period_end,
                    renewals.c.invoice_id, renewals.c.created_at, renewals.c.first_reminder_at,
                    renewals.c.second_reminder_at, invoices.c.status)


class SqlBilling:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher,
                 index: BlindIndex | None) -> None:
        self._conn = conn
        self._cipher = cipher
        self._index = index
        self.mailed = 0  # mails queued in this transaction (the sender is woken at commit)

    async def due(self, now: datetime, lead: timedelta, grace: timedelta,
                  limit: int = 500) -> list[str]:
        """Accounts the periodic task has something to do for: a renewal invoice to
        create (none yet for the current period), or a state to move on."""
        a = accounts.c
        no_renewal = ~exists().where(renewals.c.account_id == a.id,
                                     renewals.c.period_end == a.paid_until)
        active, grace_state = BillingState.ACTIVE.value, BillingState.GRACE.value
        query = (
            select(a.id).where(
                a.deleted_at.is_(None), a.paid_until.is_not(None),
                or_(
                    and_(a.billing_state == active, a.paid_until <= now),
                    and_(a.billing_state == grace_state, a.paid_until <= now - grace),
                    and_(a.billing_state.in_([active, grace_state]),
                         a.paid_until <= now + lead, a.deletion_due_at.is_(None),
                         a.plan.is_not(None), no_renewal),
                ))
            .order_by(a.paid_until).limit(limit))
        return [str(r.id) for r in await self._conn.execute(query)]

    async def renewal(self, account_id: str, period_end: datetime) -> RenewalRecord | None:
        row = (await self._conn.execute(
            select(*_RENEWAL_COLUMNS).join(invoices, invoices.c.id == renewals.c.invoice_id)
            .where(renewals.c.account_id == account_id,
                   renewals.c.period_end == period_end))).first()
        return _renewal(row) if row else None

    async def latest_renewal(self, account_id: str) -> RenewalRecord | None:
        row = (await self._conn.execute(
            select(*_RENEWAL_COLUMNS).join(invoices, invoices.c.id == renewals.c.invoice_id)
            .where(renewals.c.account_id == account_id)
            .order_by(renewals.c.period_end.desc()).limit(1))).first()
        return _renewal(row) if row else None

    async def add_renewal(self, account_id: str, period_end: datetime, invoice_id: str,
                          now: datetime, reminded: bool) -> bool:
        """False when this period already has its renewal (the unique key decides, on
        any instance)."""
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(renewals).values(
                    account_id=account_id, period_end=period_end, invoice_id=invoice_id,
                    created_at=now, first_reminder_at=now if reminded else None))
        except IntegrityError:
            return False
        return True

    async def replace_renewal_invoice(self, renewal_id: int, invoice_id: str) -> None:
        await self._conn.execute(update(renewals).where(renewals.c.id == renewal_id)
                                 .values(invoice_id=invoice_id))

    async def second_reminders_due(self, now: datetime, before: timedelta,
                                   limit: int = 200) -> list[RenewalRecord]:
        """Renewals of the current period whose invoice is still unpaid, a reminder's
        lead before the period ends, not yet reminded twice, for accounts that want
        reminders and are not being deleted."""
        a = accounts.c
        rows = await self._conn.execute(
            select(*_RENEWAL_COLUMNS)
            .join(invoices, invoices.c.id == renewals.c.invoice_id)
            .join(accounts, a.id == renewals.c.account_id)
            .where(renewals.c.second_reminder_at.is_(None),
                   renewals.c.period_end == a.paid_until,
                   renewals.c.period_end <= now + before, renewals.c.period_end > now,
                   invoices.c.status == Status.NEW, a.renewal_reminders.is_(True),
                   a.deleted_at.is_(None), a.deletion_due_at.is_(None))
            .order_by(renewals.c.period_end).limit(limit))
        return [_renewal(r) for r in rows]

    async def mark_second_reminder(self, renewal_id: int, now: datetime) -> bool:
        """True for the one caller that marks it (the others find it marked)."""
        result = await self._conn.execute(
            update(renewals).where(renewals.c.id == renewal_id,
                                   renewals.c.second_reminder_at.is_(None))
            .values(second_reminder_at=now))
        return int(result.rowcount) == 1

    async def record_period(self, invoice_id: str, account_id: str, plan: str,
                            extension: Extension, now: datetime) -> bool:
        """False when the invoice already paid for a period (a replay)."""
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(paid_periods).values(
                    invoice_id=invoice_id, account_id=account_id, plan=plan,
                    periods=extension.periods, starts_at=extension.starts_at,
                    ends_at=extension.ends_at, created_at=now))
        except IntegrityError:
            return False
        return True

    async def paid_period(self, invoice_id: str) -> Extension | None:
        p = paid_periods.c
        row = (await self._conn.execute(
            select(p.periods, p.starts_at, p.ends_at).where(p.invoice_id == invoice_id)
            .with_for_update())).first()
        if row is None:
            return None
        return Extension(row.starts_at, row.ends_at, row.periods, row.starts_at)

    async def shorten_period(self, invoice_id: str, periods: int, ends_at: datetime) -> None:
        await self._conn.execute(update(paid_periods)
                                 .where(paid_periods.c.invoice_id == invoice_id)
                                 .values(periods=periods, ends_at=ends_at))

    async def queue_mail(self, to: str, subject: str, body: str, now: datetime) -> None:
        """Into the durable mail queue, in this transaction."""
        if self._index is None:
            raise RuntimeError("this unit of work was built without the mail queue")
        await put_mail(self._conn, self._cipher, self._index, to, subject, body, now)
        self.mailed += 1
