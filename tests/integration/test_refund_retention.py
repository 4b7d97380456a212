"""Retention of refund addresses (docs/privacy.md, docs/refunds.md) on SQLite and
PostgreSQL: the address and the Monero tx key of a refund are erased `[retention]
refund_address_days` after it ended, and at once when its account is erased; an open
refund keeps them. Refund by refund: one that cannot be erased holds back no other, is
counted, and is erased at the next run."""

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db.encrypted import REFUND_ADDRESS, REFUND_TX_KEY, REFUND_URI
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.refunds import SqlRefunds
from gateway.adapters.db.tables import accounts, refund_watches, refunds
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.services.retention import RetentionPeriods, RetentionService

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CIPHER = FieldCipher([("t", os.urandom(32))])
PERIODS = RetentionPeriods(refund_addresses=timedelta(days=30))
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)
FAILING = "rfd_old_2"


class FailingRefunds(SqlRefunds):
    async def erase_address(self, refund_id: str, now: datetime) -> bool:
        if refund_id == FAILING:
            raise RuntimeError("a lock timeout, say")
        return await super().erase_address(refund_id, now)


class FailingUow(SqlUnitOfWork):
    def _start(self, conn: AsyncConnection) -> None:
        super()._start(conn)
        self.refunds = FailingRefunds(conn, CIPHER)


def row(rid: str, account: str, status: str, ended: datetime | None,
        tx_key: bool = False) -> dict[str, Any]:
    return {"id": rid, "account_id": account, "status": status, "amount_minor": 100,
            "currency": "EUR", "coin": "XMR", "approvals_needed": 1,
            "address_ct": CIPHER.encrypt("4address", REFUND_ADDRESS.ref(rid)),
            "tx_key_ct": (CIPHER.encrypt("key", REFUND_TX_KEY.ref(rid)) if tx_key else None),
            "uri_ct": CIPHER.encrypt("monero:4address", REFUND_URI.ref(rid)),
            "txid": "ab" * 32 if status == "completed" else None,
            "requested_at": OLD - timedelta(days=1), "decided_at": ended,
            "completed_at": ended if status == "completed" else None}


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for aid, deleted in (("acc_a", None), ("acc_gone", NOW)):
            await conn.execute(insert(accounts).values(
                id=aid, email_index=aid, email_ct=b"x", password_hash="x",
                created_at=OLD, deleted_at=deleted))
        await conn.execute(insert(refunds), [
            row("rfd_old_1", "acc_a", "completed", OLD, tx_key=True),
            row(FAILING, "acc_a", "refused", OLD),
            row("rfd_old_3", "acc_a", "cancelled", OLD),
            row("rfd_recent", "acc_a", "completed", RECENT, tx_key=True),
            row("rfd_open", "acc_a", "approved", OLD),
            row("rfd_erased_account", "acc_gone", "requested", None),
            # On its way when the account went: kept until it is final.
            row("rfd_gone_paying", "acc_gone", "sent", None)])
        # Approved ones were watched on the chain: the watched form of the address too.
        await conn.execute(insert(refund_watches), [
            {"refund_id": rid, "account_id": "acc_a", "coin": "LTC", "address_space": "LTC",
             "match_key_ct": b"sealed", "match_index": "ix-" + rid, "amount": 1,
             "confirmations_required": 3, "state": "completed", "created_at": OLD}
            for rid in ("rfd_old_1", "rfd_recent")])


async def held(engine: AsyncEngine) -> dict[str, tuple[bool, bool, bool]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(refunds.c.id, refunds.c.address_ct,
                                          refunds.c.tx_key_ct, refunds.c.erased_at,
                                          refunds.c.uri_ct))).all()
        watched = {w.refund_id: (w.match_key_ct, w.match_index) for w in (await conn.execute(
            select(refund_watches.c.refund_id, refund_watches.c.match_key_ct,
                   refund_watches.c.match_index))).all()}
    # The payment request and the watched form of the address go with the address.
    assert all((r.uri_ct is None) == (r.address_ct is None) for r in rows)
    for r in rows:
        if r.id in watched:
            assert (watched[r.id] == (None, None)) == (r.address_ct is None), r.id
    return {r.id: (r.address_ct is not None, r.tx_key_ct is not None,
                   r.erased_at is not None) for r in rows}


async def test_refund_addresses_go_after_their_period_one_by_one(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await seed(engine)
        dry = await RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                                     periods=PERIODS).run(dry_run=True)
        assert dry["refund_addresses"] == 4
        assert all(address for address, _, _ in (await held(engine)).values())

        counts = await RetentionService(lambda: FailingUow(engine, CIPHER), lambda: NOW,
                                        periods=PERIODS).run()
        assert (counts["refund_addresses"], counts["refund_address_failures"]) == (3, 1)
        assert counts["stage_failures"] == 0
        assert await held(engine) == {
            "rfd_old_1": (False, False, True), FAILING: (True, False, False),
            "rfd_old_3": (False, False, True), "rfd_recent": (True, True, False),
            "rfd_open": (True, False, False), "rfd_erased_account": (False, False, True),
            "rfd_gone_paying": (True, False, False)}

        again = await RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                                       periods=PERIODS).run()
        assert (again["refund_addresses"], again["refund_address_failures"]) == (1, 0)
        assert (await held(engine))[FAILING] == (False, False, True)
        # What stays: the amounts, the coin, the txid and the times.
        async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
            done = await uow.refunds.get("rfd_old_1")
        assert done is not None and done.address is None and done.tx_key is None
        assert done.txid == "ab" * 32 and done.amount == 100
        async with engine.begin() as conn:  # the recent one's time comes
            await conn.execute(update(refunds).where(refunds.c.id == "rfd_recent").values(
                completed_at=OLD))
            await conn.execute(update(refunds).where(refunds.c.id == "rfd_gone_paying")
                               .values(status="completed", completed_at=NOW))
        later = await RetentionService(lambda: SqlUnitOfWork(engine, CIPHER), lambda: NOW,
                                       periods=PERIODS).run()
        assert later["refund_addresses"] == 2  # and the erased account's, now final
        assert (await held(engine))["rfd_gone_paying"] == (False, False, True)
    finally:
        await engine.dispose()
