"""Retention removes exactly the rows past their period, on a real SQLite file and a real
PostgreSQL database, with an injected clock so the boundary is exact."""

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.services.retention import RetentionPeriods, RetentionService

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PERIODS = RetentionPeriods(security_log=timedelta(days=30),
                           idempotency_keys=timedelta(hours=24),
                           delivery_logs=timedelta(days=30),
                           mail_queue=timedelta(hours=24))


async def seed(engine: AsyncEngine) -> None:
    sec, idem, logs = (NOW - PERIODS.security_log, NOW - PERIODS.idempotency_keys,
                       NOW - PERIODS.delivery_logs)
    async with engine.begin() as conn:
        for i, (due, deleted) in enumerate([(NOW, None), (NOW + TICK, None), (None, None)]):
            await conn.execute(insert(t.accounts).values(
                id=f"acc_{i}", email_index=f"ix{i}", email_ct=b"ct", password_hash="h",
                created_at=NOW - timedelta(days=90), deletion_due_at=due, deleted_at=deleted))
        await conn.execute(insert(t.security_log), [
            {"account_id": "acc_2", "event": "old", "ip": "192.0.2.1", "at": sec - TICK},
            {"account_id": "acc_2", "event": "edge", "ip": "192.0.2.1", "at": sec},
            {"account_id": "acc_2", "event": "new", "ip": "192.0.2.1", "at": NOW}])
        # executemany takes its columns from the first row: every row names them all.
        await conn.execute(insert(t.sessions), [
            {"id": sid, "account_id": "acc_2", "created_at": NOW - timedelta(hours=9),
             "expires_at": expires, "revoked_at": revoked}
            for sid, expires, revoked in (
                ("s_expired", NOW - TICK, None), ("s_edge", NOW, None),
                ("s_revoked", NOW + timedelta(hours=8), NOW - TICK),
                ("s_live", NOW + timedelta(hours=8), None))])
        await conn.execute(insert(t.idempotency_keys), [
            {"scope": "k", "key": key, "fingerprint": "f", "state": "done", "owner": "o",
             "created_at": at, "updated_at": at}
            for key, at in (("old", idem - TICK), ("edge", idem), ("new", NOW))])
        await conn.execute(insert(t.webhook_endpoints).values(
            id="we_1", url="http://127.0.0.1:9/", secret_ct=b"x", event_types=[],
            description="", enabled=True, created_at=NOW - timedelta(days=60)))
        for name, at, status in (("old", logs - TICK, "succeeded"), ("edge", logs, "succeeded"),
                                 ("stuck", logs - TICK, "pending")):
            await conn.execute(insert(t.events).values(
                id=f"evt_{name}", type="account.created", account_id="acc_2", body="{}",
                created_at=at))
            await conn.execute(insert(t.deliveries).values(
                id=f"dl_{name}", event_id=f"evt_{name}", endpoint_id="we_1", status=status,
                attempts=1, created_at=at, updated_at=at))
            await conn.execute(insert(t.delivery_attempts).values(
                delivery_id=f"dl_{name}", at=at, status_code=200, latency_ms=3))
        # Queued mail: dropped past its maximum age, and with the account it is for.
        mail = NOW - PERIODS.mail_queue
        await conn.execute(insert(t.mail_queue), [
            {"id": f"mail_{name}", "recipient_index": index, "recipient_ct": b"x",
             "subject_ct": b"x", "body_ct": b"x", "attempts": 3, "next_attempt_at": NOW,
             "created_at": at}
            for name, index, at in (("old", "ix2", mail - TICK), ("edge", "ix2", mail),
                                    ("new", "ix2", NOW), ("erased", "ix0", NOW))])


async def names(engine: AsyncEngine, column: object) -> set[str]:
    async with engine.connect() as conn:
        return {str(v) for v in (await conn.execute(select(column))).scalars()}  # type: ignore[call-overload]


