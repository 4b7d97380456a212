"""The session's Monero regtest launcher: the demo's (gateway/demo/monero.py), whose ports
come from the shared launcher's leases (gateway/demo/node.py), so that parallel runs never
share one."""

from gateway.demo.monero import MoneroRegtest, WalletRpc, post, rpc

__all__ = ["MoneroRegtest", "WalletRpc", "post", "rpc"]
