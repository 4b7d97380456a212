"""Issue 16, item 10: security-log addresses and access-audit reasons are stored
encrypted (SQLite and PostgreSQL); rows written in clear before this version are
encrypted by the retention task's next run and their plain column cleared."""

import os
from datetime import UTC, datetime

from sqlalchemy import insert, select

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import AuditEntry
from gateway.services.retention import RetentionPeriods, RetentionService

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_addresses_and_audit_reasons_are_ciphertext_at_rest(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    uow = lambda: SqlUnitOfWork(engine, cipher)  # noqa: E731
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(t.accounts).values(
                id="acc_1", email_index="ix", email_ct=b"ct", password_hash="h",
                created_at=NOW))
            # Written by an older version: in clear.
            await conn.execute(insert(t.security_log).values(
                account_id="acc_1", event="login_failed", ip="198.51.100.7", at=NOW))
            await conn.execute(insert(t.audit_log).values(
                at=NOW, actor="cli:op", account_id="acc_1", action="export",
                fields=["all"], reason="old case 17 for Jane Roe"))
        async with uow() as u:
            await u.security_log.add("acc_1", "login_succeeded", "203.0.113.9", NOW)
            await u.security_log.add(None, "login_failed", "2001:db8::5", NOW)
            await u.audit.add(AuditEntry(NOW, "cli:op", "acc_1", "read_account", ("email",),
                                         "ticket 42 from John Doe"))
            await u.commit()

        async def raw() -> str:
            async with engine.connect() as conn:
                rows = [*await conn.execute(select(t.security_log)),
                        *await conn.execute(select(t.audit_log))]
            return repr([tuple(r) for r in rows])

        before = await raw()
        for plain in ("203.0.113.9", "2001:db8::5", "John Doe"):
            assert plain not in before
        assert "198.51.100.7" in before and "Jane Roe" in before  # legacy, until retention

        await RetentionService(uow, lambda: NOW, periods=RetentionPeriods()).run()
        after = await raw()
        for plain in ("198.51.100.7", "Jane Roe", "203.0.113.9", "John Doe"):
            assert plain not in after
        async with uow() as u:
            ips = [e.ip for e in await u.security_log.for_account("acc_1")]
            reasons = [e.reason for e in await u.audit.for_account("acc_1")]
        assert sorted(ips) == ["198.51.100.7", "203.0.113.9"]  # readable for review
        assert reasons == ["old case 17 for Jane Roe", "ticket 42 from John Doe"]
        async with engine.connect() as conn:
            assert set((await conn.execute(select(t.security_log.c.ip))).scalars()) == {None}
            assert set((await conn.execute(select(t.audit_log.c.reason))).scalars()) == {None}
    finally:
        await engine.dispose()
