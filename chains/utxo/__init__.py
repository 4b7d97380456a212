"""The UTXO family: Bitcoin Core and Litecoin Core over JSON-RPC (`kind = "utxo"`).

`family` holds the configuration model and the builder (imported by the registry);
`adapter` the follower itself, imported only when followers are built."""

from typing import Any

__all__ = ["UtxoChain", "p2wpkh_destination"]


def __getattr__(name: str) -> Any:
    # `from chains.utxo import UtxoChain` still works, but importing the package (as the
    # registry does for `family`) loads no adapter.
    if name in __all__:
        from chains.utxo import adapter

        return getattr(adapter, name)
    raise AttributeError(name)
