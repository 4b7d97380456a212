"""Issue 28, item 9: the registers shrink. Closed legal requests (the customers may be
told) go [retention] legal_request_days after the later of their recording and the
lifting of their hold; a held request stays. Deletion-ledger entries go
deletion_ledger_days after the erasure (the configuration keeps that past every backup
that could restore the account). Both are pruned by the retention run, each on its own:
one that cannot be pruned stops neither the other nor the erasures, and is counted and
retried. SQLite and PostgreSQL, with a real ledger file."""

import errno
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.adapters.fields import FieldCipher
from gateway.adapters.metrics import Metrics
from gateway.services.ports import LegalRequest
from gateway.services.retention import RetentionPeriods, RetentionService

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PERIODS = RetentionPeriods(legal_requests=timedelta(days=1095),
                           deletion_ledger=timedelta(days=60))
LEGAL_CUT = NOW - PERIODS.legal_requests
LEDGER_CUT = NOW - PERIODS.deletion_ledger
CIPHER = FieldCipher([("t", os.urandom(32))])


def request(rid: str, created: datetime, notify: bool, lifted: datetime | None,
            mailed: bool = True, accounts: tuple[str, ...] = ("acc_1", "acc_2"),
            ) -> LegalRequest:
    """Mailed (unless `mailed` is false) as soon as the customers may be told."""
    mailed_at = (lifted or (created if notify else None)) if mailed else None
    return LegalRequest(rid, created - timedelta(days=2), f"order {rid}", notify, lifted,
                        "cli:ops", created, accounts, mailed_at)


# id -> (recorded, notification allowed from the start, hold lifted at), pruned?
REQUESTS = {
    "lr_old_open": ((LEGAL_CUT - TICK, True, None), True),
    "lr_edge": ((LEGAL_CUT, True, None), False),
    "lr_held": ((LEGAL_CUT - timedelta(days=2000), False, None), False),
    "lr_lifted_late": ((LEGAL_CUT - timedelta(days=500), False, LEGAL_CUT), False),
    "lr_lifted_long_ago": ((LEGAL_CUT - timedelta(days=500), False, LEGAL_CUT - TICK), True),
    "lr_new": ((NOW - timedelta(days=1), True, None), False),
}


async def seed(engine: AsyncEngine, ledger: FileDeletionLedger) -> None:
    async with engine.begin() as conn:
        for i in (1, 2):
            await conn.execute(insert(t.accounts).values(
                id=f"acc_{i}", email_index=f"ix{i}", email_ct=b"ct", password_hash="h",
                created_at=NOW - timedelta(days=4000)))
        # Due for erasure: the run erases it whatever the registers do.
        await conn.execute(insert(t.accounts).values(
            id="acc_due", email_index="ixd", email_ct=b"ct", password_hash="h",
            created_at=NOW - timedelta(days=90), deletion_due_at=NOW - timedelta(days=1)))
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        for rid, ((created, notify, lifted), _pruned) in REQUESTS.items():
            await uow.legal.add(request(rid, created, notify, lifted))
        await uow.commit()
    for account_id, at in (("acc_x", LEDGER_CUT - TICK), ("acc_edge", LEDGER_CUT),
                           ("acc_y", NOW - timedelta(days=1))):
        ledger.record(account_id, at)
    # A second line for an account first erased long ago goes with the first.
    ledger.record("acc_x", NOW - timedelta(days=2))


async def registers(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    async with engine.connect() as conn:
        requests = set((await conn.execute(select(t.legal_requests.c.id))).scalars())
        linked = set((await conn.execute(
            select(t.legal_request_accounts.c.request_id))).scalars())
    return requests, linked


def metric(metrics: Metrics, name: str) -> float:
    line = next(x for x in metrics.render().decode().splitlines()
                if x.startswith(name + " "))
    return float(line.split()[1])


async def test_closed_legal_requests_and_old_ledger_entries_are_pruned(
    database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(database_url)
    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    service = RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                               periods=PERIODS, ledger=ledger)
    try:
        await seed(engine, ledger)
        kept = {rid for rid, (_r, pruned) in REQUESTS.items() if not pruned}
        dry = await service.run(dry_run=True)
        assert (dry["legal_requests"], dry["deletion_ledger"]) == (2, 1)
        assert (await registers(engine))[0] == set(REQUESTS)
        assert set(ledger.entries()) == {"acc_x", "acc_edge", "acc_y"}

        counts = await service.run()
        assert (counts["legal_requests"], counts["deletion_ledger"],
                counts["prune_failures"]) == (2, 1, 0)
        assert await registers(engine) == (kept, kept)
        # The erasure of this run is in the ledger; the old account is gone, every line.
        assert set(ledger.entries()) == {"acc_edge", "acc_y", "acc_due"}
        assert "acc_x" not in ledger.path.read_text()
        ledger.record("acc_z", NOW)  # appends go on after a prune
        assert set(ledger.entries()) == {"acc_edge", "acc_y", "acc_due", "acc_z"}
        assert (await service.run())["legal_requests"] == 0
    finally:
        await engine.dispose()


class UnprunableLedger:
    """The real ledger, except that rewriting it fails every time (a read-only file
    system, a full disk)."""

    def __init__(self, ledger: FileDeletionLedger) -> None:
        self.ledger = ledger

    def record(self, account_id: str, at: datetime) -> None:
        self.ledger.record(account_id, at)

    def entries(self) -> dict[str, datetime]:
        return self.ledger.entries()

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(self.ledger.path))


class FailingLegal:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def prune(self, closed_before: datetime, dry_run: bool) -> int:
        raise RuntimeError("lock timeout")


