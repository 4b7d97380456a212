"""Vouchers end to end over the services (docs/vouchers.md), on a real database: a
batch's codes credit an account once, a plan voucher activates it, every refusal is the
same, two instances redeeming one code at once give it to exactly one (SQLite and
PostgreSQL), and wrong codes are capped per account and per client network."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import Overrides, build
from gateway.domain.credit import CreditKind
from gateway.domain.money import Fiat
from gateway.domain.vouchers import CodeRefused, check_character
from gateway.services.errors import TooManyRequests
from gateway.services.vouchers import REFUSED, BatchSpec, VoucherRefused
from tests.support.databases import fresh_database
from tests.support.fake_gateway import World, fake_world

ENV = {
    "GATEWAY_PLANS": json.dumps({"vps": {"price": "8.00", "currency": "EUR",
                                         "period": "30 days"}}),
    "GATEWAY_VOUCHERS__FREE_FAILURES": "2",
    "GATEWAY_VOUCHERS__FAILURES_PER_ACCOUNT_PER_HOUR": "5",
    "GATEWAY_VOUCHERS__FAILURES_PER_NETWORK_PER_HOUR": "8",
}
EUR10 = Fiat(1000, "EUR")


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@pytest.fixture
async def world(tmp_path: Path, template_dir: Path, database_url: str
                ) -> AsyncIterator[World]:
    """A gateway on SQLite, and again on PostgreSQL."""
    async with fake_world(tmp_path, template_dir, db_url=database_url, env=ENV) as w:
        yield w


async def batch(world: World, count: int = 3, **kw: Any) -> tuple[str, list[str]]:
    made = await world.gw.services.vouchers.create(BatchSpec(count, **kw))
    return made.batch.id, made.codes


def wrong_but_well_formed(code: str) -> str:
    """Another code that passes its check character (so it is looked up)."""
    plain = code.replace("-", "")
    body = ("1" if plain[0] != "1" else "2") + plain[1:-1]
    return body + check_character(body)


async def events(world: World, account: str, kind: str) -> list[dict[str, Any]]:
    rows = await world.sql("SELECT body FROM events WHERE account_id = :a AND type = :t "
                           "ORDER BY seq", a=account, t=kind)
    return [json.loads(r.body)["data"] for r in rows]


async def refusal(world: World, account: str, code: str, ip: str = "203.0.113.9") -> str:
    with pytest.raises(VoucherRefused) as raised:
        await world.gw.services.vouchers.redeem(account, code, ip)
    return str(raised.value)


async def test_a_code_credits_its_value_once_and_says_so_without_the_code(
        world: World) -> None:
    batch_id, codes = await batch(world, value=EUR10, label="shop A")
    account = await world.account()
    done = await world.gw.services.vouchers.redeem(account, codes[0].lower(), "203.0.113.9")
    assert (done.entry.kind, done.entry.amount, done.entry.currency) == (
        CreditKind.VOUCHER, 1000, "EUR")
    assert done.entry.cause.startswith("voucher:vou_") and done.balance == 1000
    view = await world.gw.services.credit.view(account)
    assert [(e.kind, e.amount) for e in view.entries] == [(CreditKind.VOUCHER, 1000)]
    [credited] = await events(world, account, "account.credited")
    assert credited["via"] == "voucher" and credited["kind"] == "voucher"
    assert credited["amount"] == "10.00" and credited["balance"] == "10.00"
    # Used (by another account): the same refusal as any code that does not exist.
    assert await refusal(world, await world.account(), codes[0]) == f"code: {REFUSED}"
    listed = await world.gw.services.vouchers.batch(batch_id)
    assert (listed.count, listed.redeemed, listed.label) == (3, 1, "shop A")
    # Nowhere in the database is a code in clear: only keyed hashes.
    for table in ("vouchers", "voucher_batches", "credit_entries", "events", "login_throttle"):
        dump = json.dumps([list(map(str, r)) for r in await world.sql(f"SELECT * FROM {table}")])
        for code in codes:
            assert code.replace("-", "") not in dump.replace("-", ""), table


async def test_a_plan_voucher_activates_a_new_account(world: World) -> None:
    _, codes = await batch(world, 1, plan="vps", periods=2)
    account = await world.account()
    done = await world.gw.services.vouchers.redeem(account, codes[0], None)
    assert done.periods_bought == 2 and done.balance == 0
    assert done.entry.amount == 1600  # the plan's price for its periods
    assert done.account.paid_until == world.clock() + timedelta(days=60)
    [activated] = await events(world, account, "account.activated")
    assert activated["plan"] == "vps" and activated["invoice_id"] is None
    kinds = [e.kind for e in (await world.gw.services.credit.view(account)).entries]
    assert kinds == [CreditKind.SPENT, CreditKind.SPENT, CreditKind.VOUCHER]


async def test_wrong_used_revoked_and_expired_codes_get_one_answer(world: World) -> None:
    _, used = await batch(world, 1, value=EUR10)
    revoked_id, revoked = await batch(world, 1, value=EUR10)
    _, ending = await batch(world, 1, value=EUR10,
                            expires_at=world.clock() + timedelta(hours=1))
    first, second = await world.account(), await world.account()
    await world.gw.services.vouchers.redeem(first, used[0], "198.51.100.1")
    await world.gw.services.vouchers.revoke(revoked_id)
    world.clock.advance(minutes=61)
    answers = set()
    for code in [used[0], revoked[0], ending[0], wrong_but_well_formed(used[0])]:
        answers.add(await refusal(world, second, code))
        world.clock.advance(seconds=20)  # past the delays after the free failures
    assert answers == {f"code: {REFUSED}"}
    assert await world.gw.services.credit.balance(second) == 0


async def test_a_typo_is_answered_before_any_lookup_and_not_counted(world: World) -> None:
    _, codes = await batch(world, 1, value=EUR10)
    account = await world.account()
    plain = codes[0].replace("-", "")
    typo = plain[1] + plain[0] + plain[2:] if plain[0] != plain[1] else "Z" + plain[1:]
    for _ in range(20):  # far beyond the account's cap: typos cost nothing
        with pytest.raises(CodeRefused, match="typo"):
            await world.gw.services.vouchers.redeem(account, typo, "203.0.113.9")
    assert (await world.sql("SELECT count(*) AS n FROM login_throttle"))[0].n == 0
    await world.gw.services.vouchers.redeem(account, codes[0], "203.0.113.9")


async def test_wrong_codes_are_capped_per_account_and_per_network(world: World) -> None:
    _, codes = await batch(world, 2, value=EUR10)
    vouchers, wrong = world.gw.services.vouchers, wrong_but_well_formed(codes[0])
    guesser = await world.account()
    # Per account: 2 free failures, then doubling delays, and 5 an hour at most,
    # whichever network the guesses come from.
    for n in range(5):
        await refusal(world, guesser, wrong, f"192.0.2.{n}")
        world.clock.advance(seconds=20)  # past every delay before the cap
    with pytest.raises(TooManyRequests) as raised:
        await vouchers.redeem(guesser, codes[0], "192.0.2.200")  # even a right one
    assert 3000 < raised.value.retry_after_seconds <= 3600
    # Per network: accounts under their own cap, one network: 8 an hour.
    for _ in range(8):
        await refusal(world, await world.account(), wrong, "2001:db8:1:2::1")
        world.clock.advance(seconds=20)
    with pytest.raises(TooManyRequests):
        await vouchers.redeem(await world.account(), codes[1], "2001:db8:1:2::ffff")  # same /64
    # Another network, another account: not held back.
    done = await vouchers.redeem(await world.account(), codes[1], "2001:db8:9::1")
    assert done.entry.amount == 1000
    world.clock.advance(hours=1)  # the window ends: the guesser may try again
    await refusal(world, guesser, wrong, "192.0.2.1")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_instances_redeeming_one_code_at_once_give_it_to_one(
        kind: str, tmp_path: Path, template_dir: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        async with fake_world(tmp_path, template_dir, db_url=url, env=ENV) as world:
            other = build(world.gw.settings, overrides=Overrides(clock=world.clock))
            instances = [world.gw, other]
            try:
                _, codes = await batch(world, 4, value=EUR10)
                for i, code in enumerate(codes):
                    accounts = [await world.account(), await world.account()]
                    results = await asyncio.gather(
                        *(gw.services.vouchers.redeem(a, code, f"203.0.113.{10 * i + n}")
                          for n, (gw, a) in enumerate(zip(instances, accounts, strict=True))),
                        return_exceptions=True)
                    refused = [r for r in results if isinstance(r, Exception)]
                    assert len(refused) == 1, results
                    assert isinstance(refused[0], VoucherRefused)
                    assert str(refused[0]) == f"code: {REFUSED}"  # as for a used code
                    balances = [await world.gw.services.credit.balance(a) for a in accounts]
                    assert sorted(balances) == [0, 1000]
                rows = await world.sql("SELECT count(*) AS n FROM credit_entries "
                                       "WHERE kind = 'voucher'")
                assert rows[0].n == 4
            finally:
                await other.aclose()


async def test_finance_sees_batches_sold_and_redeemed_and_reconciliation_the_liability(
        world: World) -> None:
    from gateway.services.finance import Period

    vouchers, t0 = world.gw.services.vouchers, world.clock()
    sold_id, sold = await batch(world, 3, value=EUR10, label="shop A")
    gone_id, gone = await batch(world, 2, value=Fiat(500, "USD"))
    account = await world.account()
    await vouchers.redeem(account, sold[0], "203.0.113.1")
    await vouchers.redeem(account, gone[0], "203.0.113.1")
    await vouchers.revoke(gone_id)
    period = Period(t0, t0 + timedelta(days=1))
    lines = {line["batch"]: line for line in await world.gw.services.finance.vouchers(
        period, world.clock())}
    assert {k: lines[sold_id][k] for k in ("label", "count", "sold", "sold_value", "redeemed",
                                           "redeemed_value", "redeemed_in_period",
                                           "state")} == {
        "label": "shop A", "count": 3, "sold": 3, "sold_value": "30.00", "redeemed": 1,
        "redeemed_value": "10.00", "redeemed_in_period": 1, "state": "active"}
    assert (lines[gone_id]["sold"], lines[gone_id]["state"]) == (1, "revoked")
    credit = await world.gw.services.finance.credit(period)
    assert sorted((c["kind"], c["voucher_batch"]) for c in credit) == sorted([
        ("voucher", gone_id), ("voucher", sold_id)])
    report = await world.gw.services.reconcile.run(t0 - timedelta(hours=1),
                                                   t0 + timedelta(hours=1))
    assert report.voucher_liability == [
        {"currency": "EUR", "sold": "30.00", "redeemed": "10.00", "outstanding": "20.00",
         "outstanding_minor": 2000},
        {"currency": "USD", "sold": "5.00", "redeemed": "5.00", "outstanding": "0.00",
         "outstanding_minor": 0}]
    text = json.dumps([list(lines.values()), credit, report.voucher_liability])
    assert not any(c.replace("-", "") in text.replace("-", "") for c in sold + gone)


async def test_every_refusal_runs_the_same_statements(world: World) -> None:
    """Same answer and same work: a wrong, used, revoked or expired code costs one keyed
    hash and the same statements, in the same order (so the timing tells nothing)."""
    from sqlalchemy import event

    _, used = await batch(world, 1, value=EUR10)
    revoked_id, revoked = await batch(world, 1, value=EUR10)
    _, ending = await batch(world, 1, value=EUR10,
                            expires_at=world.clock() + timedelta(minutes=1))
    await world.gw.services.vouchers.redeem(await world.account(), used[0], "192.0.2.9")
    await world.gw.services.vouchers.revoke(revoked_id)
    world.clock.advance(minutes=2)
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(" ".join(sql.split()))

    from gateway.adapters.db.engine import inline_engine

    # SQLite's units run on their own synchronous engine (`engine.inline_engine`).
    engine = inline_engine(world.gw.engine) or world.gw.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    runs = []
    try:
        for n, code in enumerate([wrong_but_well_formed(used[0]), used[0], revoked[0],
                                  ending[0]]):
            seen.clear()
            await refusal(world, await world.account(), code, f"198.51.100.{n}")
            runs.append(list(seen))
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert all(run == runs[0] for run in runs), runs
    assert sum("UPDATE vouchers" in s for s in runs[0]) == 1
    # ... and one read of "did this account redeem it already?", whatever the reason.
    assert sum("FROM vouchers" in s and "UPDATE" not in s for s in runs[0]) == 1


async def test_the_liability_of_a_past_period_is_as_its_books_stood_at_its_end(
        world: World) -> None:
    """A code redeemed after the period was still owed at its end; a batch made after it
    was not sold in it; a revocation after it had not happened (found by a review: the
    report counted everything as it is today)."""
    vouchers, start = world.gw.services.vouchers, world.clock()
    _, codes = await batch(world, 2, value=EUR10)
    revoked_id, _ = await batch(world, 1, value=EUR10)
    world.clock.advance(days=2)
    await batch(world, 5, value=EUR10)  # after the period
    await vouchers.redeem(await world.account(), codes[0], "203.0.113.1")
    await vouchers.revoke(revoked_id)
    past = await world.gw.services.reconcile.run(start - timedelta(hours=1),
                                                start + timedelta(hours=1))
    assert [(t["sold"], t["redeemed"], t["outstanding"]) for t in past.voucher_liability] \
        == [("30.00", "0.00", "30.00")]
    now = await world.gw.services.reconcile.run(start - timedelta(hours=1),
                                               world.clock() + timedelta(hours=1))
    assert [(t["sold"], t["redeemed"], t["outstanding"]) for t in now.voucher_liability] \
        == [("70.00", "10.00", "60.00")]


async def test_the_same_account_sending_its_code_twice_gets_the_same_answer(
        world: World) -> None:
    """A double click or an API retry after a lost answer: both requests of the account
    that redeemed the code are answered as redeemed, the code credits once, and neither
    counts as a wrong guess (found by a review: the second was refused and counted)."""
    vouchers = world.gw.services.vouchers
    _, codes = await batch(world, 1, plan="vps", periods=1)
    account = await world.account()
    first, second = await asyncio.gather(vouchers.redeem(account, codes[0], "203.0.113.1"),
                                         vouchers.redeem(account, codes[0], "203.0.113.1"))
    assert replace(first.entry, id=None) == replace(second.entry, id=None)
    assert first.periods_bought == second.periods_bought == 1
    assert first.balance == second.balance
    assert await world.sql("SELECT failures FROM login_throttle") == []
    credited = await world.sql("SELECT count(*) AS n FROM credit_entries WHERE kind = 'voucher'")
    assert credited[0].n == 1
    # Another account sending the same code is refused, and that is counted.
    assert "cannot be redeemed" in await refusal(world, await world.account(), codes[0])
    assert len(await world.sql("SELECT failures FROM login_throttle")) == 2
