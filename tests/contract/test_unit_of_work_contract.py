"""One suite, every unit of work: the in-memory one the service tests use
(tests/support/memory.py) and the SQL one on a real, migrated SQLite file (PostgreSQL
too, where the run has one: `make test`'s PostgreSQL run). The service tests over the
memory unit mean something only while it behaves as the SQL one does; this suite is
what says so, as tests/contract/test_follower_contract.py does for the chain families."""

import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chains.base import BlockRef, Destination, Lock
from gateway.domain.accounts import Account
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate, Status
from gateway.domain.money import Fiat
from gateway.domain.payments import PaymentStatus
from gateway.domain.throttle import ThrottleState
from gateway.services.errors import Conflict
from gateway.services.ports import (
    ApiKeyRecord,
    EndpointRecord,
    NewPayment,
    Profile,
    SessionRecord,
)
from tests.support.databases import fresh_database
from tests.support.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Units = Callable[[], Any]  # a unit-of-work factory: the memory one or the SQL one


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def units(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Units]:
    if request.param == "memory":
        store = MemoryStore()
        yield lambda: store.unit(lambda: T0)
        return
    from gateway.adapters.db.engine import make_engine
    from gateway.adapters.db.unit_of_work import SqlUnitOfWork
    from gateway.adapters.fields import FieldCipher

    cipher = FieldCipher([("t", os.urandom(32))])
    with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        try:
            yield lambda: SqlUnitOfWork(engine, cipher, clock=lambda: T0)
        finally:
            await engine.dispose()


async def _account(units: Units, account_id: str = "acc_a", email: str = "a") -> Account:
    account = Account(account_id, T0, "nl-ams", "EUR")
    account.created()
    async with units() as uow:
        await uow.accounts.add(account, Profile(f"{email}@example.org"), f"idx-{email}",
                               "hash", "v1")
        await uow.commit()
    return account


def _invoice(invoice_id: str, account_id: str = "acc_a", at: datetime = T0,
             coin: str = "LTC") -> Invoice:
    invoice = Invoice(invoice_id, account_id, coin, Fiat(100, "EUR"),
                      LockedRate("1", "fixed", at),
                      InvoiceTerms(1000, 8, 2, at + timedelta(minutes=15),
                                   at + timedelta(days=1)), at)
    invoice.created()
    return invoice


async def _add_invoice(units: Units, invoice: Invoice, key: bytes, space: str = "LTC") -> int:
    async with units() as uow:
        [index] = await uow.invoices.allocate(space)
        await uow.invoices.add(invoice, space, Destination(index, f"addr{index}", key),
                               f"litecoin:addr{index}")
        await uow.commit()
    return int(index)


async def _event_types(units: Units) -> list[str]:
    async with units() as uow:
        return [e.type for e in reversed(await uow.events.page(None, None, 100))]


# --- the transaction -------------------------------------------------------------------
async def test_commit_keeps_and_leaving_without_commit_rolls_back(units: Units) -> None:
    await _account(units)
    async with units() as uow:
        await uow.accounts.add(Account("acc_b", T0), Profile("b@example.org"), "idx-b", "h",
                               "v1")
        await uow.api_keys.add(ApiKeyRecord("key_1", "n", frozenset({"x"}), T0), "kh")
    async with units() as uow:
        assert await uow.accounts.get("acc_a") is not None
        assert await uow.accounts.get("acc_b") is None
        assert await uow.api_keys.by_hash("kh") is None
    assert await _event_types(units) == ["account.created"]


async def test_an_exception_inside_the_block_rolls_back(units: Units) -> None:
    with pytest.raises(RuntimeError):
        async with units() as uow:
            await uow.accounts.add(Account("acc_x", T0), Profile("x@example.org"), "idx-x",
                                   "h", "v1")
            raise RuntimeError("boom")
    async with units() as uow:
        assert await uow.accounts.get("acc_x") is None


async def test_work_after_a_commit_is_a_transaction_of_its_own(units: Units) -> None:
    await _account(units)
    async with units() as uow:
        await uow.throttle.put("k1", ThrottleState(1, T0, None))
        await uow.commit()
        await uow.throttle.put("k2", ThrottleState(2, T0, None))
    async with units() as uow:
        assert await uow.throttle.get("k1") == ThrottleState(1, T0, None)
        assert await uow.throttle.get("k2") is None


