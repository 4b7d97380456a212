"""The regtest node launchers, for the tests under the names they have always used. The
launchers themselves ship in the package with the demo (gateway/demo/node.py: Litecoin,
port leasing; gateway/demo/evm.py: anvil): the tests import them from there, never the
other way round. Patch `gateway.demo.node.free_port`, not this module's, to change the
ports a launcher gets."""

from gateway.demo.evm import ANVIL_MNEMONIC, Anvil, anvil_binary
from gateway.demo.evm import CHAIN_ID as ANVIL_CHAIN_ID
from gateway.demo.node import (
    LEASE_SECONDS,
    LitecoinRegtest,
    NodeFailed,
    NodeMissing,
    free_port,
)

ANVIL_B_CHAIN_ID = 31338  # the second anvil's: another EVM network (`anvil_b` in conftest)

__all__ = ["ANVIL_B_CHAIN_ID", "ANVIL_CHAIN_ID", "ANVIL_MNEMONIC", "LEASE_SECONDS", "Anvil",
           "LitecoinRegtest", "NodeFailed", "NodeMissing", "anvil_binary", "free_port"]
