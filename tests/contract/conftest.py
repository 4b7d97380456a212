from collections.abc import AsyncIterator

import pytest

from tests.contract.drivers import KINDS, Driver


@pytest.fixture(params=KINDS)
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    """Every registered family, through its driver: the fake in memory, the UTXO family on
    a real litecoind (module-scoped; fails, never skips, when litecoind is missing)."""
    found: Driver
    if request.param == "fake":
        from tests.contract.drivers.fake import FakeDriver

        found = FakeDriver()
    else:
        from tests.contract.drivers.litecoin import LitecoinDriver

        found = LitecoinDriver(request.getfixturevalue("litecoin"))
    yield found
    await found.follower.aclose()
