"""`rotate-data` while something else writes.

1. PostgreSQL: a row of the batch is rewritten (to the current format) by the gateway
   while rotate-data waits for its lock: the batch is still full (LIMIT sits above the
   row locking), so the table is not ended early, and the gateway's value is kept.
2. Both databases: a value under the old key written behind the keyset cursor (an
   instance not yet restarted, a scheduled CLI with the old configuration) is found by
   counting again and rewritten: the run never says every value is under the newest key
   while one is not.
"""

import asyncio
import os
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import update

from gateway.adapters.db import encrypted
from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.field_rotation import (
    RotationPolicy,
    count_stale,
    rotate_data,
    rotate_table,
)
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.ports import Profile

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = ("k1", os.urandom(32))
NEW = ("k2", os.urandom(32))


async def accounts_under_old_key(url: str, n: int) -> None:
    engine = make_engine(url)
    try:
        async with SqlUnitOfWork(engine, FieldCipher([OLD])) as uow:
            for i in range(n):
                await uow.accounts.add(Account(f"acc_{i}", NOW),
                                       Profile(f"user{i}@example.org", None, None),
                                       f"ix{i}", "hash", "v1")
            await uow.commit()
    finally:
        await engine.dispose()


def test_postgres_a_row_rewritten_while_locked_does_not_end_the_table_early(
    tmp_path: object,
) -> None:
    from tests.support.databases import fresh_database

    with fresh_database("postgresql", tmp_path) as url:  # type: ignore[arg-type]
        asyncio.run(accounts_under_old_key(url, 5))
        asyncio.run(_race(url))


async def _race(url: str) -> None:
    cipher = FieldCipher([NEW, OLD])
    engine = make_engine(url)
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # The gateway (already on the new key) saves acc_0's profile and has not committed.
        tx = raw.transaction()
        await tx.start()
        fresh = cipher.encrypt("new@example.org", encrypted.ACCOUNT_EMAIL.ref("acc_0"))
        await raw.execute("UPDATE accounts SET email_ct = $1 WHERE id = 'acc_0'", fresh)
        cols = encrypted.by_table()["accounts"]
        task = asyncio.create_task(rotate_table(engine, cipher, "accounts", cols,
                                                RotationPolicy(batch_size=2)))
        watcher = await asyncpg.connect(url.replace("postgresql+asyncpg://",
                                                    "postgresql://"))
        try:
            deadline = asyncio.get_running_loop().time() + 10
            while not await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"):
                assert asyncio.get_running_loop().time() < deadline, "never blocked"
                await asyncio.sleep(0.02)
        finally:
            await watcher.close()
        await tx.commit()
        report = await task
        assert report.failures == []
        # acc_1 .. acc_4 were all stale: every one must have been rewritten.
        assert (await count_stale(engine, cipher))["accounts"] == 0
        assert report.values == 4
        # And the gateway's write was not overwritten by the rotation's (no lost update).
        blob = await raw.fetchval("SELECT email_ct FROM accounts WHERE id = 'acc_0'")
        assert cipher.decrypt(blob, encrypted.ACCOUNT_EMAIL.ref("acc_0")) == "new@example.org"
    finally:
        await raw.close()
        await engine.dispose()


def test_the_run_does_not_claim_completion_while_stale_values_remain(
    database_url: str,
) -> None:
    asyncio.run(accounts_under_old_key(database_url, 4))
    asyncio.run(_behind_the_cursor(database_url))


async def _behind_the_cursor(url: str) -> None:
    import contextlib
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from gateway.adapters.db import field_rotation

    cipher = FieldCipher([NEW, OLD])
    engine = make_engine(url)
    lagging = FieldCipher([OLD])  # an instance not yet restarted with the new key
    original = field_rotation.write_transaction
    batches = 0

    @contextlib.asynccontextmanager
    async def then_write_behind(eng: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        nonlocal batches
        async with original(eng) as conn:
            yield conn
        batches += 1
        if batches == 1:  # acc_0 and acc_1 done; acc_0 written again under the old key
            async with engine.begin() as other:
                await other.execute(update(t.accounts).where(t.accounts.c.id == "acc_0")
                                    .values(email_ct=lagging.encrypt(
                                        "late@example.org",
                                        encrypted.ACCOUNT_EMAIL.ref("acc_0"))))

    field_rotation.write_transaction = then_write_behind  # type: ignore[assignment]
    try:
        reports = await rotate_data(engine, cipher, RotationPolicy(batch_size=2))
        assert batches >= 2
        # The command prints "every encrypted value is under data key 'k2'" (and exits 0)
        # when no report has a failure: that must then be true.
        assert not any(r.failures for r in reports)
        assert sum((await count_stale(engine, cipher)).values()) == 0
    finally:
        field_rotation.write_transaction = original
        await engine.dispose()
