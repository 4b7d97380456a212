from collections.abc import AsyncIterator

import pytest

from tests.contract.drivers import KINDS, Driver


@pytest.fixture(params=KINDS)
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    """Every registered family, through its driver: the fake in memory, the UTXO family on
    a real litecoind, the EVM family on a real anvil, the Monero family on a real monerod
    with a view-only wallet (fails, never skips, when the node is missing)."""
    found: Driver
    if request.param == "fake":
        from tests.contract.drivers.fake import FakeDriver

        found = FakeDriver()
    elif request.param == "evm":
        from tests.contract.drivers.evm import EvmDriver

        found = EvmDriver(request.getfixturevalue("anvil"))
    elif request.param == "monero":
        from tests.contract.drivers.monero import MoneroDriver

        found = MoneroDriver(request.getfixturevalue("monero"))
    else:
        from tests.contract.drivers.litecoin import LitecoinDriver

        found = LitecoinDriver(request.getfixturevalue("litecoin"))
    yield found
    await found.follower.aclose()
