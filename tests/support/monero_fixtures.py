"""The session's Monero regtest (a pytest plugin loaded by tests/conftest.py): one
monerod, one miner wallet, one wallet-rpc for the gateway's view-only wallets, and the
start-up mining, shared by every Monero test (contract, e2e). Fails, never skips, when
monerod or monero-wallet-rpc is missing."""

from collections.abc import Iterator

import pytest

from tests.support import small_rsa
from tests.support.monero_nodes import MoneroRegtest


@pytest.fixture(scope="session")
def monero(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoneroRegtest]:
    node = MoneroRegtest(tmp_path_factory.mktemp("monero"),
                         wallet_env=small_rsa.environment())
    try:
        yield node.start_all()
    finally:
        node.stop_all()
