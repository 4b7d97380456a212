"""What the EVM family knows of networks by chain id: the name customers read, the usual
block interval and the finality the network offers. A `[networks.*]` table names its own
network and may set the rest; these are the defaults, and the single-network form's names."""

from chains.base import NetworkFacts

# chain id -> (name, seconds per block)
KNOWN: dict[int, tuple[str, float]] = {
    1: ("Ethereum", 12),
    10: ("OP Mainnet", 2),
    56: ("BNB Smart Chain", 3),
    137: ("Polygon PoS", 2),
    8453: ("Base", 2),
    42161: ("Arbitrum One", 0.25),
    43114: ("Avalanche C-Chain", 2),
    11155111: ("Sepolia testnet", 12),
    17000: ("Holesky testnet", 12),
    84532: ("Base Sepolia testnet", 2),
    31337: ("local development chain", 1),
}
DEFAULT_BLOCK_SECONDS = 12.0  # unknown chain: Ethereum's slot time


def network_facts(chain_id: int, name: str | None = None, block_seconds: float | None = None,
                  finality: str = "depth") -> NetworkFacts:
    known_name, known_seconds = KNOWN.get(chain_id, (f"EVM chain {chain_id}",
                                                     DEFAULT_BLOCK_SECONDS))
    return NetworkFacts(name or known_name, block_seconds or known_seconds, finality,
                        chain_id)
