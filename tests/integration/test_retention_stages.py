"""Issue 28 review (promises 10 and 17): the retention run keeps its promises when parts
of it fail. The customers' own erasures come first and every stage is on its own (a purge,
the inactivity notices, the legacy encryption); a flush of erased data that fails is
remembered in the database, retried every run, shown as a gauge and, after a day, by
`gateway doctor`; an inactivity notice the mail queue drops undelivered does not count as
a warning; a never-paid customer who starts paying during the notice is kept, and the
deletion re-reads the account under its lock. SQLite and PostgreSQL."""

import argparse
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.accounts import SqlAccounts
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.retention import SqlRetention
from gateway.adapters.db.security_log import SqlSecurityLog
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.adapters.mail_queue import MailPolicy, MailSender, QueuedMailer, SqlMailQueue
from gateway.adapters.metrics import Metrics
from gateway.cli import retention as retention_cli
from gateway.domain.accounts import Account
from gateway.promise_checks import flush_check
from gateway.services.ports import Profile
from gateway.services.retention import RetentionPeriods, RetentionService

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PERIODS = RetentionPeriods(inactive_unpaid=timedelta(days=180),
                           inactivity_notice=timedelta(days=7),
                           mail_queue=timedelta(hours=24))
IDLE_SINCE = START - PERIODS.inactive_unpaid  # warned at START
CIPHER = FieldCipher([("t", os.urandom(32))])


def index(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


def metric(metrics: Metrics, name: str) -> float:
    line = next(x for x in metrics.render().decode().splitlines()
                if x.startswith(name + " "))
    return float(line.split()[1])


async def add_account(engine: AsyncEngine, name: str, created: datetime,
                      due: datetime | None = None) -> str:
    account_id = f"acc_{name}"
    async with SqlUnitOfWork(engine, CIPHER) as u:
        await u.accounts.add(Account(account_id, created),
                             Profile(f"{name}@example.org", None, None),
                             index(f"{name}@example.org"), "h", "v1")
        await u.commit()
    if due is not None:
        async with engine.begin() as conn:
            await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                               .values(deletion_due_at=due))
    return account_id


async def invoice(engine: AsyncEngine, account_id: str, created: datetime,
                  payment_seen: datetime | None = None) -> None:
    """A pending invoice of the account; optionally a payment seen, not yet confirmed."""
    async with engine.begin() as conn:
        n = len((await conn.execute(select(t.invoices.c.id))).all())
        invoice_id = f"inv_{n}"
        await conn.execute(insert(t.invoices).values(
            id=invoice_id, account_id=account_id, coin="LTC", price_minor=400,
            price_currency="EUR", rate_value="80", rate_source="fixed",
            rate_locked_at=created, amount_due=5000000, decimals=8,
            confirmations_required=3, tolerance_basis_points=0,
            accept_late_payments=True, address_space="s", derivation_index=n,
            address=f"addr{n}", match_key=b"k", payment_uri="litecoin:addr",
            status="pending", metadata={}, created_at=created, expires_at=created,
            monitoring_until=created))
        if payment_seen is not None:
            await conn.execute(insert(t.payments).values(
                coin="LTC", txid=f"tx{n}", output_index=0, invoice_id=invoice_id,
                amount=5000000, status="pending", seen_at=payment_seen))


async def accounts(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {r.id: r for r in await conn.execute(select(t.accounts))}


def broken(what: str) -> Callable[..., Any]:
    async def fail(*_args: object, **_kwargs: object) -> Any:
        raise RuntimeError(f"{what} always fails")
    return fail


def service(engine: AsyncEngine, now: list[datetime], mailer: object = None,
            flush: Callable[[], Any] | None = None) -> RetentionService:
    return RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: now[0],
                            periods=PERIODS,
                            flush=flush, mailer=mailer,  # type: ignore[arg-type]
                            login_url="https://pay.example/login")


