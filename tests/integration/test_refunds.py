"""Refunds on SQLite and PostgreSQL (docs/refunds.md): the amount is held under the
account's row lock (two requests at once never overdraw the balance), returned once when
refused or cancelled; approvals are one per member (also when two arrive at once); the
address and tx key are ciphertext in the database; the events and the mail go out with
the transaction."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.encrypted import MAIL_BODY, MAIL_RECIPIENT
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.refund_watches import match_key_of
from gateway.adapters.db.tables import (
    events,
    invoices,
    mail_queue,
    payments,
    refund_approvals,
    refund_watches,
    refunds,
)
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.domain.accounts import Account
from gateway.domain.credit import CreditEntry, CreditKind, InsufficientCredit
from gateway.domain.errors import InvalidInput
from gateway.domain.refunds import Quote, RefundStatus
from gateway.services.errors import Conflict
from gateway.services.ports import Profile
from gateway.services.ports.refunds import (
    PaidOutput,
    ProvenPayment,
    RefundPolicy,
    WatchTarget,
)
from gateway.services.refunds import ProvenRefunds, RefundAsk, RefundService

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CIPHER = FieldCipher([("t", os.urandom(32))])
INDEX = BlindIndex(os.urandom(32))
ADDRESS = "ltc1qrefundaddressofthecustomer0000000000"


class Directory:
    def coins(self) -> tuple[str, ...]:
        return ("LTC",)

    def decimals(self, coin: str) -> int:
        return 8


class Rates:
    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        return Decimal("80"), "median:test"


class Chains:
    def __init__(self) -> None:
        self.prepared: list[tuple[int, int, int]] = []
        self.depth = 0  # what check_tx_key reports
        self.watchable = True
        self.unreachable: set[str] = set()

    def check_address(self, coin: str, address: str) -> str:
        if not address.startswith("ltc1"):
            raise InvalidInput("address", "not a Litecoin address")
        return address

    async def prepare(self, coin: str, address: str, amount: int,
                      spendable: Sequence[PaidOutput], change_index: int,
                      rate: str) -> Quote:
        await asyncio.sleep(0.01)  # the other request runs meanwhile
        self.prepared.append((amount, len(spendable), change_index))
        return Quote(amount, rate, f"litecoin:{address}?amount=x", psbt="cHNidP8=",
                     change_index=change_index)

    def watch_target(self, coin: str, address: str) -> WatchTarget | None:
        if not self.watchable:
            return None  # like Monero: proven by a tx key
        return WatchTarget(b"key:" + address.encode(), "LTC", 3)

    def confirmations(self, coin: str) -> int:
        return 3

    def proves_payments(self, coin: str) -> bool:
        return True

    async def check_tx_key(self, coin: str, txid: str, tx_key: str,
                           address: str) -> ProvenPayment:
        if tx_key != "right key":
            raise InvalidInput("tx_key", "the tx key does not prove this transaction")
        if txid in self.unreachable:
            raise ConnectionError("wallet-rpc down")
        return ProvenPayment(7_500_000 if txid in ("ab" * 32, "ef" * 32) else 1,
                             self.depth)  # enough for a refund of up to 6 EUR at 80


class Proof:
    def __init__(self) -> None:
        self.asked: list[tuple[str | None, str | None]] = []

    async def prove(self, account_id: str, password: str | None, code: str | None) -> None:
        self.asked.append((password, code))
        if password != "right":
            raise InvalidInput("current_password", "is wrong")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        await uow.accounts.add(Account("acc_a", T0, currency="EUR"),
                               Profile("a@example.org"), "idx-a", "x", "1")
        await uow.credit.add(CreditEntry("acc_a", CreditKind.OVERPAID, 1000, "EUR",
                                         "payment:LTC:aa:0", T0))
        await uow.commit()
    try:
        yield engine
    finally:
        await engine.dispose()


def service(engine: AsyncEngine, chains: Chains | None = None,
            above: int | None = None) -> RefundService:
    return RefundService(
        lambda: SqlUnitOfWork(engine, CIPHER, clock=lambda: T0, mail_index=INDEX),
        chains=chains or Chains(), directory=Directory(), rates=Rates(), proof=Proof(),
        policy=RefundPolicy({"LTC": 100_000}, above), clock=lambda: T0)


def ask(amount: str, address: str = ADDRESS, password: str = "right") -> RefundAsk:
    return RefundAsk(amount, "LTC", address, None, password)


async def balance(engine: AsyncEngine) -> int:
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        return await uow.credit.balance("acc_a")


async def test_a_request_holds_the_amount_mails_and_keeps_the_address_sealed(
        engine: AsyncEngine) -> None:
    svc = service(engine)
    refund = await svc.request("acc_a", ask("6.50"))
    assert refund.status is RefundStatus.REQUESTED and refund.amount == 650
    assert await balance(engine) == 350
    async with engine.connect() as conn:
        row = (await conn.execute(select(refunds))).one()
        assert ADDRESS.encode() not in row.address_ct
        types = [r.type for r in (await conn.execute(select(events.c.type))).all()]
        assert "refund.requested" in types
        [mail] = (await conn.execute(select(mail_queue))).all()
    to = CIPHER.decrypt(mail.recipient_ct, MAIL_RECIPIENT.ref(mail.id))
    body = CIPHER.decrypt(mail.body_ct, MAIL_BODY.ref(mail.id))
    assert to == "a@example.org"
    assert "€6.50 in LTC was requested" in body and "If it wasn't you" in body
    assert ADDRESS not in body and refund.id not in body  # nothing to act on or steal
    [mine] = await svc.mine("acc_a")
    assert mine.address == ADDRESS and mine.id == refund.id


async def test_clear_refusals_for_a_wrong_password_address_amount_or_coin(
        engine: AsyncEngine) -> None:
    svc = service(engine)
    cases = [(ask("6.50", password="wrong"), "current_password"),
             (ask("6.50", address="bc1qnot"), "address"),
             (ask("10.01"), "amount"),  # more than the balance
             (ask("0.05"), "amount"),  # below 0.001 LTC at 80 EUR
             (RefundAsk("1.00", "DOGE", ADDRESS, None, "right"), "coin"),
             (RefundAsk("1.00", "LTC", ADDRESS, "USD", "right"), "currency")]
    for request, field in cases:
        with pytest.raises(InvalidInput) as caught:
            await svc.request("acc_a", request)
        assert caught.value.field == field
    with pytest.raises(InvalidInput, match=r"least refund in LTC is 0\.001 LTC"):
        await svc.request("acc_a", ask("0.05"))
    with pytest.raises(InvalidInput, match="balance is 1000 minor units"):
        await svc.request("acc_a", ask("10.01"))
    assert await balance(engine) == 1000


async def test_two_requests_at_once_never_overdraw_the_balance(engine: AsyncEngine) -> None:
    svc = service(engine)
    results = await asyncio.gather(*(svc.request("acc_a", ask("7.00")) for _ in range(2)),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["InsufficientCredit", "Refund"]
    assert await balance(engine) == 300


async def test_credit_kept_in_another_currency_is_never_refunded_as_this_one(
        engine: AsyncEngine) -> None:
    """Credit kept in USD (the account's currency then) is not EUR: switching the profile
    to EUR must not let 100.00 USD go out as 100.00 EUR."""
    async with SqlUnitOfWork(engine, CIPHER) as uow:
        await uow.credit.add(CreditEntry("acc_a", CreditKind.OVERPAID, 10_000, "USD",
                                         "payment:LTC:usd:0", T0))
        await uow.commit()
    svc = service(engine)
    with pytest.raises(InsufficientCredit, match="balance is 1000"):
        await svc.request("acc_a", ask("100.00"))
    held = await svc.request("acc_a", ask("10.00"))  # the EUR credit is there
    assert held.currency == "EUR"


async def test_a_second_open_refund_to_the_same_address_waits_for_the_first(
        engine: AsyncEngine) -> None:
    svc = service(engine)
    first = await svc.request("acc_a", ask("4.00"))
    second = await svc.request("acc_a", ask("4.00"))
    await svc.approve(first.id, "stf_1", "ok")
    with pytest.raises(Conflict, match=f"refund {first.id} to the same address"):
        await svc.approve(second.id, "stf_1", "ok")
    assert (await svc.get(second.id)).status is RefundStatus.REQUESTED  # nothing recorded
    async with engine.begin() as conn:  # the first one completes on the chain
        await conn.execute(update(refund_watches).values(state="completed"))
    assert (await svc.approve(second.id, "stf_1", "ok")).status is RefundStatus.APPROVED


async def test_cancel_and_refuse_return_the_amount_once(engine: AsyncEngine) -> None:
    svc = service(engine)
    a = await svc.request("acc_a", ask("4.00"))
    b = await svc.request("acc_a", ask("5.00"))
    assert await balance(engine) == 100
    await svc.cancel("acc_a", a.id)
    with pytest.raises(Conflict, match="cancelled"):
        await svc.cancel("acc_a", a.id)
    await svc.refuse(b.id, "stf_1", "not the customer's coins")
    with pytest.raises(Conflict):
        await svc.refuse(b.id, "stf_2", "again")
    assert await balance(engine) == 1000
    stored = await svc.get(b.id)
    assert (stored.status, stored.refused_reason) == (RefundStatus.REFUSED,
                                                     "not the customer's coins")
    # Each return is announced like any credit, with the balance after it.
    async with engine.connect() as conn:
        bodies = (await conn.execute(select(events.c.body).where(
            events.c.type == "account.credited"))).scalars().all()
    credited = [json.loads(b)["data"] for b in bodies]
    assert [(c["kind"], c["amount"], c["balance"]) for c in credited] == [
        ("refund_returned", "4.00", "5.00"), ("refund_returned", "5.00", "10.00")]


async def watched(engine: AsyncEngine) -> list[tuple[object, ...]]:
    """The watches, their keys decrypted; the stored key must not be the plain one."""
    w = refund_watches.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(w.refund_id, w.match_key_ct, w.address_space,
                                          w.amount, w.confirmations_required,
                                          w.state))).all()
    assert all(ADDRESS.encode() not in bytes(r[1]) for r in rows)  # sealed
    return [(r[0], match_key_of(CIPHER, r), *r[2:]) for r in rows]


async def test_two_approvers_above_the_threshold_one_approval_per_member(
        engine: AsyncEngine) -> None:
    chains = Chains()
    svc = service(engine, chains, above=500)
    refund = await svc.request("acc_a", ask("6.00"))
    assert refund.approvals_needed == 2
    # The same member twice at once: one approval recorded, the other refused clearly.
    results = await asyncio.gather(*(svc.approve(refund.id, "stf_1", "looks right")
                                     for _ in range(2)), return_exceptions=True)
    assert [type(r).__name__ for r in results].count("Conflict") == 1
    assert any("another finance member" in str(r) for r in results)
    with pytest.raises(Conflict, match="another finance member"):
        await svc.approve(refund.id, "stf_1", "once more")
    assert (await svc.get(refund.id)).status is RefundStatus.REQUESTED
    assert await watched(engine) == []  # nothing to look for before it is approved
    done = await svc.approve(refund.id, "stf_2", "agreed")
    assert done.status is RefundStatus.APPROVED
    # Approved: the watcher looks for its payment at the customer's address.
    assert await watched(engine) == [(refund.id, b"key:" + ADDRESS.encode(), "LTC",
                                      7_500_000, 3, "waiting")]
    assert done.quote is not None and done.quote.crypto_amount == 7_500_000  # 6 EUR / 80
    with pytest.raises(Conflict):
        await svc.cancel("acc_a", refund.id)
    async with engine.connect() as conn:
        sealed = (await conn.execute(select(refunds.c.uri_ct, refunds.c.psbt_ct))).one()
        assert sealed.uri_ct and ADDRESS.encode() not in sealed.uri_ct and sealed.psbt_ct
        rows = (await conn.execute(select(refund_approvals.c.staff_id))).all()
        types = [r.type for r in (await conn.execute(select(events.c.type))).all()]
    assert sorted(r.staff_id for r in rows) == ["stf_1", "stf_2"]
    assert types.count("refund.approved") == 1
    assert await balance(engine) == 400  # held until it is paid: nothing returned
    assert done.quote.uri == f"litecoin:{ADDRESS}?amount=x"
    stored = await svc.get(refund.id)
    assert stored.quote is not None and stored.quote.psbt == "cHNidP8="


async def test_two_members_approving_at_once_approve_once(engine: AsyncEngine) -> None:
    chains = Chains()
    svc = service(engine, chains)
    refund = await svc.request("acc_a", ask("3.00"))
    results = await asyncio.gather(svc.approve(refund.id, "stf_1", "ok"),
                                   svc.approve(refund.id, "stf_2", "ok"),
                                   return_exceptions=True)
    assert [type(r).__name__ for r in results].count("Refund") == 1
    stored = await svc.get(refund.id)
    assert stored.status is RefundStatus.APPROVED and len(stored.approvals) == 1


async def test_later_refunds_never_spend_what_an_approved_one_spends(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(refunds).values(
            id="rfd_old", account_id="acc_a", status="approved", amount_minor=1,
            currency="EUR", coin="LTC", approvals_needed=1, requested_at=T0,
            spends=[["aa" * 32, 1]], change_index=4, crypto_amount=1, rate="80"))
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        assert await uow.refunds.spent_outputs("LTC") == {("aa" * 32, 1)}
        assert await uow.refunds.spent_outputs("BTC") == set()
        assert await uow.refunds.next_change_index("LTC") == 5
        assert await uow.refunds.next_change_index("BTC") == 0


async def test_a_tx_key_proves_a_refund_sent_and_stays_sealed(engine: AsyncEngine) -> None:
    chains = Chains()
    svc = service(engine, chains)
    proven = ProvenRefunds(lambda: SqlUnitOfWork(engine, CIPHER, clock=lambda: T0),
                           chains, lambda: T0)
    refund = await svc.request("acc_a", ask("6.00"))
    with pytest.raises(Conflict, match="only an approved refund"):
        await proven.record_tx_key(refund.id, "ab" * 32, "right key")
    await svc.approve(refund.id, "stf_1", "ok")
    with pytest.raises(InvalidInput, match="does not prove"):
        await proven.record_tx_key(refund.id, "ab" * 32, "wrong key")
    with pytest.raises(InvalidInput, match="pays the address 1 base units"):
        await proven.record_tx_key(refund.id, "cd" * 32, "right key")
    sent = await proven.record_tx_key(refund.id, "ab" * 32, "right key")
    assert (sent.status, sent.txid, sent.tx_key) == (RefundStatus.SENT, "ab" * 32,
                                                     "right key")
    async with engine.connect() as conn:
        stored = (await conn.execute(select(refunds.c.tx_key_ct))).scalar_one()
    assert b"right key" not in stored
    assert (await svc.get(refund.id)).tx_key == "right key"


async def test_proven_refunds_complete_at_depth_one_failing_holds_back_none(
        engine: AsyncEngine) -> None:
    chains = Chains()
    chains.watchable = False
    svc = service(engine, chains)
    proven = ProvenRefunds(lambda: SqlUnitOfWork(engine, CIPHER, clock=lambda: T0),
                           chains, lambda: T0)
    ids = []
    for txid in ("ab" * 32, "ef" * 32):
        refund = await svc.request("acc_a", ask("4.00"))
        await svc.approve(refund.id, "stf_1", "ok")
        await proven.record_tx_key(refund.id, txid, "right key")
        ids.append(refund.id)
    third = await svc.request("acc_a", ask("1.00"))
    await svc.approve(third.id, "stf_1", "ok")
    with pytest.raises(InvalidInput, match=f"already proves refund {ids[0]}"):
        await proven.record_tx_key(third.id, "ab" * 32, "right key")
    assert await proven.run() == 0  # sent, not yet at the depth (3)
    chains.depth = 3
    chains.unreachable = {"ab" * 32}  # the first one's check fails this time
    assert await proven.run() == 1
    assert [(await svc.get(i)).status for i in ids] == [RefundStatus.SENT,
                                                        RefundStatus.COMPLETED]
    chains.unreachable = set()
    assert await proven.run() == 1  # the next run completes it too
    assert await proven.run() == 0  # and nothing twice
    async with engine.connect() as conn:
        done = (await conn.execute(select(events.c.type).where(
            events.c.type == "refund.completed"))).all()
    assert len(done) == 2


async def test_the_psbt_spends_only_our_confirmed_outputs_no_earlier_refund_spends(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for n in range(3):
            await conn.execute(insert(invoices).values(
                id=f"inv_{n}", account_id="acc_a", coin="LTC", price_minor=100,
                price_currency="EUR", rate_value="80", rate_source="fixed",
                rate_locked_at=T0, amount_due=1_250_000, decimals=8,
                confirmations_required=3, tolerance_basis_points=0,
                accept_late_payments=True, address_space="ltc-test", derivation_index=n,
                address=f"addr{n}", match_key=bytes([n]), payment_uri="x", status="settled",
                metadata={}, created_at=T0, expires_at=T0, monitoring_until=T0))
        await conn.execute(insert(payments), [
            {"coin": "LTC", "txid": "aa" * 32, "output_index": 0, "invoice_id": "inv_0",
             "amount": 1_250_000, "status": "confirmed", "seen_at": T0},
            {"coin": "LTC", "txid": "bb" * 32, "output_index": 1, "invoice_id": "inv_1",
             "amount": 2_000_000, "status": "confirmed", "seen_at": T0},
            {"coin": "LTC", "txid": "cc" * 32, "output_index": 0, "invoice_id": "inv_2",
             "amount": 9_000_000, "status": "pending", "seen_at": T0}])
        await conn.execute(insert(refunds).values(
            id="rfd_old", account_id="acc_a", status="completed", amount_minor=1,
            currency="EUR", coin="LTC", approvals_needed=1, requested_at=T0,
            spends=[["aa" * 32, 0]], change_index=2, crypto_amount=1, rate="80"))
    async with SqlUnitOfWork(engine, CIPHER, read_only=True) as uow:
        paid = await uow.refunds.paid_outputs("LTC")
    assert [(p.txid, p.output_index, p.amount, p.match_key, p.index) for p in paid] == [
        ("aa" * 32, 0, 1_250_000, b"\x00", 0), ("bb" * 32, 1, 2_000_000, b"\x01", 1)]
    seen: list[list[PaidOutput]] = []

    class Seeing(Chains):
        async def prepare(self, coin: str, address: str, amount: int,
                          spendable: Sequence[PaidOutput], change_index: int,
                          rate: str) -> Quote:
            seen.append(list(spendable))
            return await super().prepare(coin, address, amount, spendable, change_index,
                                         rate)

    chains = Seeing()
    svc = service(engine, chains)
    refund = await svc.request("acc_a", ask("2.00"))
    approved = await svc.approve(refund.id, "stf_1", "ok")
    assert [(p.txid, p.output_index) for p in seen[0]] == [("bb" * 32, 1)]
    assert chains.prepared == [(2_500_000, 1, 3)]  # 2 EUR at 80; change index after 2
    assert approved.quote is not None and approved.quote.change_index == 3


async def test_an_approval_whose_outputs_another_refund_took_meanwhile_is_refused(
        engine: AsyncEngine) -> None:
    class Racing(Chains):
        async def prepare(self, coin: str, address: str, amount: int,
                          spendable: Sequence[PaidOutput], change_index: int,
                          rate: str) -> Quote:
            # While this quote is made, another refund's approval spends the same output.
            async with engine.begin() as conn:
                await conn.execute(insert(refunds).values(
                    id="rfd_other", account_id="acc_a", status="approved", amount_minor=1,
                    currency="EUR", coin="LTC", approvals_needed=1, requested_at=T0,
                    spends=[["aa" * 32, 0]], change_index=0, crypto_amount=1, rate="80"))
            return Quote(amount, rate, "litecoin:x", psbt="cHNidP8=",
                         spends=(("aa" * 32, 0),), change_index=change_index)

    svc = service(engine, Racing())
    refund = await svc.request("acc_a", ask("2.00"))
    with pytest.raises(Conflict, match="another refund spent those outputs"):
        await svc.approve(refund.id, "stf_1", "ok")
    stored = await svc.get(refund.id)
    assert stored.status is RefundStatus.REQUESTED and stored.approvals == []