class LegalFailingUow(SqlUnitOfWork):
    def _start(self, conn: AsyncConnection) -> None:
        super()._start(conn)
        self.legal = FailingLegal(self.legal)  # type: ignore[assignment]


async def test_a_register_that_cannot_be_pruned_stops_nothing_else(
    database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(database_url)
    real = FileDeletionLedger(tmp_path / "ledger.txt")
    metrics = Metrics()
    try:
        await seed(engine, real)
        # The ledger cannot be pruned, every run: the legal register still is, the due
        # account is still erased (and recorded), and the failure is counted each time.
        stuck = RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                                 periods=PERIODS, ledger=UnprunableLedger(real))
        for _run in (1, 2):
            counts = await stuck.run()
            metrics.retention_run(counts)
            assert counts["prune_failures"] == 1
            assert metric(metrics, "gateway_retention_register_prune_failing") == 1
        assert counts["erasure_failures"] == 0
        kept = {rid for rid, (_r, pruned) in REQUESTS.items() if not pruned}
        assert (await registers(engine))[0] == kept
        assert set(real.entries()) == {"acc_x", "acc_edge", "acc_y", "acc_due"}

        # Now the legal register fails: the ledger is pruned all the same.
        async with SqlUnitOfWork(engine, CIPHER) as uow:
            await uow.legal.add(request("lr_again", LEGAL_CUT - TICK, True, None))
            await uow.commit()
        other = RetentionService(lambda: LegalFailingUow(engine, CIPHER), lambda: NOW,
                                 periods=PERIODS, ledger=real)
        counts = await other.run()
        metrics.retention_run(counts)
        assert (counts["prune_failures"], counts["deletion_ledger"]) == (1, 1)
        assert "lr_again" in (await registers(engine))[0]
        assert set(real.entries()) == {"acc_edge", "acc_y", "acc_due"}

        # Both work again: the next run finishes the job and the gauge goes back to 0.
        healthy = RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                                   periods=PERIODS, ledger=real)
        counts = await healthy.run()
        metrics.retention_run(counts)
        assert (counts["prune_failures"], counts["legal_requests"]) == (0, 1)
        assert metric(metrics, "gateway_retention_register_prune_failing") == 0
    finally:
        await engine.dispose()


def test_appends_during_a_prune_are_never_lost(tmp_path: Path) -> None:
    """A prune rewrites the ledger and replaces it: an erasure recorded meanwhile (by the
    retention run of another instance, or `gateway backup restore`) must land in the new
    file, not in the one replaced. Both take the ledger's lock."""
    import threading

    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    for i in range(200):
        ledger.record(f"acc_old{i}", LEDGER_CUT - timedelta(days=1))
    done = threading.Event()

    def erase_many() -> None:
        for i in range(300):
            FileDeletionLedger(ledger.path).record(f"acc_new{i}", NOW)
        done.set()

    writer = threading.Thread(target=erase_many)
    writer.start()
    pruned = 0
    while not done.is_set():
        pruned += ledger.prune(LEDGER_CUT)
        ledger.record("acc_old_again", LEDGER_CUT - timedelta(days=1))
    writer.join()
    pruned += ledger.prune(LEDGER_CUT)
    assert set(ledger.entries()) == {f"acc_new{i}" for i in range(300)}
    assert pruned >= 200


async def test_a_request_never_mailed_is_kept_until_its_customers_are_told(
    database_url: str, tmp_path: Path,
) -> None:
    """Recorded (or lifted) while no [smtp] was configured: its customers may be told
    but never were. It outlives the register's period until `gateway legal
    notify-pending` mails them, or until no account it concerns is left to tell."""
    engine = make_engine(database_url)
    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    service = RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                               periods=PERIODS, ledger=ledger)
    old = LEGAL_CUT - timedelta(days=10)
    try:
        await seed(engine, ledger)
        async with engine.begin() as conn:
            await conn.execute(insert(t.accounts).values(
                id="acc_erased", email_index="ixe", email_ct=b"", password_hash="h",
                created_at=NOW - timedelta(days=4000), deleted_at=NOW - timedelta(days=5)))
        async with SqlUnitOfWork(engine, CIPHER) as uow:
            for rid, notify, lifted, accounts in (
                    ("lr_unmailed", True, None, ("acc_1", "acc_erased")),
                    ("lr_unmailed_lifted", False, old, ("acc_2",)),
                    ("lr_unmailed_nobody_left", True, None, ("acc_erased",))):
                await uow.legal.add(request(rid, old, notify, lifted, mailed=False,
                                            accounts=accounts))
            await uow.commit()
        await service.run()
        requests, _linked = await registers(engine)
        assert {"lr_unmailed", "lr_unmailed_lifted"} <= requests
        assert "lr_unmailed_nobody_left" not in requests
        assert "lr_old_open" not in requests  # mailed: pruned as before

        async with SqlUnitOfWork(engine, CIPHER) as uow:  # mailed at last
            for rid in ("lr_unmailed", "lr_unmailed_lifted"):
                assert await uow.legal.mark_notice_queued(rid, NOW)
            await uow.commit()
        # Kept the register's period from the mail, as from a recording or a lift.
        await service.run()
        assert {"lr_unmailed", "lr_unmailed_lifted"} <= (await registers(engine))[0]
        later = RetentionService(lambda: SqlUnitOfWork(engine, CIPHER),
                                 lambda: NOW + PERIODS.legal_requests + TICK, periods=PERIODS,
                                 ledger=ledger)
        await later.run()
        assert not {"lr_unmailed", "lr_unmailed_lifted"} & (await registers(engine))[0]
    finally:
        await engine.dispose()
