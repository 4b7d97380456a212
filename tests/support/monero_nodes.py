"""The session's Monero regtest launcher: the demo's (gateway/demo/monero.py), with ports
leased from the test suite's registry so that parallel runs never share one."""

from pathlib import Path

from gateway.demo import monero
from gateway.demo.monero import WalletRpc, post, rpc
from tests.support.nodes import free_port

__all__ = ["MoneroRegtest", "WalletRpc", "post", "rpc"]


class MoneroRegtest(monero.MoneroRegtest):
    def __init__(self, root: Path) -> None:
        super().__init__(root, port=free_port)