async def test_collected_events_reach_the_outbox_once_with_deliveries(units: Units) -> None:
    async with units() as uow:
        await uow.endpoints.add(EndpointRecord("whe_1", "https://a.example/h", (), "", True,
                                               T0), "whsec_x")
        await uow.endpoints.add(EndpointRecord("whe_2", "https://b.example/h",
                                               ("invoice.created",), "", True, T0), "whsec_y")
        await uow.commit()
    account = await _account(units)
    assert account.events == []  # published: cleared from the aggregate
    await _add_invoice(units, _invoice("inv_1"), b"k1")
    assert await _event_types(units) == ["account.created", "invoice.created"]
    async with units() as uow:
        [created, signup] = await uow.events.page(None, None, 10)
        assert (created.type, signup.type) == ("invoice.created", "account.created")
        assert '"invoice_id":"inv_1"' in created.body
        full = await uow.events.get(created.id)
        assert sorted(d.endpoint_id for d in full.deliveries) == ["whe_1", "whe_2"]
        assert {d.status for d in full.deliveries} == {"pending"}
        assert [d.endpoint_id for d in (await uow.events.get(signup.id)).deliveries] == [
            "whe_1"]
        assert [e.id for e in await uow.events.page("account.created", None, 10)] == [
            signup.id]
        assert await uow.events.page(None, created.id, 10) == [signup]


# --- accounts --------------------------------------------------------------------------
async def test_accounts_add_get_save_and_conflicts(units: Units) -> None:
    await _account(units)
    with pytest.raises(Conflict):
        await _account(units, "acc_b", "a")
    await _account(units, "acc_b", "b")
    async with units() as uow:
        found = await uow.accounts.get("acc_a", for_update=True)
        assert (found.id, found.datacenter, found.currency, found.events) == (
            "acc_a", "nl-ams", "EUR", [])
        assert found.policy_version == "v1"
        assert (await uow.accounts.profile("acc_a")).email == "a@example.org"
        login = await uow.accounts.find_login("idx-a")
        assert (login.account.id, login.password_hash) == ("acc_a", "hash")
        assert await uow.accounts.find_login("idx-zz") is None
        found.schedule_deletion(T0, timedelta(days=7))
        await uow.accounts.save(found)
        await uow.accounts.set_password_hash("acc_a", "hash2")
        with pytest.raises(Conflict):
            await uow.accounts.update_profile("acc_a", Profile("b@example.org"), "idx-b")
        await uow.commit()
    async with units() as uow:
        await uow.accounts.update_profile("acc_a", Profile("c@example.org", "C"), "idx-c")
        await uow.commit()
    async with units() as uow:
        assert (await uow.accounts.find_login("idx-c")).password_hash == "hash2"
        assert (await uow.accounts.profile("acc_a")).display_name == "C"
        assert await uow.accounts.due_for_deletion(T0 + timedelta(days=8)) == ["acc_a"]
        assert await uow.accounts.due_for_deletion(T0 + timedelta(days=6)) == []
        assert await uow.accounts.alive_among(["acc_b", "acc_a", "acc_q"]) == [
            "acc_a", "acc_b"]
    assert "account.deletion_scheduled" in await _event_types(units)


async def test_two_factor_steps_and_recovery_codes(units: Units) -> None:
    await _account(units)
    async with units() as uow:
        assert not (await uow.accounts.totp("acc_a")).enabled
        await uow.accounts.set_totp("acc_a", "SECRET", T0, None)
        assert await uow.accounts.advance_totp_step("acc_a", 5)
        assert not await uow.accounts.advance_totp_step("acc_a", 5)
        assert not await uow.accounts.advance_totp_step("acc_a", 4)
        assert await uow.accounts.advance_totp_step("acc_a", 6)
        await uow.accounts.replace_recovery_codes("acc_a", ["h1", "h2"])
        await uow.commit()
    async with units() as uow:
        state = await uow.accounts.totp("acc_a")
        assert (state.secret, state.enabled, state.last_step) == ("SECRET", True, 6)
        assert (await uow.accounts.details("acc_a")).totp_enabled_at == T0
        codes = await uow.accounts.unused_recovery_codes("acc_a")
        assert sorted(h for _, h in codes) == ["h1", "h2"]
        first = codes[0][0]
        assert await uow.accounts.use_recovery_code(first, T0)
        assert not await uow.accounts.use_recovery_code(first, T0)
        assert len(await uow.accounts.unused_recovery_codes("acc_a")) == 1
        assert not await uow.accounts.email_verified("acc_a")
        await uow.accounts.mark_email_verified("acc_a", T0)
        assert await uow.accounts.email_verified("acc_a")
        await uow.accounts.set_email_undo_until("acc_a", T0)
        assert await uow.accounts.email_undo_until("acc_a") == T0
        await uow.accounts.set_objection("acc_a", T0)
        assert await uow.accounts.objection("acc_a") == T0