async def test_failing_stages_stop_no_requested_erasure(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = make_engine(database_url)
    now = [START]
    queue = SqlMailQueue(engine, CIPHER, index)
    try:
        due = await add_account(engine, "due", START - timedelta(days=90),
                                due=START - timedelta(days=1))
        async with engine.begin() as conn:  # what the purges that still work remove
            await conn.execute(insert(t.idempotency_keys).values(
                scope="k", key="old", fingerprint="f", state="done", owner="o",
                created_at=START - timedelta(days=2), updated_at=START - timedelta(days=2)))
        for stage, target in (("security_log", (SqlSecurityLog, "purge")),
                              ("sessions", (SqlRetention, "sessions")),
                              ("inactivity", (SqlAccounts, "to_warn_of_inactivity")),
                              ("encrypt_legacy", (SqlSecurityLog, "encrypt_legacy"))):
            monkeypatch.setattr(*target, broken(stage))
        counts = await service(engine, now, QueuedMailer(queue, lambda: now[0])).run()

        assert counts["account_deletions"] == 1 and counts["erasure_failures"] == 0
        assert counts["stage_failures"] == 4
        assert counts["idempotency_keys"] == 1  # the other purges ran
        assert (await accounts(engine))[due].deleted_at == START
        metrics = Metrics()
        metrics.retention_run(counts)
        assert metric(metrics, "gateway_retention_stages_failing") == 4
        assert metric(metrics, "gateway_retention_stage_failures_total") == 4

        # `gateway retention run` says so and exits 1.
        monkeypatch.setattr(retention_cli, "with_gateway", lambda _args, _work: dict(counts))
        assert retention_cli.cmd_retention_run(argparse.Namespace(dry_run=False)) == 1
        monkeypatch.setattr(retention_cli, "with_gateway", lambda _args, _work: dict(
            counts, stage_failures=0))
        assert retention_cli.cmd_retention_run(argparse.Namespace(dry_run=False)) == 0
    finally:
        await engine.dispose()


async def test_a_failed_flush_is_remembered_retried_and_reported(database_url: str) -> None:
    engine = make_engine(database_url)
    now = [START]
    calls: list[str] = []

    async def failing_flush() -> bool:
        calls.append("failed")
        raise TimeoutError

    async def flush() -> bool:
        calls.append("done")
        return True

    try:
        await add_account(engine, "due", START - timedelta(days=90),
                          due=START - timedelta(days=1))
        first = service(engine, now, flush=failing_flush)
        counts = await first.run()
        assert counts["account_deletions"] == 1 and counts["flush_owed"] == 1
        assert await first.flush_owed_since() == START
        metrics = Metrics()
        metrics.retention_run(counts)
        assert metric(metrics, "gateway_retention_flush_owed") == 1

        # A restart forgets nothing; a day later doctor says so; the next run flushes.
        now[0] = START + timedelta(days=1, seconds=1)
        restarted = service(engine, now, flush=failing_flush)
        assert (await flush_check(restarted, START + timedelta(hours=1))).ok
        assert not (await flush_check(restarted, now[0])).ok
        assert (await restarted.run())["flush_owed"] == 1
        assert await restarted.flush_owed_since() == START  # owed since the first time
        healthy = service(engine, now, flush=flush)
        counts = await healthy.run()
        assert counts["flush_owed"] == 0 and calls == ["failed", "failed", "done"]
        assert await healthy.flush_owed_since() is None
        assert (await flush_check(healthy, now[0])).ok
        metrics.retention_run(counts)
        assert metric(metrics, "gateway_retention_flush_owed") == 0
        await healthy.run()
        assert calls == ["failed", "failed", "done"]  # nothing owed: no flush
    finally:
        await engine.dispose()


class Refusing:
    """An SMTP server that refuses every mail."""

    def __init__(self) -> None:
        self.refused = 0

    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        self.refused += 1
        return False


@pytest.mark.parametrize("dropped_by", ["sender", "retention"])
async def test_a_notice_dropped_undelivered_is_no_warning(database_url: str,
                                                          dropped_by: str) -> None:
    """SMTP refuses the notice for longer than [mail] max_age_hours: the queue drops it
    (the sender, or the retention run's purge where no sender runs), the account counts
    as not warned, is warned again and survives the week after the first notice."""
    engine = make_engine(database_url)
    now = [START]
    queue = SqlMailQueue(engine, CIPHER, index)
    retention = service(engine, now, QueuedMailer(queue, lambda: now[0]))
    smtp = Refusing()
    sender = MailSender(queue, smtp, clock=lambda: now[0],
                        policy=MailPolicy(max_age=PERIODS.mail_queue))
    try:
        idle = await add_account(engine, "idle", IDLE_SINCE - timedelta(days=1))
        assert (await retention.run())["inactivity_notices"] == 1
        assert (await accounts(engine))[idle].inactivity_notice_at == START
        if dropped_by == "sender":
            await sender.run_once()  # refused, retried
            now[0] = START + PERIODS.mail_queue + timedelta(seconds=1)
            await sender.run_once()  # too old: dropped
            assert smtp.refused == 1
            assert (await accounts(engine))[idle].inactivity_notice_at is None
        now[0] = START + PERIODS.inactivity_notice
        counts = await retention.run()
        assert (counts["inactive_deletions"], counts["inactivity_notices"]) == (0, 1)
        row = (await accounts(engine))[idle]
        assert row.deleted_at is None and row.inactivity_notice_at == now[0]
        async with engine.connect() as conn:
            queued = (await conn.execute(select(t.mail_queue))).all()
        assert [m.notice_account_id for m in queued] == [idle]  # the new notice only
    finally:
        await engine.dispose()


async def test_a_notice_still_queued_holds_the_deletion(database_url: str) -> None:
    engine = make_engine(database_url)
    now = [START]
    queue = SqlMailQueue(engine, CIPHER, index)
    retention = service(engine, now, QueuedMailer(queue, lambda: now[0]))
    try:
        idle = await add_account(engine, "idle", IDLE_SINCE - timedelta(days=1))
        await retention.run()
        # Still in the queue (its sender retries it) a week later: not yet delivered.
        async with engine.begin() as conn:
            await conn.execute(update(t.mail_queue).values(
                created_at=START + PERIODS.inactivity_notice))
        now[0] = START + PERIODS.inactivity_notice
        assert (await retention.run())["inactive_deletions"] == 0
        async with engine.begin() as conn:
            await conn.execute(t.mail_queue.delete())  # sent
        assert (await retention.run())["inactive_deletions"] == 1
        assert (await accounts(engine))[idle].deleted_at == now[0]
    finally:
        await engine.dispose()


async def test_a_never_paid_customer_who_starts_paying_during_the_notice_is_kept(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    now = [START]
    queue = SqlMailQueue(engine, CIPHER, index)
    retention = service(engine, now, QueuedMailer(queue, lambda: now[0]))
    try:
        created = IDLE_SINCE - timedelta(days=1)
        names = ("invoiced", "paying", "idle", "old_invoice")
        ids = {n: await add_account(engine, n, created) for n in names}
        await invoice(engine, ids["old_invoice"], created)  # before the idle stretch
        assert (await retention.run())["inactivity_notices"] == 4
        async with engine.begin() as conn:
            await conn.execute(t.mail_queue.delete())  # delivered
        # During the notice: an invoice created; a payment seen on an old invoice.
        await invoice(engine, ids["invoiced"], START + timedelta(days=2))
        await invoice(engine, ids["paying"], created, payment_seen=START + timedelta(days=3))

        now[0] = START + PERIODS.inactivity_notice
        counts = await retention.run()
        assert counts["inactive_deletions"] == 2
        rows = await accounts(engine)
        assert {n for n in names if rows[ids[n]].deleted_at is None} == {"invoiced", "paying"}
    finally:
        await engine.dispose()


async def test_the_inactive_deletion_reads_the_account_again_under_its_lock(
    database_url: str,
) -> None:
    """Listed as idle, then a login (which clears the notice) before its turn comes."""
    engine = make_engine(database_url)
    now = [START]
    queue = SqlMailQueue(engine, CIPHER, index)
    retention = service(engine, now, QueuedMailer(queue, lambda: now[0]))
    try:
        idle = await add_account(engine, "idle", IDLE_SINCE - timedelta(days=1))
        await retention.run()
        async with engine.begin() as conn:
            await conn.execute(t.mail_queue.delete())
        now[0] = START + PERIODS.inactivity_notice
        async with SqlUnitOfWork(engine, CIPHER) as u:
            await u.accounts.record_login(idle, now[0])
            await u.commit()
        assert not await retention._delete_inactive(idle)
        row = (await accounts(engine))[idle]
        assert row.deleted_at is None and row.deletion_due_at is None
    finally:
        await engine.dispose()
