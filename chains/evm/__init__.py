"""The EVM family: one Ethereum JSON-RPC node (geth, Nethermind, Erigon, Reth; anvil in
tests) for native ETH and its configured ERC-20 tokens, followed in one pass per block
through web3.py's async provider."""