async def test_erasing_leaves_a_tombstone(units: Units) -> None:
    await _account(units)
    async with units() as uow:
        await uow.sessions.add(SessionRecord("s1", "acc_a", T0 + timedelta(hours=1), None), T0)
        await uow.security_log.add("acc_a", "login", "192.0.2.1", T0)
        await uow.throttle.put("idx-a", ThrottleState(3, T0, None))
        await uow.accounts.erase_personal_data("acc_a")
        await uow.commit()
    async with units() as uow:
        assert await uow.accounts.get("acc_a") is not None
        assert await uow.accounts.find_login("idx-a") is None
        assert await uow.sessions.get("s1") is None
        assert await uow.security_log.for_account("acc_a") == []
        assert await uow.throttle.get("idx-a") is None


async def test_sessions(units: Units) -> None:
    await _account(units)
    later = T0 + timedelta(hours=8)
    async with units() as uow:
        for sid in ("s1", "s2", "s3"):
            await uow.sessions.add(SessionRecord(sid, "acc_a", later, None), T0)
        await uow.sessions.revoke("s1", T0)
        assert await uow.sessions.revoke_all("acc_a", T0, keep="s3") == 1
        await uow.sessions.touch("s3", T0 + timedelta(minutes=5))
        await uow.commit()
    async with units() as uow:
        s1, s2, s3 = [await uow.sessions.get(s) for s in ("s1", "s2", "s3")]
        assert s1.revoked_at == T0 and s2.revoked_at == T0 and s3.revoked_at is None
        assert (s3.expires_at, s3.last_seen_at) == (later, T0 + timedelta(minutes=5))
        assert await uow.sessions.get("nope") is None


async def test_api_keys_throttle_and_security_log(units: Units) -> None:
    async with units() as uow:
        await uow.api_keys.add(ApiKeyRecord("key_1", "one", frozenset({"a", "b"}), T0), "h1")
        await uow.api_keys.add(ApiKeyRecord("key_2", "two", frozenset(),
                                            T0 + timedelta(seconds=1)), "h2")
        assert await uow.api_keys.revoke("key_2", T0)
        assert not await uow.api_keys.revoke("key_2", T0)
        await uow.throttle.put("k", ThrottleState(1, T0, None))
        await uow.throttle.put("k", ThrottleState(2, T0, T0))
        await uow.security_log.add(None, "old", None, T0 - timedelta(days=40))
        await uow.security_log.add(None, "new", None, T0)
        await uow.commit()
    async with units() as uow:
        assert (await uow.api_keys.by_hash("h1")).scopes == frozenset({"a", "b"})
        assert [k.revoked_at for k in await uow.api_keys.all()] == [None, T0]
        assert await uow.throttle.get("k") == ThrottleState(2, T0, T0)
        await uow.throttle.clear("k")
        assert await uow.throttle.get("k") is None
        cut = T0 - timedelta(days=30)
        assert await uow.security_log.purge(cut, dry_run=True) == 1
        assert await uow.security_log.purge(cut, dry_run=False) == 1
        assert await uow.security_log.purge(cut, dry_run=True) == 0


# --- invoices and payments -------------------------------------------------------------
async def test_allocation_is_per_space_and_a_rollback_gives_indexes_back(units: Units) -> None:
    async with units() as uow:
        assert await uow.invoices.allocate("LTC", 3) == range(0, 3)
        assert await uow.invoices.allocate("ETH") == range(0, 1)
        await uow.commit()
    async with units() as uow:
        assert await uow.invoices.allocate("LTC") == range(3, 4)
    async with units() as uow:
        assert await uow.invoices.allocate("LTC") == range(3, 4)
        with pytest.raises(ValueError):
            await uow.invoices.allocate("LTC", 0)