async def test_retention_removes_exactly_what_is_past_its_period(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    service = RetentionService(lambda: SqlUnitOfWork(engine, cipher), lambda: NOW,
                               periods=PERIODS)
    try:
        await seed(engine)
        counted = await service.run(dry_run=True)
        assert counted == {"security_log": 1, "sessions": 2, "idempotency_keys": 1,
                           "delivery_logs": 2, "mail_queue": 1, "audit_log": 0,
                           "login_throttle": 0, "disabled_endpoint_events": 0,
                           "account_deletions": 1, "ledger_reapplied": 0,
                           "inactivity_notices": 0,
                           "inactive_deletions": 0, "erasure_failures": 0,
                           "legal_requests": 0, "deletion_ledger": 0, "prune_failures": 0,
                           "flush_owed": 0, "stage_failures": 0, "refund_addresses": 0,
                           "refund_address_failures": 0, "cash_tokens": 0,
                           "cash_token_failures": 0}
        assert await names(engine, t.security_log.c.event) == {"old", "edge", "new"}

        removed = await service.run()
        assert removed == counted
        assert await names(engine, t.security_log.c.event) == {"edge", "new"}
        assert await names(engine, t.sessions.c.id) == {"s_edge", "s_live"}
        assert await names(engine, t.idempotency_keys.c.key) == {"edge", "new"}
        # The pending delivery keeps its event; only its attempt log went.
        assert await names(engine, t.delivery_attempts.c.delivery_id) == {"dl_edge"}
        # (plus the new delivery of account.deleted below)
        deliveries = await names(engine, t.deliveries.c.id)
        assert {"dl_edge", "dl_stuck"} <= deliveries and "dl_old" not in deliveries
        assert await names(engine, t.events.c.id) >= {"evt_edge", "evt_stuck"}
        assert "evt_old" not in await names(engine, t.events.c.id)
        assert await names(engine, t.mail_queue.c.id) == {"mail_edge", "mail_new"}
        # Due exactly now: erased. Due a microsecond later: untouched.
        async with engine.connect() as conn:
            rows = {r.id: r for r in await conn.execute(select(t.accounts))}
            deleted_events = (await conn.execute(select(func.count()).select_from(t.events)
                              .where(t.events.c.type == "account.deleted",
                                     t.events.c.account_id == "acc_0"))).scalar_one()
        assert rows["acc_0"].deleted_at == NOW and rows["acc_0"].email_ct == b""
        assert rows["acc_1"].deleted_at is None and rows["acc_1"].email_ct == b"ct"
        assert deleted_events == 1
        assert await service.run() == {k: 0 for k in counted}  # nothing left to do
    finally:
        await engine.dispose()


async def test_retention_covers_the_staff_console(database_url: str) -> None:
    """The staff log is kept like the security log; dead staff sessions go like customers'."""
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    service = RetentionService(lambda: SqlUnitOfWork(engine, cipher), lambda: NOW,
                               periods=PERIODS)
    sec = NOW - PERIODS.security_log
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(t.staff_members).values(
                id="stf_1", name="sam", role="support", password_hash="h",
                created_at=NOW - timedelta(days=90)))
            await conn.execute(insert(t.staff_log), [
                {"staff": "sam", "action": action, "subject": None, "ip_ct": None,
                 "at": at} for action, at in (("old", sec - TICK), ("edge", sec),
                                              ("new", NOW))])
            await conn.execute(insert(t.staff_sessions), [
                {"id": sid, "token_hash": sid, "staff_id": "stf_1", "enrolled": True,
                 "created_at": NOW - timedelta(hours=2), "expires_at": expires,
                 "last_seen_at": NOW - timedelta(hours=1), "revoked_at": revoked}
                for sid, expires, revoked in (
                    ("expired", NOW - TICK, None), ("revoked", NOW + timedelta(hours=1),
                                                    NOW - TICK),
                    ("live", NOW + timedelta(hours=1), None))])
        counted = await service.run(dry_run=True)
        assert (counted["security_log"], counted["sessions"]) == (1, 2)
        await service.run()
        assert await names(engine, t.staff_log.c.action) == {"edge", "new"}
        assert await names(engine, t.staff_sessions.c.id) == {"live"}
    finally:
        await engine.dispose()


