"""Cash by mail (docs/cash.md) through the service on SQLite and PostgreSQL: a token is
stored only as its keyed hash; an envelope credits its account once, also when two staff
members (two instances) record the same token at once; retention erases used tokens
`keep_used` after use and unused ones at the end of their validity, token by token (one
that fails holds back no other) and as a stage of its own (one that always fails stops
no other stage); erasing an account erases its tokens."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db.cash_tokens import SqlCashTokens
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.tables import accounts, cash_tokens, credit_entries, events
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.domain.accounts import Account
from gateway.domain.cash import CashRules, TokenUnusable
from gateway.domain.credit import CreditKind
from gateway.domain.errors import InvalidInput
from gateway.services.cash import CashInstructions, CashService, IssuedToken
from gateway.services.errors import NotFound
from gateway.services.ports import Profile
from gateway.services.retention import RetentionPeriods, RetentionService

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CIPHER = FieldCipher([("t", os.urandom(32))])
INDEX = BlindIndex(os.urandom(32))
RULES = CashRules(valid_for=timedelta(days=120), keep_used=timedelta(days=40))
PERIODS = RetentionPeriods(cash_tokens_after_use=timedelta(days=40))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def service(engine: AsyncEngine, clock: Clock,
            uow: Callable[[], Any] | None = None) -> CashService:
    return CashService(uow or (lambda: SqlUnitOfWork(engine, CIPHER, clock=clock)),
                       clock=clock, rules=RULES, index=INDEX,
                       instructions=CashInstructions("PO Box 1", None, 120))


async def account(engine: AsyncEngine, account_id: str, currency: str = "EUR") -> str:
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        await uow.accounts.add(Account(account_id, T0, "nl-ams", currency),
                               Profile(f"{account_id}@example.org"), f"idx-{account_id}",
                               "hash", "v1")
        await uow.commit()
    return account_id


async def rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {r.id: r for r in await conn.execute(select(cash_tokens))}


async def test_a_token_is_kept_hashed_and_asking_again_replaces_it(
        engine: AsyncEngine) -> None:
    clock = Clock()
    cash = service(engine, clock)
    await account(engine, "acc_a")
    first = await cash.new_token("acc_a")
    assert not first.replaced
    held = await rows(engine)
    assert list(held) == [first.record.id]
    plain = first.token.replace("-", "")
    stored = held[first.record.id]
    assert plain not in stored.token_hash and first.token not in stored.token_hash
    assert stored.expires_at == T0 + timedelta(days=120)

    second = await cash.new_token("acc_a")
    assert second.replaced and second.token != first.token
    assert list(await rows(engine)) == [second.record.id]
    with pytest.raises(NotFound):  # the replaced token no longer works
        await cash.record(first.token, "10.00", "EUR", None, "stf_1")
    assert (await cash.open_token("acc_a")) == second.record


async def credit_of(engine: AsyncEngine, account_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(credit_entries).where(
            credit_entries.c.account_id == account_id)))


async def test_an_envelope_credits_once_and_says_so_the_second_time(
        engine: AsyncEngine) -> None:
    clock = Clock()
    cash = service(engine, clock)
    await account(engine, "acc_a")
    issued = await cash.new_token("acc_a")
    typed = issued.token.lower().replace("-", " ")  # as a person may type it
    with pytest.raises(InvalidInput, match="account keeps its credit in EUR"):
        await cash.record(typed, "50.00", "USD", None, "stf_1")
    clock.now += timedelta(days=3)
    done = await cash.record(typed, "50.00", "EUR", "two 20s and a 10", "stf_1")
    assert (done.account_id, done.balance, done.entry.kind) == ("acc_a", 5000,
                                                                CreditKind.CASH)
    with pytest.raises(TokenUnusable, match="used already"):
        await cash.record(issued.token, "50.00", "EUR", None, "stf_2")
    [entry] = await credit_of(engine, "acc_a")
    assert (entry.kind, entry.amount, entry.cause, entry.staff_id) == (
        "cash", 5000, f"cash:{issued.record.id}", "stf_1")
    row = (await rows(engine))[issued.record.id]
    assert row.used_at == T0 + timedelta(days=3) and row.amount_minor == 5000
    assert b"two 20s" not in row.note_ct  # encrypted
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        token = await uow.cash_tokens.get(issued.record.id)
    assert token is not None and token.note == "two 20s and a 10"
    # The webhook says cash, the amount and the balance; never the token.
    async with engine.connect() as conn:
        bodies = [r.body for r in await conn.execute(select(events))]
    credited = [json.loads(b)["data"] for b in bodies if "account.credited" in b]
    assert [(d["kind"], d["amount"], d["balance"]) for d in credited] == [
        ("cash", "50.00", "50.00")]
    assert all(issued.token not in b and issued.token.replace("-", "") not in b
               for b in bodies)


async def test_an_expired_or_unknown_token_is_refused(engine: AsyncEngine) -> None:
    clock = Clock()
    cash = service(engine, clock)
    await account(engine, "acc_a")
    issued = await cash.new_token("acc_a")
    clock.now += timedelta(days=120)
    with pytest.raises(TokenUnusable, match="expired"):
        await cash.record(issued.token, "5.00", "EUR", None, "stf_1")
    with pytest.raises(InvalidInput, match="a character is wrong"):
        await cash.record(issued.token[:-1] + ("2" if issued.token[-1] != "2" else "3"),
                          "5.00", "EUR", None, "stf_1")
    assert await credit_of(engine, "acc_a") == []


async def test_two_staff_recording_one_token_at_once_credit_it_once(
        database_url: str) -> None:
    clock = Clock()
    first, second = make_engine(database_url), make_engine(database_url)
    try:
        await account(first, "acc_a")
        issued: IssuedToken = await service(first, clock).new_token("acc_a")
        for _ in range(3):  # a few rounds: each interleaving has its chance
            outcomes = await asyncio.gather(*(
                service(e, clock).record(issued.token, "20.00", "EUR", None, f"stf_{i}")
                for i, e in enumerate((first, second))), return_exceptions=True)
            refused = [o for o in outcomes if isinstance(o, BaseException)]
            assert all(isinstance(o, TokenUnusable) for o in refused), refused
            entries = await credit_of(first, "acc_a")
            assert len(entries) == 1 and entries[0].amount == 2000
    finally:
        await first.dispose()
        await second.dispose()


class FailingTokens(SqlCashTokens):
    failing: set[str] = set()
    always = False

    async def due(self, used_before: datetime, now: datetime, limit: int = 500) -> list[str]:
        if FailingTokens.always:
            raise RuntimeError("the database said no")
        return await super().due(used_before, now, limit)

    async def erase(self, token_id: str, used_before: datetime, now: datetime) -> bool:
        if token_id in FailingTokens.failing:
            raise RuntimeError("a lock timeout, say")
        return await super().erase(token_id, used_before, now)


class FailingUow(SqlUnitOfWork):
    purge_fails = False

    def _start(self, conn: AsyncConnection) -> None:
        super()._start(conn)
        self.cash_tokens = FailingTokens(conn, CIPHER)
        if FailingUow.purge_fails:
            async def purge(*_: Any) -> int:
                raise RuntimeError("security log purge broken")
            self.security_log.purge = purge  # type: ignore[method-assign]


async def four_tokens(engine: AsyncEngine, clock: Clock) -> dict[str, str]:
    """used long ago, used recently, unused and expired, unused and open: their ids."""
    cash = service(engine, clock)
    ids = {}
    for name, days_ago in (("used_old", 130), ("used_recent", 30), ("expired", 121),
                           ("open", 10)):
        account_id = await account(engine, f"acc_{name}")
        clock.now = T0 - timedelta(days=days_ago)
        issued = await cash.new_token(account_id)
        ids[name] = issued.record.id
        if name.startswith("used"):
            await cash.record(issued.token, "10.00", "EUR", None, "stf_1")
    clock.now = T0
    return ids


def retention(engine: AsyncEngine, clock: Clock, flushed: list[int]) -> RetentionService:
    async def flush() -> bool:
        flushed.append(1)
        return True

    return RetentionService(lambda: FailingUow(engine, CIPHER, clock=clock), clock,
                            periods=PERIODS, flush=flush)


async def test_retention_erases_tokens_one_by_one(engine: AsyncEngine) -> None:
    clock = Clock()
    ids = await four_tokens(engine, clock)
    FailingTokens.failing, FailingTokens.always, FailingUow.purge_fails = (
        {ids["expired"]}, False, True)
    try:
        flushed: list[int] = []
        dry = await retention(engine, clock, flushed).run(dry_run=True)
        assert dry["cash_tokens"] == 2 and len(await rows(engine)) == 4
        counts = await retention(engine, clock, flushed).run()
        # The expired one failed, the other due one went; the broken purge (a stage of
        # its own) stopped neither, nor the flush after them.
        assert (counts["cash_tokens"], counts["cash_token_failures"]) == (1, 1)
        assert counts["stage_failures"] == 1 and flushed
        assert set(await rows(engine)) == {ids["used_recent"], ids["expired"], ids["open"]}
        FailingTokens.failing, FailingUow.purge_fails = set(), False
        again = await retention(engine, clock, flushed).run()
        assert (again["cash_tokens"], again["cash_token_failures"]) == (1, 0)
        clock.now = T0 + timedelta(days=11)  # 41 days after the recent one's use
        later = await retention(engine, clock, flushed).run()
        assert later["cash_tokens"] == 1
        assert set(await rows(engine)) == {ids["open"]}
        # The credit stays: its cause names the token's id, which leads nowhere now.
        assert [e.cause for e in await credit_of(engine, "acc_used_old")] == [
            f"cash:{ids['used_old']}"]
    finally:
        FailingTokens.failing, FailingTokens.always, FailingUow.purge_fails = (
            set(), False, False)


async def test_a_cash_stage_that_always_fails_stops_no_other(engine: AsyncEngine) -> None:
    clock = Clock()
    await four_tokens(engine, clock)
    # An account whose deletion is due: erased (and its token with it) before the stage.
    await account(engine, "acc_leaving")
    clock.now = T0 - timedelta(days=2)
    await service(engine, clock).new_token("acc_leaving")
    clock.now = T0
    async with engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == "acc_leaving").values(
            deletion_due_at=T0 - timedelta(hours=1)))
    FailingTokens.always = True
    try:
        flushed: list[int] = []
        counts = await retention(engine, clock, flushed).run()
        assert counts["stage_failures"] == 1 and counts["cash_tokens"] == 0
        assert counts["account_deletions"] == 1 and flushed  # before it, and after it
        assert not [r for r in (await rows(engine)).values()
                    if r.account_id == "acc_leaving"]
        assert len(await rows(engine)) == 4
    finally:
        FailingTokens.always = False


async def test_erasing_an_account_erases_its_tokens(engine: AsyncEngine) -> None:
    clock = Clock()
    cash = service(engine, clock)
    await account(engine, "acc_a")
    await account(engine, "acc_b")
    used = await cash.new_token("acc_a")
    await cash.record(used.token, "10.00", "EUR", None, "stf_1")
    await cash.new_token("acc_a")
    await cash.new_token("acc_b")
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        await uow.accounts.erase_personal_data("acc_a")
        await uow.commit()
    assert [r.account_id for r in (await rows(engine)).values()] == ["acc_b"]
    with pytest.raises(NotFound):
        await cash.record(used.token, "10.00", "EUR", None, "stf_1")