async def test_invoices_read_page_and_save(units: Units) -> None:
    await _account(units)
    await _account(units, "acc_b", "b")
    for n in range(4):
        await _add_invoice(units, _invoice(f"inv_{n}", at=T0 + timedelta(minutes=n)),
                           bytes([n]))
    await _add_invoice(units, _invoice("inv_b", "acc_b"), b"b")
    async with units() as uow:
        record = await uow.invoices.read("inv_1")
        assert (record.address, record.payment_uri) == ("addr1", "litecoin:addr1")
        assert record.invoice.terms == _invoice("inv_1", at=T0 + timedelta(minutes=1)).terms
        assert await uow.invoices.read("inv_nope") is None
        page = await uow.invoices.page("acc_a", None, None, 2)
        assert [r.invoice.id for r in page] == ["inv_3", "inv_2"]
        page = await uow.invoices.page("acc_a", None, "inv_2", 10)
        assert [r.invoice.id for r in page] == ["inv_1", "inv_0"]
        assert [r.invoice.id for r in await uow.invoices.page(None, "settled", None, 10)] == []
        keys = await uow.invoices.by_match_keys("LTC", [b"\x01", b"b", b"zz"])
        assert {k: i.id for k, i in keys.items()} == {b"\x01": "inv_1", b"b": "inv_b"}
        assert await uow.invoices.by_match_keys("ETH", [b"\x01"]) == {}
        assert [i.id for i in await uow.invoices.get_many(["inv_2", "inv_0", "inv_2"])] == [
            "inv_0", "inv_2"]
        now = T0 + timedelta(minutes=15, seconds=30)  # inv_0 expired, the others open
        assert [i.id for i in await uow.invoices.open_for_account("acc_a", now)] == [
            "inv_3", "inv_2", "inv_1"]
        assert [i.id for i in await uow.invoices.due_by_time(now)] == ["inv_0", "inv_b"]
        invoice = await uow.invoices.get("inv_0", for_update=True)
        assert invoice.events == [] and invoice.status == Status.NEW
        invoice.status = Status.EXPIRED
        await uow.invoices.save(invoice)
        await uow.commit()
    async with units() as uow:
        assert (await uow.invoices.get("inv_0")).status == Status.EXPIRED
        assert [i.id for i in await uow.invoices.due_by_time(now)] == ["inv_b"]


async def test_payments_are_recorded_once_and_follow_the_chain(units: Units) -> None:
    await _account(units)
    await _add_invoice(units, _invoice("inv_p"), b"k")
    seen = T0 + timedelta(minutes=1)
    async with units() as uow:
        assert await uow.payments.record("LTC", "tx", 0, "inv_p", 2**200, None, seen)
        assert not await uow.payments.record("LTC", "tx", 0, "inv_p", 2**200,
                                             BlockRef(5, "h5"), T0 + timedelta(minutes=9),
                                             T0 + timedelta(minutes=8))
        new = await uow.payments.record_many([
            NewPayment("LTC", "tx", 0, "inv_p", 2**200, seen),
            NewPayment("LTC", "tx", 1, "inv_p", 7, seen, Lock(9, None)),
            NewPayment("LTC", "tx2", 0, "inv_p", 8, seen),
        ], BlockRef(6, "h6"), T0 + timedelta(minutes=10))
        assert new == {("LTC", "tx", 1), ("LTC", "tx2", 0)}
        await uow.commit()
    async with units() as uow:
        [a, b, c] = (await uow.payments.for_invoices(["inv_p"]))["inv_p"]
        assert (a.amount, a.block_height, a.status, a.seen_at, a.block_time) == (
            2**200, 6, PaymentStatus.CONFIRMED, seen, None)
        assert (b.lock, b.block_time, c.block_hash) == (Lock(9, None),
                                                        T0 + timedelta(minutes=10), "h6")
        assert [p.txid for p in (await uow.invoices.read("inv_p")).payments] == [
            "tx", "tx", "tx2"]
        assert await uow.payments.unconfirmed_txids(["LTC"]) == []
        assert await uow.payments.disconnect(["LTC"], "h6") == ["inv_p"]
        assert await uow.payments.disconnect(["ETH"], "h6") == []
        assert sorted(await uow.payments.unconfirmed_txids(["LTC"])) == ["tx", "tx2"]
        assert await uow.payments.revert(["LTC"], ["tx2"]) == ["inv_p"]
        await uow.payments.record("LTC", "tx", 0, "inv_p", 2**200, BlockRef(7, "h7"), T0)
        assert await uow.payments.unconfirm(["LTC"], ["tx"]) == ["inv_p"]
        await uow.commit()
    async with units() as uow:
        found = {(p.txid, p.index): p for p in
                 (await uow.payments.for_invoices(["inv_p", "inv_q"]))["inv_p"]}
        assert found["tx2", 0].status == PaymentStatus.REVERTED
        assert found["tx", 0].status == PaymentStatus.PENDING
        assert found["tx", 0].block_hash is None
        new = await uow.payments.record_many(
            [NewPayment("LTC", "tx2", 0, "inv_p", 8, T0)], None, None)
        assert new == set()
        assert (await uow.payments.for_invoices(["inv_p"]))["inv_p"][2].status == \
            PaymentStatus.PENDING  # back in the mempool


