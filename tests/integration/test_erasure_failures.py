"""Issue 28, item 1: deletion does not stop silently. Each due account is erased in a
transaction of its own: one that fails (here, its deletion-ledger entry cannot be
written) holds back no other, stays due, is retried by the next run, and is counted,
alerted on and shown where operators look (the metric, `gateway doctor` and the admin
page read `gateway/promise_checks.py`). On a real SQLite file and a real PostgreSQL
database, with a real ledger file."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.adapters.fields import FieldCipher
from gateway.adapters.metrics import Metrics
from gateway.config import load
from gateway.promise_checks import erasure_check, ledger_check, promise_checks
from gateway.services.retention import RetentionPeriods, RetentionService
from tests.support.failing_ledger import FailingFor
from tests.support.keys import b64key
from tests.unit.test_config import base_env

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0


async def seed(engine: AsyncEngine, ids: list[str]) -> None:
    async with engine.begin() as conn:
        for i, account_id in enumerate(ids):
            await conn.execute(insert(t.accounts).values(
                id=account_id, email_index=f"ix{i}", email_ct=b"ct", password_hash="h",
                created_at=NOW - timedelta(days=90),
                deletion_due_at=NOW - timedelta(days=1)))
        await conn.execute(insert(t.security_log).values(
            account_id=None, event="old", ip=None, at=NOW - timedelta(days=31)))


async def erased(engine: AsyncEngine) -> dict[str, bool]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.accounts))).all()
    for r in rows:  # erased means erased: the deletion time and the email both
        assert (r.deleted_at is None) == (bytes(r.email_ct) == b"ct"), r.id
    return {r.id: r.deleted_at is not None for r in rows}


def metric(metrics: Metrics, name: str) -> float:
    line = next(x for x in metrics.render().decode().splitlines()
                if x.startswith(name + " "))
    return float(line.split()[1])


def service(engine: AsyncEngine, ledger: object) -> RetentionService:
    cipher = FieldCipher([("t", os.urandom(32))])
    return RetentionService(lambda: SqlUnitOfWork(engine, cipher), lambda: NOW,
                            periods=RetentionPeriods(), ledger=ledger)  # type: ignore[arg-type]


async def test_one_failing_erasure_holds_back_no_other_and_is_retried(
    database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(database_url)
    ledger = FileDeletionLedger(tmp_path / "ledger.txt")
    flaky = FailingFor(ledger, {"acc_b"})
    retention, metrics = service(engine, flaky), Metrics()
    try:
        await seed(engine, ["acc_a", "acc_b", "acc_c"])
        counts = await retention.run()
        metrics.retention_run(counts)
        assert await erased(engine) == {"acc_a": True, "acc_b": False, "acc_c": True}
        assert (counts["account_deletions"], counts["erasure_failures"]) == (2, 1)
        assert set(ledger.entries()) == {"acc_a", "acc_c"}
        # Visible: the metric the alert rule reads, and the check doctor and the admin
        # page show (acc_b was due a day ago: overdue).
        assert metric(metrics, "gateway_retention_erasure_failures_total") == 1
        assert metric(metrics, "gateway_retention_erasures_failing") == 1
        check = await erasure_check(retention, NOW, HOUR)
        assert not check.ok and "1 overdue" in check.says and "acc_b" in check.says

        flaky.accounts.clear()  # the disk is back: the next run erases it
        counts = await retention.run()
        metrics.retention_run(counts)
        assert (counts["account_deletions"], counts["erasure_failures"]) == (1, 0)
        assert await erased(engine) == {"acc_a": True, "acc_b": True, "acc_c": True}
        assert set(ledger.entries()) == {"acc_a", "acc_b", "acc_c"}
        assert metric(metrics, "gateway_retention_erasures_failing") == 0
        assert (await erasure_check(retention, NOW, HOUR)).ok
    finally:
        await engine.dispose()


async def test_a_ledger_that_cannot_be_written_is_visible_and_the_rest_goes_on(
    database_url: str, tmp_path: Path,
) -> None:
    """Its default place is inside the backup folder: a folder that is not one (here a
    file stands where it should be) fails every erasure, every run."""
    blocker = tmp_path / "backups"
    blocker.write_text("not a folder")
    ledger = FileDeletionLedger(blocker / "deletion-ledger.txt")
    engine = make_engine(database_url)
    retention, metrics = service(engine, ledger), Metrics()
    try:
        await seed(engine, ["acc_a", "acc_b"])
        for run in (1, 2):
            counts = await retention.run()  # no exception: the job goes on
            metrics.retention_run(counts)
            # Both erasures and the re-application of the unreadable ledger failed.
            assert (counts["account_deletions"], counts["erasure_failures"]) == (0, 3)
            assert metric(metrics, "gateway_retention_erasure_failures_total") == 3 * run
        assert await erased(engine) == {"acc_a": False, "acc_b": False}
        # The rest of the retention promise is kept all the same.
        async with engine.connect() as conn:
            assert (await conn.execute(select(t.security_log))).all() == []
        ledger_state = ledger_check(ledger.path, True)
        assert not ledger_state.ok and "is not a directory" in ledger_state.says
        overdue = await erasure_check(retention, NOW, HOUR)
        assert not overdue.ok and "2 overdue" in overdue.says
    finally:
        await engine.dispose()


async def test_no_ledger_while_backups_can_be_written_is_a_problem(
    database_url: str, tmp_path: Path,
) -> None:
    """Review of issue 28: with a backup key but neither `[backup] dir` nor
    `deletion_ledger`, backups can be written (`gateway backup create --out`) and
    restored, and nothing would re-apply the erasures: doctor and the admin page (both
    read `promise_checks`) said ok."""
    env = {k: v for k, v in base_env(tmp_path).items() if not k.startswith("GATEWAY_BACKUP__")}
    env["GATEWAY_DATABASE__URL"] = database_url
    engine = make_engine(database_url)
    retention = service(engine, None)
    try:
        no_backups = load(None, env)
        assert no_backups.backup.key is None and no_backups.backup.ledger_path() is None
        with_key = load(None, env | {"GATEWAY_BACKUP__KEY": b64key()})
        with_ledger = load(None, env | {"GATEWAY_BACKUP__KEY": b64key(),
                                        "GATEWAY_BACKUP__DELETION_LEDGER":
                                        str(tmp_path / "ledger.txt")})
        states = {}
        for name, settings in (("none", no_backups), ("key", with_key),
                               ("ledger", with_ledger)):
            checks = await promise_checks(settings, retention, NOW, lambda _: [])
            states[name] = next(c for c in checks if c.part == "deletion ledger")
    finally:
        await engine.dispose()
    assert states["none"].ok, states["none"]
    assert not states["key"].ok and "brings erased customers back" in states["key"].says
    assert states["ledger"].ok and "can be written" in states["ledger"].says
