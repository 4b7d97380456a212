"""Issue 16, item 4: on PostgreSQL an erased value must leave the table's file, not linger
in a dead tuple until some vacuum. The test reads the relation file itself (the server
runs on this machine): the erased ciphertext is there after a bare erasure (the control:
the test can see it), and gone once the retention run's clean-up has run."""

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import ERASED_TABLES, erase_residue, make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.ports import Profile
from gateway.services.retention import RetentionPeriods, RetentionService

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def relation_bytes(engine: AsyncEngine, table: str) -> bytes:
    """The table's main file, as on disk after a checkpoint."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("CHECKPOINT")
        data_dir = (await conn.execute(text("SHOW data_directory"))).scalar_one()
        rel = (await conn.execute(text("SELECT pg_relation_filepath(:t)"),
                                  {"t": table})).scalar_one()
    path = Path(data_dir) / rel
    raw = b""
    for segment in sorted(path.parent.glob(path.name + "*")):  # 1 GB segments: .1, .2
        if segment.name == path.name or segment.name[len(path.name):].startswith("."):
            raw += segment.read_bytes()
    assert raw, f"cannot read {path}: the test must run where the server's files are"
    return raw


async def ciphertext(engine: AsyncEngine, account_id: str) -> bytes:
    async with engine.connect() as conn:
        return bytes((await conn.execute(text("SELECT email_ct FROM accounts WHERE id = :a"),
                                         {"a": account_id})).scalar_one())


async def test_erased_ciphertext_leaves_the_relation_file(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    uow = lambda: SqlUnitOfWork(engine, cipher)  # noqa: E731
    try:
        async with uow() as u:
            for i in range(20):
                email = f"person{i}@example.org"
                account = Account(f"acc_{i:02d}", NOW - timedelta(days=40))
                await u.accounts.add(account, Profile(email, f"Name {i}", None),
                                     hashlib.sha256(email.encode()).hexdigest(), "h", "v1")
                await u.security_log.add(account.id, "login_succeeded", f"198.51.100.{i}", NOW)
            await u.commit()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE accounts SET deletion_due_at = :n "
                                    "WHERE id IN ('acc_03', 'acc_19')"), {"n": NOW})
        first, last = await ciphertext(engine, "acc_03"), await ciphertext(engine, "acc_19")
        kept = await ciphertext(engine, "acc_07")
        # Settle the setup's own dead versions, as the live server's autovacuum would.
        assert await erase_residue(engine)
        raw = await relation_bytes(engine, "accounts")
        assert first in raw and last in raw and kept in raw

        # The control: an erasure without the clean-up leaves the old row version behind.
        bare = RetentionService(uow, lambda: NOW, periods=RetentionPeriods())
        assert await bare.erase("acc_03")
        assert await ciphertext(engine, "acc_03") == b""
        assert first in await relation_bytes(engine, "accounts")

        # The retention run erases acc_19 and cleans up after every erasure so far.
        service = RetentionService(uow, lambda: NOW, periods=RetentionPeriods(),
                                   flush=lambda: erase_residue(engine))
        assert (await service.run())["account_deletions"] == 1
        assert await service.flush_owed_since() is None  # done now, not deferred
        raw = await relation_bytes(engine, "accounts")
        assert first not in raw and last not in raw  # the dead tuples are gone
        assert kept in raw  # live rows are untouched
        # The security-log rows the erasure deleted are gone from their file too.
        async with engine.connect() as conn:
            remaining = (await conn.execute(text(
                "SELECT count(*) FROM security_log WHERE account_id IN ('acc_03', 'acc_19')"
            ))).scalar_one()
        assert remaining == 0
        assert "security_log" in ERASED_TABLES
    finally:
        await engine.dispose()
