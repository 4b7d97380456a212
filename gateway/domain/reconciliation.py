"""Where a recorded payment and the node disagree. Pure: the caller fetches both sides."""

from dataclasses import dataclass

from gateway.domain.payments import PaymentStatus


@dataclass(frozen=True)
class Recorded:
    amount: int
    match_key: bytes
    block_hash: str | None
    block_height: int | None
    status: PaymentStatus


@dataclass(frozen=True)
class NodeView:
    known: bool
    block_height: int | None = None  # the block the node has it in (None: mempool)
    in_main_chain: bool = False
    match_key: bytes | None = None
    amount: int | None = None


def disagreements(rec: Recorded, node: NodeView | None,
                  mined_at: int | None) -> list[tuple[str, str]]:
    """`node` is the node's view of the recorded block (or mempool); `mined_at` is the
    main-chain height the output was found at by scanning the period, if it was."""
    found: list[tuple[str, str]] = []
    if rec.status == PaymentStatus.REVERTED:
        if mined_at is not None:
            found.append(("reverted_but_mined",
                          f"recorded as reverted, but it is in main-chain block {mined_at}"))
        return found
    if rec.block_hash is None and mined_at is not None:
        found.append(("stale", f"recorded as unconfirmed, but mined in block {mined_at}"))
    if node is None:
        return found
    if not node.known:
        where = f"block {rec.block_height}" if rec.block_hash else "mempool or any block"
        found.append(("missing", f"the node does not have the transaction in the {where}"))
        return found
    if rec.block_hash is not None:
        if not node.in_main_chain:
            found.append(("orphaned", f"recorded block {rec.block_height} ({rec.block_hash}) "
                                      "is no longer on the main chain"))
        elif node.block_height != rec.block_height:
            found.append(("height", f"recorded at height {rec.block_height}, the node has "
                                    f"the block at {node.block_height}"))
    if node.match_key is None:
        found.append(("output_missing", "the transaction has no output with this index"))
    elif node.match_key != rec.match_key:
        found.append(("address", "the output does not pay the invoice's address"))
    elif node.amount != rec.amount:
        found.append(("amount", f"recorded {rec.amount} base units, the node says "
                                f"{node.amount}"))
    return found
