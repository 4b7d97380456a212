"""The core use cases run over the in-memory unit of work (tests/support/memory.py):
sign-up and login with their throttle and security log, invoices with idempotency keys
and address allocation, webhook endpoints receiving the outbox's events, API keys. No
database: milliseconds each. The memory unit behaves as the SQL one does because both
pass tests/contract/test_unit_of_work_contract.py."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chains.base import Destination
from gateway.adapters.tokens import SessionTokens
from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat
from gateway.services.accounts import AccountPolicy, AccountService, Signup
from gateway.services.api_keys import ApiKeyService
from gateway.services.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized
from gateway.services.invoices import (
    CoinRules,
    IdempotencyRequest,
    InvoicePolicy,
    InvoiceService,
)
from gateway.services.webhook_endpoints import WebhookEndpointService
from gateway.services.webhook_events import WebhookEventService
from tests.support.memory import MemoryStore
from webhooks.targets import TargetPolicy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class PlainHasher:
    async def hash(self, password: str) -> str:
        return "h:" + password

    async def verify(self, stored: str | None, password: str) -> bool:
        return stored == "h:" + password

    def needs_rehash(self, stored: str) -> bool:
        return False


class FixedRates:
    async def rate(self, coin: str, currency: str) -> tuple[Decimal, str]:
        return Decimal("80"), "fixed"


class Chains:
    """One coin, LTC, on one address space; addresses from the index."""

    def __init__(self) -> None:
        self.down = False

    def coins(self) -> tuple[str, ...]:
        return ("LTC",)

    def decimals(self, coin: str) -> int:
        return 8

    def address_space(self, coin: str) -> str:
        return "ltc-xpub"

    def feed(self, coin: str) -> str:
        return "ltc"

    async def allocate(self, coin: str, indexes: Sequence[int]) -> list[Destination]:
        if self.down:
            from chains.base import ChainError
            raise ChainError("wallet down")
        return [Destination(i, f"ltc1addr{i}", i.to_bytes(4, "big")) for i in indexes]

    def payment_uri(self, coin: str, destination: Destination, base_units: int) -> str:
        return f"litecoin:{destination.address}?amount={base_units}"

    def network_facts(self, coin: str) -> None:
        return None


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = Clock()
        self.chains = Chains()

        units = self.store.unit  # a factory: each call one transaction
        self.accounts = AccountService(
            lambda: units(self.clock), passwords=PlainHasher(),
            blind_index=lambda s: "idx:" + s, tokens=SessionTokens(b"k" * 32, "test"),
            clock=self.clock, policy=AccountPolicy(("nl-ams",), ("EUR",), "v1"))
        self.invoices = InvoiceService(
            lambda: units(self.clock), chains=self.chains, rates=FixedRates(),
            clock=self.clock, policy=InvoicePolicy(), coin_rules={"LTC": CoinRules(6)})
        self.endpoints = WebhookEndpointService(
            lambda: units(self.clock), self.clock, new_secret=lambda: "whsec_test",
            targets=TargetPolicy(), resolve=self._resolve)
        self.events = WebhookEventService(lambda: units(self.clock), self.clock)
        self.api_keys = ApiKeyService(lambda: units(self.clock), self.clock,
                                      lambda: "gk_secret", lambda s: "digest:" + s)

    @staticmethod
    async def _resolve(host: str) -> list[str]:
        return ["93.184.216.34"]

    async def customer(self, email: str = "ann@example.org") -> str:
        return (await self.accounts.sign_up(Signup(email, PASSWORD))).account.id


@pytest.fixture
def world() -> World:
    return World()


async def test_sign_up_and_log_in(world: World) -> None:
    account_id = await world.customer()
    session = await world.accounts.log_in("Ann@Example.org", PASSWORD, ip="192.0.2.7")
    assert session.account_id == account_id
    assert await world.accounts.authenticate(session.token) == account_id
    assert world.store.event_types() == ["account.created"]
    with pytest.raises(Conflict):
        await world.customer("ann@example.org")
    assert world.store.event_types() == ["account.created"]  # the refused one: none


async def test_a_wrong_password_is_counted_and_logged(world: World) -> None:
    account_id = await world.customer()
    with pytest.raises(Unauthorized):
        await world.accounts.log_in("ann@example.org", "not the password at all", ip="192.0.2.7")
    with pytest.raises(Unauthorized):
        await world.accounts.log_in("nobody@example.org", PASSWORD)
    state = world.store.state
    assert state.throttle["idx:ann@example.org"].failures == 1
    assert [e.event for a, e in state.security_log if a == account_id] == ["login_failed"]
    assert state.sessions == {}
    await world.accounts.log_in("ann@example.org", PASSWORD, ip="192.0.2.7")
    assert "idx:ann@example.org" not in world.store.state.throttle  # cleared by success
    assert [e.event for _, e in world.store.state.security_log][-1] == "login_succeeded"


async def test_an_invoice_takes_the_next_address_and_goes_to_the_outbox(world: World) -> None:
    account_id = await world.customer()
    first = await world.invoices.create(account_id, Fiat(999, "EUR"), "LTC")
    second = await world.invoices.create(account_id, Fiat(999, "EUR"), "LTC")
    assert (first.record.address, second.record.address) == ("ltc1addr0", "ltc1addr1")
    invoice = first.record.invoice
    assert invoice.terms.amount_due == 12_487_500  # 9.99 EUR at 80 EUR/LTC
    assert invoice.terms.confirmations_required == 6
    read = await world.invoices.read(invoice.id)
    assert read.record.payment_uri == "litecoin:ltc1addr0?amount=12487500"
    assert world.store.event_types() == ["account.created", "invoice.created",
                                         "invoice.created"]


async def test_a_failed_creation_rolls_back_its_address_index(world: World) -> None:
    account_id = await world.customer()
    with pytest.raises(InvalidInput):
        await world.invoices.create("acc_nobody", Fiat(100, "EUR"), "LTC")
    world.chains.down = True
    with pytest.raises(ServiceUnavailable):
        await world.invoices.create(account_id, Fiat(100, "EUR"), "LTC")
    world.chains.down = False
    assert world.store.state.counters == {}
    created = await world.invoices.create(account_id, Fiat(100, "EUR"), "LTC")
    assert created.record.address == "ltc1addr0"
    assert world.store.event_types().count("invoice.created") == 1


async def test_an_idempotency_key_gives_the_same_invoice_again(world: World) -> None:
    account_id = await world.customer()
    idem = IdempotencyRequest("key_1", "k-1", "body-a")
    view, replayed = await world.invoices.create_once(account_id, Fiat(500, "EUR"), "LTC",
                                                      None, idem)
    again, replayed_again = await world.invoices.create_once(
        account_id, Fiat(500, "EUR"), "LTC", None, idem)
    assert (replayed, replayed_again) == (False, True)
    assert again.record.invoice.id == view.record.invoice.id
    with pytest.raises(InvalidInput):
        await world.invoices.create_once(account_id, Fiat(501, "EUR"), "LTC", None,
                                         IdempotencyRequest("key_1", "k-1", "body-b"))
    assert len(world.store.state.invoices) == 1
    # A failed creation gives its key back: the same key may be used again.
    retry = IdempotencyRequest("key_1", "k-2", "body-c")
    with pytest.raises(InvalidInput):
        await world.invoices.create_once("acc_nobody", Fiat(1, "EUR"), "LTC", None, retry)
    assert ("key_1", "k-2") not in world.store.state.idempotency


async def test_endpoints_receive_the_events_of_later_commits(world: World) -> None:
    created = await world.endpoints.create("https://hooks.example.org/in",
                                           ["invoice.created"])
    assert created.secret == "whsec_test"
    account_id = await world.customer()
    await world.invoices.create(account_id, Fiat(100, "EUR"), "LTC")
    page = await world.events.page(None, None, 10)
    assert [e.type for e in page] == ["invoice.created", "account.created"]
    detail = await world.events.get(page[0].id)
    assert [(d.endpoint_id, d.status) for d in detail.deliveries] == [
        (created.record.id, "pending")]
    assert (await world.events.get(page[1].id)).deliveries == ()
    await world.endpoints.delete(created.record.id)
    assert (await world.events.get(page[0].id)).deliveries[0].status == "disabled"
    with pytest.raises(InvalidInput):
        await world.endpoints.create("http://hooks.example.org/in")  # plain http


async def test_api_keys(world: World) -> None:
    world.clock.now = T0 + timedelta(minutes=1)
    key = await world.api_keys.create("provisioning", ["invoices:write"])
    assert (await world.api_keys.authorize("gk_secret", "invoices:write")).id == key.record.id
    await world.api_keys.revoke(key.record.id)
    with pytest.raises(Unauthorized):
        await world.api_keys.authorize("gk_secret", "invoices:write")
    with pytest.raises(NotFound):
        await world.api_keys.revoke(key.record.id)
    assert [k.revoked_at for k in await world.api_keys.list()] == [T0 + timedelta(minutes=1)]