async def test_depth_open_invoices_and_address_usage(units: Units) -> None:
    await _account(units)
    await _add_invoice(units, _invoice("inv_0"), b"0")
    await _add_invoice(units, _invoice("inv_1"), b"1")
    async with units() as uow:
        await uow.payments.record("LTC", "tx", 0, "inv_1", 1000, BlockRef(10, "h10"), T0)
        await uow.commit()
    now = T0 + timedelta(minutes=1)
    async with units() as uow:
        # Two confirmations required: reached at tip 11.
        assert await uow.invoices.reaching_depth(["LTC"], 10, 11, 12, now) == ["inv_1"]
        assert await uow.invoices.reaching_depth(["LTC"], 11, 20, 12, now) == []
        assert await uow.invoices.reaching_depth(["ETH"], 10, 11, 12, now) == []
        assert [i.id for i in await uow.invoices.open_with_payments(["LTC"], now)] == [
            "inv_1"]
        assert await uow.invoices.address_usage("LTC") == (2, {1})
        assert await uow.invoices.address_usage("ETH") == (0, set())


async def test_cursors(units: Units) -> None:
    async with units() as uow:
        assert await uow.cursors.get("ltc") is None
        assert not await uow.cursors.set_catch_up("ltc", "syncing", T0)
        await uow.cursors.set("ltc", BlockRef(1, "h1"), T0)
        assert await uow.cursors.set_catch_up("ltc", "syncing", T0)
        await uow.cursors.set("ltc", BlockRef(2, "h2"), T0)
        await uow.commit()
    async with units() as uow:
        assert await uow.cursors.get("ltc") == BlockRef(2, "h2")


async def test_idempotency_keys(units: Units) -> None:
    async with units() as uow:
        assert await uow.idempotency.claim("s", "k", "fp", "o1", T0) is None
        await uow.commit()
    async with units() as uow:
        held = await uow.idempotency.claim("s", "k", "fp2", "o2", T0)
        assert (held.fingerprint, held.state, held.owner, held.invoice_id) == (
            "fp", "running", "o1", None)
        assert not await uow.idempotency.complete("s", "k", "o2", "inv_1", T0)
        assert not await uow.idempotency.take_over("s", "k", "o2", "o3", T0)
        assert await uow.idempotency.take_over("s", "k", "o1", "o2", T0)
        assert await uow.idempotency.complete("s", "k", "o2", "inv_1", T0)
        assert not await uow.idempotency.complete("s", "k", "o2", "inv_1", T0)
        await uow.idempotency.release("s", "k", "o2")  # done: stays
        await uow.commit()
    async with units() as uow:
        done = await uow.idempotency.claim("s", "k", "fp", "o9", T0)
        assert (done.state, done.invoice_id, done.owner) == ("done", "inv_1", "o2")
        assert await uow.idempotency.claim("s", "k2", "fp", "o1", T0) is None
        await uow.idempotency.release("s", "k2", "o1")
        assert await uow.idempotency.claim("s", "k2", "fp", "o1", T0) is None


