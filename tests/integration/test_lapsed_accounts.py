"""Issue 28, item 3: accounts that paid once and lapsed (no paid time now) with no payment,
login or session use for [retention] inactive_lapsed_days get the notice-then-erase path
of never-paid idle accounts; their invoices and payments stay as billing records. The
per-account failure isolation of the retention run covers the path: one failing erasure
among several, and one that always fails. SQLite and PostgreSQL."""

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.adapters.fields import FieldCipher
from gateway.adapters.mail_queue import QueuedMailer, SqlMailQueue
from gateway.adapters.metrics import Metrics
from gateway.domain.accounts import Account
from gateway.i18n import day
from gateway.services.ports import Profile
from gateway.services.retention import RetentionPeriods, RetentionService
from tests.support.failing_ledger import FailingFor

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PERIODS = RetentionPeriods(inactive_unpaid=timedelta(days=180),
                           inactivity_notice=timedelta(days=7),
                           inactive_lapsed=timedelta(days=365))
# Idle since before this at START: warned now (the notice goes a week before deletion).
IDLE = START - (PERIODS.inactive_lapsed - PERIODS.inactivity_notice)
LONG_AGO = IDLE - timedelta(days=400)


def index(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


class FailingMailer:
    """Queues through the real mailer, except for these recipients (a queue write that
    fails for one row)."""

    def __init__(self, mailer: QueuedMailer, failing: set[str]) -> None:
        self.mailer, self.failing = mailer, failing

    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        if to in self.failing:
            raise RuntimeError("queue write failed")
        return await self.mailer.send(to, subject, body, notice_for)


async def add_account(engine: AsyncEngine, uow: object, name: str, created: datetime) -> str:
    account_id = f"acc_{name}"
    async with uow() as u:  # type: ignore[operator]
        await u.accounts.add(Account(account_id, created),
                             Profile(f"{name}@example.org", None, None),
                             index(f"{name}@example.org"), "h", "v1")
        await u.commit()
    return account_id


async def paid(engine: AsyncEngine, account_id: str, settled: datetime | None,
               paid_until: datetime | None, payment_seen: datetime | None = None) -> None:
    """An invoice of the account (settled or not), optionally a payment seen for it, and
    the account's paid time."""
    async with engine.begin() as conn:
        n = len((await conn.execute(select(t.invoices.c.id))).all())
        invoice_id = f"inv_{account_id}_{n}"
        await conn.execute(insert(t.invoices).values(
            id=invoice_id, account_id=account_id, coin="LTC", price_minor=400,
            price_currency="EUR", rate_value="80", rate_source="fixed",
            rate_locked_at=LONG_AGO, amount_due=5000000, decimals=8,
            confirmations_required=3, tolerance_basis_points=0,
            accept_late_payments=True, address_space="s", derivation_index=n,
            address=f"addr{n}", match_key=b"k", payment_uri="litecoin:addr",
            status="settled" if settled else "pending", metadata={}, created_at=LONG_AGO,
            expires_at=LONG_AGO, monitoring_until=LONG_AGO, settled_at=settled))
        if payment_seen is not None:
            await conn.execute(insert(t.payments).values(
                coin="LTC", txid=f"tx{n}", output_index=0, invoice_id=invoice_id,
                amount=5000000, status="pending", seen_at=payment_seen))
        if paid_until is not None:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                               .values(paid_until=paid_until, billing_state="suspended",
                                       plan="basic"))


def service_for(engine: AsyncEngine, now: list[datetime], ledger: object = None,
                failing_mail: frozenset[str] = frozenset(),
                ) -> tuple[RetentionService, SqlMailQueue, object]:
    cipher = FieldCipher([("t", os.urandom(32))])
    uow = lambda: SqlUnitOfWork(engine, cipher)  # noqa: E731
    queue = SqlMailQueue(engine, cipher, index)
    mailer = FailingMailer(QueuedMailer(queue, lambda: now[0]), set(failing_mail))
    return (RetentionService(uow, lambda: now[0], periods=PERIODS, mailer=mailer,
                             login_url="https://pay.example/login",
                             ledger=ledger),  # type: ignore[arg-type]
            queue, uow)


async def delivered(engine: AsyncEngine) -> None:
    """Every queued notice reached the SMTP server (an undelivered one does not count as
    a warning: tests/integration/test_retention_stages.py)."""
    async with engine.begin() as conn:
        await conn.execute(t.mail_queue.delete())


async def state(engine: AsyncEngine) -> dict[str, bool]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.accounts))).all()
    for r in rows:  # erased means erased: the deletion time and the email both
        assert (r.deleted_at is None) == (bytes(r.email_ct) != b""), r.id
    return {r.id: r.deleted_at is not None for r in rows}


