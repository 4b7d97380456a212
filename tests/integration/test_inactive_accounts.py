"""Issue 16, item 2: accounts that never paid and stopped logging in are deleted after
[retention] inactive_unpaid_days, through the same path as a customer's own deletion,
with a notice queued in the durable mail queue a week before. SQLite and PostgreSQL."""

import hashlib
import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.adapters.mail_queue import QueuedMailer, SqlMailQueue
from gateway.domain.accounts import Account
from gateway.i18n import day
from gateway.services.ports import Profile
from gateway.services.retention import RetentionPeriods, RetentionService

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PERIODS = RetentionPeriods(inactive_unpaid=timedelta(days=180),
                           inactivity_notice=timedelta(days=7))


def index(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


async def test_never_paid_idle_accounts_are_warned_then_deleted(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    uow = lambda: SqlUnitOfWork(engine, cipher)  # noqa: E731
    queue = SqlMailQueue(engine, cipher, index)
    now = [START]
    service = RetentionService(uow, lambda: now[0], periods=PERIODS,
                               mailer=QueuedMailer(queue, lambda: now[0]),
                               login_url="https://pay.example/login")
    idle_since = START - (PERIODS.inactive_unpaid - PERIODS.inactivity_notice)
    try:
        async with uow() as u:
            for name, created in (("idle", idle_since - TICK), ("edge", idle_since),
                                  ("paid", idle_since - timedelta(days=90)),
                                  ("back", idle_since - TICK),
                                  ("logged_in", idle_since - timedelta(days=90))):
                await u.accounts.add(Account(f"acc_{name}", created),
                                     Profile(f"{name}@example.org", None, None),
                                     index(f"{name}@example.org"), "h", "v1")
            await u.accounts.record_login("acc_logged_in", START - timedelta(days=10))
            await u.commit()
        async with engine.begin() as conn:
            await conn.execute(insert(t.invoices).values(
                id="inv_1", account_id="acc_paid", coin="LTC", price_minor=400,
                price_currency="EUR", rate_value="80", rate_source="fixed",
                rate_locked_at=START, amount_due=5000000, decimals=8,
                confirmations_required=3, tolerance_basis_points=0,
                accept_late_payments=True, address_space="s", derivation_index=0,
                address="addr", match_key=b"k", payment_uri="litecoin:addr",
                status="settled", metadata={}, created_at=START, expires_at=START,
                monitoring_until=START, settled_at=idle_since - timedelta(days=90)))

        dry = await service.run(dry_run=True)
        assert (dry["inactivity_notices"], dry["inactive_deletions"]) == (2, 0)
        first = await service.run()
        assert (first["inactivity_notices"], first["inactive_deletions"]) == (2, 0)
        mails, _ = await queue.claim(START, 10, timedelta(minutes=2))
        assert sorted(m.to for m in mails) == ["back@example.org", "idle@example.org"]
        notice = next(m for m in mails if m.to == "idle@example.org")
        assert "deleted" in notice.subject and "https://pay.example/login" in notice.body
        assert day(START + timedelta(days=7), "en") in notice.body  # "Jan 8, 2026"
        await queue.remove([m.id for m in mails])
        assert (await service.run())["inactivity_notices"] == 0  # warned once only

        # A login after the notice keeps the account.
        async with uow() as u:
            await u.accounts.record_login("acc_back", START + timedelta(days=1))
            await u.commit()
        now[0] = START + PERIODS.inactivity_notice - TICK
        almost = await service.run()
        # Not a week since the notice yet; "edge" (idle exactly at START) is now past it.
        assert (almost["inactive_deletions"], almost["inactivity_notices"]) == (0, 1)
        now[0] = START + PERIODS.inactivity_notice
        later = await service.run()
        assert (later["inactive_deletions"], later["inactivity_notices"]) == (1, 0)

        async with engine.connect() as conn:
            rows = {r.id: r for r in await conn.execute(select(t.accounts))}
            events = [(r.type, r.account_id) for r in await conn.execute(
                select(t.events).order_by(t.events.c.seq))]
        assert rows["acc_idle"].deleted_at == now[0] and rows["acc_idle"].email_ct == b""
        for kept in ("acc_back", "acc_paid", "acc_logged_in", "acc_edge"):
            assert rows[kept].deleted_at is None, kept
        assert ("account.deletion_scheduled", "acc_idle") in events
        assert ("account.deleted", "acc_idle") in events
    finally:
        await engine.dispose()
