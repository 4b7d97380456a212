"""The delivery worker is woken by a commit that queued deliveries, not by every commit
with events: with no endpoint for them, events are stored and nothing is to be sent."""

import os
from datetime import UTC, datetime

import pytest

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.ports import EndpointRecord, Profile

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_only_commits_that_queue_deliveries_wake_the_worker(database_url: str) -> None:
    engine = make_engine(database_url)
    rings: list[int] = []
    cipher = FieldCipher([("t", os.urandom(32))])

    def unit() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher, clock=lambda: T0,
                             on_events=lambda: rings.append(1))

    async def sign_up(n: int) -> None:
        account = Account(f"acc_{n}", T0, "nl-ams", "EUR")
        account.created()  # an account.created event
        async with unit() as uow:
            await uow.accounts.add(account, Profile(f"{n}@example.org"), f"idx-{n}", "h", "v1")
            await uow.commit()

    try:
        await sign_up(1)
        assert rings == []  # stored, nobody to send it to
        async with unit() as uow:
            await uow.endpoints.add(EndpointRecord("whe_1", "https://a.example/h", (), "",
                                                   True, T0), "whsec_x")
            await uow.commit()
        await sign_up(2)
        assert rings == [1]
        async with unit() as uow:
            assert len(await uow.events.page(None, None, 10)) == 2
    finally:
        await engine.dispose()