async def test_lapsed_idle_accounts_are_warned_then_erased_keeping_billing(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    now = [START]
    service, queue, uow = service_for(engine, now)
    try:
        ids = {}
        for name in ("lapsed", "edge", "logged_in", "session", "payment", "settled",
                     "paid_time", "one_off"):
            ids[name] = await add_account(engine, uow, name, LONG_AGO)
        for name in ("lapsed", "logged_in", "session", "payment", "settled"):
            await paid(engine, ids[name], LONG_AGO, LONG_AGO + timedelta(days=30))
        # Paid time ending exactly at the cut-off: not yet idle for the whole period.
        await paid(engine, ids["edge"], LONG_AGO, IDLE)
        # Paid time that ended a day ago: far from idle.
        await paid(engine, ids["paid_time"], LONG_AGO, START - timedelta(days=1))
        # A one-off invoice with no paid time (plan-less): idle from its settlement.
        await paid(engine, ids["one_off"], IDLE - TICK, None)
        # Each kind of recent use keeps an account.
        recent = START - timedelta(days=1)
        await paid(engine, ids["payment"], None, None, payment_seen=recent)
        await paid(engine, ids["settled"], recent, None)
        async with uow() as u:  # type: ignore[operator]
            await u.accounts.record_login(ids["logged_in"], recent)
            await u.commit()
        async with engine.begin() as conn:
            await conn.execute(insert(t.sessions).values(
                id="s_1", account_id=ids["session"], created_at=LONG_AGO,
                expires_at=START + timedelta(days=30), last_seen_at=recent))

        dry = await service.run(dry_run=True)
        assert (dry["inactivity_notices"], dry["inactive_deletions"]) == (2, 0)
        first = await service.run()
        assert (first["inactivity_notices"], first["inactive_deletions"]) == (2, 0)
        mails, _ = await queue.claim(START, 10, timedelta(minutes=2))
        assert sorted(m.to for m in mails) == ["lapsed@example.org", "one_off@example.org"]
        notice = next(m for m in mails if m.to == "lapsed@example.org")
        assert "paid time of your account has ended" in notice.body
        assert "billing records" in notice.body and "https://pay.example/login" in notice.body
        assert day(START + PERIODS.inactivity_notice, "en") in notice.body
        await queue.remove([m.id for m in mails])
        assert (await service.run())["inactivity_notices"] == 0  # warned once only

        now[0] = START + PERIODS.inactivity_notice - TICK
        almost = await service.run()
        # Not a week since the notice; "edge" (paid until exactly the cut-off) is warned now.
        assert (almost["inactive_deletions"], almost["inactivity_notices"]) == (0, 1)
        now[0] = START + PERIODS.inactivity_notice
        later = await service.run()
        assert (later["inactive_deletions"], later["erasure_failures"]) == (2, 0)
        assert await state(engine) == {
            ids["lapsed"]: True, ids["one_off"]: True, ids["edge"]: False,
            ids["logged_in"]: False, ids["session"]: False, ids["payment"]: False,
            ids["settled"]: False, ids["paid_time"]: False}
        async with engine.connect() as conn:
            invoices = {r.id: r.account_id for r in await conn.execute(select(t.invoices))}
            events = [(r.type, r.account_id) for r in await conn.execute(
                select(t.events).order_by(t.events.c.seq))]
        # The billing records stay, tied to the tombstone.
        assert sum(1 for a in invoices.values() if a == ids["lapsed"]) == 1
        assert ("account.deletion_scheduled", ids["lapsed"]) in events
        assert ("account.deleted", ids["lapsed"]) in events
    finally:
        await engine.dispose()


async def test_a_notice_from_an_earlier_idle_stretch_does_not_count(database_url: str) -> None:
    """Warned, then paid again (which, unlike a login, clears no notice), then lapsed
    again: warned anew before any deletion, never erased on the old notice."""
    engine = make_engine(database_url)
    now = [START]
    service, _queue, uow = service_for(engine, now)
    try:
        acc = await add_account(engine, uow, "back", LONG_AGO)
        await paid(engine, acc, LONG_AGO, LONG_AGO + timedelta(days=30))
        assert (await service.run())["inactivity_notices"] == 1
        # Pays for a month during the notice week, then stays away for the whole period.
        await paid(engine, acc, START + timedelta(days=1), START + timedelta(days=31))
        now[0] = START + timedelta(days=31) + PERIODS.inactive_lapsed \
            - PERIODS.inactivity_notice + TICK
        again = await service.run()
        assert (again["inactivity_notices"], again["inactive_deletions"]) == (1, 0)
        assert await state(engine) == {acc: False}
        await delivered(engine)
        now[0] += PERIODS.inactivity_notice
        assert (await service.run())["inactive_deletions"] == 1
        assert await state(engine) == {acc: True}
    finally:
        await engine.dispose()


async def lapsed_and_warned(engine: AsyncEngine, uow: object, service: RetentionService,
                            names: list[str]) -> list[str]:
    ids = [await add_account(engine, uow, name, LONG_AGO) for name in names]
    for account_id in ids:
        await paid(engine, account_id, LONG_AGO, LONG_AGO + timedelta(days=30))
    assert (await service.run())["inactivity_notices"] == len(ids)
    await delivered(engine)
    return ids


def metric(metrics: Metrics, name: str) -> float:
    line = next(x for x in metrics.render().decode().splitlines()
                if x.startswith(name + " "))
    return float(line.split()[1])


async def test_one_failing_lapsed_erasure_holds_back_no_other_and_is_retried(
    database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(database_url)
    now = [START]
    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    flaky = FailingFor(ledger, {"acc_b"})
    service, _queue, uow = service_for(engine, now, flaky)
    metrics = Metrics()
    try:
        ids = await lapsed_and_warned(engine, uow, service, ["a", "b", "c"])
        now[0] = START + PERIODS.inactivity_notice
        counts = await service.run()
        metrics.retention_run(counts)
        assert (counts["inactive_deletions"], counts["erasure_failures"]) == (2, 1)
        assert await state(engine) == {ids[0]: True, ids[1]: False, ids[2]: True}
        assert metric(metrics, "gateway_retention_erasures_failing") == 1
        # Scheduled (due now) by the failed attempt: the next run's ordinary erasure
        # takes it once the ledger can be written.
        flaky.accounts.clear()
        counts = await service.run()
        metrics.retention_run(counts)
        assert (counts["account_deletions"], counts["erasure_failures"]) == (1, 0)
        assert await state(engine) == {i: True for i in ids}
        assert set(ledger.entries()) == set(ids)
        assert metric(metrics, "gateway_retention_erasures_failing") == 0
    finally:
        await engine.dispose()


async def test_a_lapsed_erasure_that_always_fails_stops_nothing_else(
    database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(database_url)
    now = [START]
    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    stuck = FailingFor(ledger, {"acc_b"})
    service, _queue, uow = service_for(engine, now, stuck)
    metrics = Metrics()
    try:
        ids = await lapsed_and_warned(engine, uow, service, ["a", "b"])
        now[0] = START + PERIODS.inactivity_notice
        first = await service.run()
        assert (first["inactive_deletions"], first["erasure_failures"]) == (1, 1)
        # Another lapsed account warned and erased while acc_b keeps failing.
        late = await add_account(engine, uow, "late", LONG_AGO)
        await paid(engine, late, LONG_AGO, LONG_AGO + timedelta(days=30))
        for run in (1, 2, 3):
            counts = await service.run()
            metrics.retention_run(counts)
            assert counts["erasure_failures"] == 1, run
            await delivered(engine)
            now[0] += PERIODS.inactivity_notice
        assert await state(engine) == {ids[0]: True, ids[1]: False, late: True}
        assert metric(metrics, "gateway_retention_erasure_failures_total") == 3
    finally:
        await engine.dispose()


async def test_a_notice_that_cannot_be_queued_holds_back_no_other(database_url: str) -> None:
    engine = make_engine(database_url)
    now = [START]
    service, queue, uow = service_for(engine, now, failing_mail=frozenset({"b@example.org"}))
    try:
        ids = [await add_account(engine, uow, name, LONG_AGO) for name in ("a", "b", "c")]
        for account_id in ids:
            await paid(engine, account_id, LONG_AGO, LONG_AGO + timedelta(days=30))
        counts = await service.run()
        assert (counts["inactivity_notices"], counts["erasure_failures"]) == (2, 1)
        mails, _ = await queue.claim(START, 10, timedelta(minutes=2))
        assert sorted(m.to for m in mails) == ["a@example.org", "c@example.org"]
        await delivered(engine)
        now[0] = START + PERIODS.inactivity_notice
        counts = await service.run()  # b, never warned, is not erased (its notice fails)
        assert (counts["inactive_deletions"], counts["erasure_failures"]) == (2, 1)
        assert await state(engine) == {ids[0]: True, ids[1]: False, ids[2]: True}
    finally:
        await engine.dispose()
