"""A wallet closed under the follower (wallet-rpc restarted between two polls) is opened
again before anything counts its subaddresses: counting them on no wallet at all read as
"the wallet knows none of them", and the catch-up then failed on every retry while the
follower still believed the wallet open (payments to the invoice never seen)."""

import logging

import pytest

from tests.contract.drivers.monero import MoneroDriver
from tests.support.monero_nodes import MoneroRegtest


async def test_restore_after_the_wallet_was_closed_reopens_it_and_restores_nothing(
        monero: MoneroRegtest, caplog: pytest.LogCaptureFixture) -> None:
    driver = MoneroDriver(monero, own_wallet=True)
    follower = driver.follower
    try:
        [destination] = await follower.allocate([4])  # opens the wallet, creates (0, 1..5)
        monero.merchant.rpc("close_wallet")  # as a restarted wallet-rpc: no wallet open
        with caplog.at_level(logging.WARNING, logger="chains.monero"):
            await follower.restore(4)  # type: ignore[attr-defined]
        assert not [r.getMessage() for r in caplog.records if "knows" in r.getMessage()]
        opened = monero.merchant.rpc("get_address", account_index=0, address_index=[5])
        assert opened["addresses"][0]["address"] == destination.address
        assert monero.merchant.rpc("get_address", account_index=0,
                                   address_index=[0])["address"] == driver.address
    finally:
        await follower.aclose()