# --- webhooks --------------------------------------------------------------------------
async def test_endpoints_and_redelivery(units: Units) -> None:
    async with units() as uow:
        for n in (1, 2):
            await uow.endpoints.add(EndpointRecord(
                f"whe_{n}", f"https://{n}.example/h", (), "d", True, T0 + timedelta(n)), "s")
        await uow.commit()
    await _account(units)
    async with units() as uow:
        assert [e.id for e in await uow.endpoints.active()] == ["whe_1", "whe_2"]
        assert await uow.endpoints.rotate("whe_1", "s2", T0)
        assert await uow.endpoints.set_enabled("whe_2", False)
        assert not (await uow.endpoints.get("whe_2")).enabled
        assert await uow.endpoints.delete("whe_1", T0)
        assert not await uow.endpoints.delete("whe_1", T0)
        assert await uow.endpoints.get("whe_1") is None
        assert not await uow.endpoints.rotate("whe_1", "s3", T0)
        assert [e.id for e in await uow.endpoints.active()] == ["whe_2"]
        [event] = await uow.events.page(None, None, 10)
        statuses = {d.endpoint_id: d.status for d in (await uow.events.get(event.id)).deliveries}
        assert statuses == {"whe_1": "disabled", "whe_2": "pending"}
        assert await uow.events.redeliver(event.id, T0) == 0  # whe_2 disabled, whe_1 gone
        assert await uow.endpoints.set_enabled("whe_2", True)
        assert await uow.events.redeliver(event.id, T0) == 1
        assert await uow.events.redeliver_failed(T0, T0) == 0
        assert await uow.events.get("evt_nope") is None


async def test_cash_tokens_by_hash_used_once_due_and_erased(units: Units) -> None:
    from gateway.domain.cash import CashRules, Envelope, issue

    rules = CashRules(timedelta(days=120), timedelta(days=40))
    await _account(units)
    await _account(units, "acc_b", "b")
    token = issue("ctk_1", "acc_a", T0, rules)
    async with units() as uow:
        await uow.cash_tokens.add(token, "hash-1")
        await uow.cash_tokens.add(issue("ctk_2", "acc_a", T0 - timedelta(days=130), rules),
                                  "hash-2")
        await uow.cash_tokens.add(issue("ctk_3", "acc_b", T0, rules), "hash-3")
        await uow.commit()
    async with units() as uow:
        assert await uow.cash_tokens.by_hash("hash-1") == token
        assert await uow.cash_tokens.by_hash("nothing") is None
        assert [t.id for t in await uow.cash_tokens.open_for("acc_a", T0)] == ["ctk_1"]
        assert await uow.cash_tokens.due(T0 - timedelta(days=40), T0) == ["ctk_2"]
        used = token.used(Envelope(500, "EUR", "stf_1", T0, "a note"))
        assert await uow.cash_tokens.mark_used(used)
        assert not await uow.cash_tokens.mark_used(used)  # once
        await uow.commit()
    async with units() as uow:
        assert await uow.cash_tokens.get("ctk_1") == used
        assert await uow.cash_tokens.open_for("acc_a", T0) == []
        later = T0 + timedelta(days=41)
        assert await uow.cash_tokens.due(later - timedelta(days=40), later) == [
            "ctk_1", "ctk_2"]
        assert not await uow.cash_tokens.erase("ctk_3", T0, T0)  # not due
        assert await uow.cash_tokens.erase("ctk_2", T0, T0)
        assert await uow.cash_tokens.delete("ctk_1")
        assert not await uow.cash_tokens.delete("ctk_1")
        await uow.commit()
    async with units() as uow:
        assert await uow.cash_tokens.count_for("acc_a") == 0
        await uow.accounts.erase_personal_data("acc_b")
        await uow.commit()
    async with units() as uow:
        assert await uow.cash_tokens.count_for("acc_b") == 0