async def test_audit_throttle_and_disabled_endpoint_rows_have_a_period(
        database_url: str) -> None:
    """Issue 16, item 1: audit entries live as long as the account plus a period; throttle
    rows (blind indexes of typed emails) and events stuck on a disabled endpoint go after
    theirs. Each boundary is exact."""
    periods = RetentionPeriods(audit_log_after_deletion=timedelta(days=365),
                               login_throttle=timedelta(hours=24),
                               disabled_endpoint_events=timedelta(days=30))
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    service = RetentionService(lambda: SqlUnitOfWork(engine, cipher), lambda: NOW,
                               periods=periods)
    audit_cut = NOW - periods.audit_log_after_deletion
    throttle_cut = NOW - periods.login_throttle
    stuck_cut = NOW - periods.disabled_endpoint_events
    try:
        async with engine.begin() as conn:
            for name, deleted in (("live", None), ("long_gone", audit_cut - TICK),
                                  ("edge", audit_cut), ("recent", NOW - timedelta(days=1))):
                await conn.execute(insert(t.accounts).values(
                    id=f"acc_{name}", email_index=f"ix_{name}", email_ct=b"ct",
                    password_hash="h", created_at=NOW - timedelta(days=900),
                    deleted_at=deleted))
            await conn.execute(insert(t.audit_log), [
                {"at": NOW - timedelta(days=800), "actor": "cli:op", "account_id": acc,
                 "action": "export", "fields": ["all"], "reason": "r"}
                for acc in ("acc_live", "acc_long_gone", "acc_edge", "acc_recent",
                            "acc_never_existed")])
            await conn.execute(insert(t.login_throttle), [
                {"key": key, "failures": 3, "window_started_at": at, "locked_until": lock}
                for key, at, lock in (
                    ("old", throttle_cut - TICK, None),
                    ("old_unlocked", throttle_cut - TICK, NOW - TICK),
                    ("edge", throttle_cut, None),
                    ("old_but_locked", throttle_cut - TICK, NOW + timedelta(minutes=5)),
                    ("new", NOW, None))])
            await conn.execute(insert(t.webhook_endpoints), [
                {"id": eid, "url": "https://hooks.example/", "secret_ct": b"x",
                 "event_types": [], "description": "", "enabled": enabled,
                 "created_at": NOW - timedelta(days=90)}
                for eid, enabled in (("we_off", False), ("we_on", True))])
            for name, endpoint, at in (("stuck", "we_off", stuck_cut - TICK),
                                       ("stuck_edge", "we_off", stuck_cut),
                                       ("waiting", "we_on", stuck_cut - TICK)):
                await conn.execute(insert(t.events).values(
                    id=f"evt_{name}", type="invoice.paid", account_id="acc_live", body="{}",
                    created_at=at))
                await conn.execute(insert(t.deliveries).values(
                    id=f"dl_{name}", event_id=f"evt_{name}", endpoint_id=endpoint,
                    status="pending", attempts=2, created_at=at, updated_at=at))
                await conn.execute(insert(t.delivery_attempts).values(
                    delivery_id=f"dl_{name}", at=NOW, status_code=500, latency_ms=3))

        counted = await service.run(dry_run=True)
        assert (counted["audit_log"], counted["login_throttle"],
                counted["disabled_endpoint_events"]) == (2, 2, 1)
        assert await names(engine, t.login_throttle.c.key) == {
            "old", "old_unlocked", "edge", "old_but_locked", "new"}
        removed = await service.run()
        assert (removed["audit_log"], removed["login_throttle"],
                removed["disabled_endpoint_events"]) == (2, 2, 1)
        assert await names(engine, t.audit_log.c.account_id) == {
            "acc_live", "acc_edge", "acc_recent"}
        assert await names(engine, t.login_throttle.c.key) == {"edge", "old_but_locked", "new"}
        assert await names(engine, t.events.c.id) == {"evt_stuck_edge", "evt_waiting"}
        assert await names(engine, t.deliveries.c.id) == {"dl_stuck_edge", "dl_waiting"}
        assert await names(engine, t.delivery_attempts.c.delivery_id) == {
            "dl_stuck_edge", "dl_waiting"}
    finally:
        await engine.dispose()
