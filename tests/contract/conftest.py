from collections.abc import AsyncIterator

import pytest

from tests.contract.drivers import DRIVERS, Driver


@pytest.fixture(params=sorted(DRIVERS))
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    """Every registered family, through its drivers (tests.contract.drivers.DRIVERS); a
    real node fails (never skips) when it is missing."""
    found = DRIVERS[request.param].make(request.getfixturevalue)
    yield found
    for follower in (found.follower, *found.others):
        await follower.aclose()