async def test_voucher_codes_are_redeemed_once_while_their_batch_is_live(
        units: Units) -> None:
    from gateway.domain.vouchers import VoucherBatch
    from gateway.services.ports.vouchers import NewVoucher

    day = timedelta(days=1)
    live = VoucherBatch("vbt_live", T0, 2, Fiat(1000, "EUR"), label="shop A")
    ending = VoucherBatch("vbt_end", T0 + day, 1, Fiat(500, "USD"), expires_at=T0 + day)
    async with units() as uow:
        await uow.vouchers.add_batch(live, [NewVoucher("vou_1", "h1"),
                                            NewVoucher("vou_2", "h2")])
        await uow.vouchers.add_batch(ending, [NewVoucher("vou_3", "h3")])
        await uow.commit()
    async with units() as uow:
        won = await uow.vouchers.redeem("h1", "acc_a", T0)
        assert won is not None
        assert (won.voucher.id, won.voucher.redeemed_by, won.batch.id) == (
            "vou_1", "acc_a", "vbt_live")
        assert won.batch.value == Fiat(1000, "EUR") and won.batch.label == "shop A"
        assert await uow.vouchers.redeem("h1", "acc_b", T0) is None  # used
        assert await uow.vouchers.redeem("nope", "acc_b", T0) is None  # unknown
        assert await uow.vouchers.redeem("h3", "acc_b", T0 + day) is None  # expired
        await uow.commit()
    async with units() as uow:
        assert await uow.vouchers.redeem("h2", "acc_a", T0) is not None
        # Left without commit: rolled back, the code is still there to redeem.
    async with units() as uow:
        assert await uow.vouchers.revoke("vbt_live", T0)
        assert not await uow.vouchers.revoke("vbt_live", T0)  # already
        assert not await uow.vouchers.revoke("vbt_none", T0)
        assert await uow.vouchers.redeem("h2", "acc_a", T0) is None  # revoked
        await uow.commit()
    async with units() as uow:
        batches = await uow.vouchers.batches()
        assert [(b.id, b.redeemed, b.revoked_at is not None) for b in batches] == [
            ("vbt_end", 0, False), ("vbt_live", 1, True)]
        assert (await uow.vouchers.batch("vbt_live")).redeemed_value == 1000  # type: ignore[union-attr]
        assert await uow.vouchers.batch("vbt_none") is None
        used = await uow.vouchers.redeemed_between(T0, T0 + day)
        assert [r.voucher.id for r in used] == ["vou_1"]
        totals = {t.currency: (t.sold, t.redeemed, t.outstanding)
                  for t in await uow.vouchers.totals(T0 + timedelta(seconds=1))}
        # EUR: one code redeemed, the other revoked (not sold); the USD batch is made
        # a day later: not on the books yet.
        assert totals == {"EUR": (1000, 1000, 0)}
        # As the books stood at T0 itself: nothing had happened yet (periods end there).
        assert await uow.vouchers.totals(T0) == []
        # Two days on: the USD code was sold, and has expired unredeemed (owed no more).
        later = {t.currency: (t.sold, t.redeemed, t.outstanding)
                 for t in await uow.vouchers.totals(T0 + 2 * day)}
        assert later == {"EUR": (1000, 1000, 0), "USD": (500, 0, 0)}


async def test_an_invoice_is_read_with_its_payments_and_its_feeds_tip(units: Units) -> None:
    await _account(units)
    await _add_invoice(units, _invoice("inv_r"), b"r")
    await _add_invoice(units, _invoice("inv_e"), b"e")
    seen = T0 + timedelta(minutes=1)
    async with units() as uow:
        await uow.payments.record_many([
            NewPayment("LTC", "tx2", 0, "inv_r", 8, seen + timedelta(seconds=1)),
            NewPayment("LTC", "tx1", 1, "inv_r", 7, seen, Lock(9, None)),
        ], BlockRef(6, "h6"), T0 + timedelta(minutes=10))
        await uow.cursors.set("ltc-feed", BlockRef(8, "h8"), T0)
        await uow.cursors.set("LTC", BlockRef(3, "h3"), T0)
        await uow.commit()
    async with units() as uow:
        found = await uow.invoices.read_with_tip("inv_r", {"LTC": "ltc-feed", "X": "y"})
        assert found is not None
        record, tip = found
        assert record == await uow.invoices.read("inv_r")
        assert [(p.txid, p.index, p.lock) for p in record.payments] == [
            ("tx1", 1, Lock(9, None)), ("tx2", 0, None)]
        assert tip == BlockRef(8, "h8")
        # A coin no longer configured counts against its own name's cursor.
        assert (await uow.invoices.read_with_tip("inv_r", {}))[1] == BlockRef(3, "h3")
        assert (await uow.invoices.read_with_tip("inv_e", {"LTC": "none"})) == (
            await uow.invoices.read("inv_e"), None)
        assert await uow.invoices.read_with_tip("inv_missing", {}) is None
