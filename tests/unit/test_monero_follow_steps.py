"""The Monero follow loop's decisions that need no node: whether the wallet has scanned
a block the daemon holds, which pool entries are payments, and what a connected block
leaves behind for a later walk back. The loop itself runs on a real monerod and
wallet-rpc in tests/contract."""

from datetime import UTC, datetime
from typing import Any

from chains.base import BlockRef, Observed
from chains.monero.adapter import MoneroChain, WalletTransfers
from chains.monero.rpc import MoneroRpc


def chain() -> MoneroChain:
    # No I/O until a call: the RPC clients open their sessions on first use.
    return MoneroChain("XMR", MoneroRpc("http://127.0.0.1:1"), MoneroRpc("http://127.0.0.1:1"),
                       address="4" + "A" * 94, view_key="0" * 64, wallet_name="w",
                       password="")


def entry(txid: str, minor: int = 1, amount: int = 5, **more: Any) -> dict[str, Any]:
    return {"txid": txid, "subaddr_index": {"major": 0, "minor": minor},
            "address": f"8addr{minor}", "amount": amount} | more


def test_the_wallet_agrees_with_a_block_it_has_scanned() -> None:
    wallet = WalletTransfers({7: [entry("a")], 8: [entry("b")]}, [entry("p")])
    assert wallet.agrees(7, {"a", "x"})  # it lists ours; the others are not its business
    assert wallet.agrees(9, {"x"})
    assert not wallet.agrees(7, {"x"})  # it lists a payment the block does not hold
    assert not wallet.agrees(7, {"a", "b"})  # it puts one of the block's elsewhere
    assert not wallet.agrees(9, {"p"})  # it still has one of the block's in its pool
    # After a reorg the wallet may list one in its pool and in a block: the block counts.
    both = WalletTransfers({7: [entry("a")]}, [entry("a")])
    assert both.agrees(7, {"a"})
    assert wallet.at(7) == [entry("a")] and wallet.at(6) == []


def test_pool_entries_pay_when_the_daemon_holds_them_undisputed() -> None:
    monero = chain()
    in_pool = [entry("ok"), entry("ok", minor=2, amount=6), entry("gone"),
               entry("flagged"), entry("flagged_by_wallet", double_spend_seen=True),
               entry("unknown")]
    daemon = {"ok": {"in_pool": True, "received_timestamp": 1_700_000_000},
              "gone": {"in_pool": False, "received_timestamp": 1},
              "flagged": {"in_pool": True, "double_spend_seen": True,
                          "received_timestamp": 1},
              "flagged_by_wallet": {"in_pool": True, "received_timestamp": 1}}
    candidates = monero._pool_candidates(in_pool, daemon)
    assert list(candidates) == ["ok"]
    since = datetime.fromtimestamp(1_700_000_001, UTC)  # the end of the daemon's second
    assert [(o.index, o.amount, o.block, o.first_seen) for o in candidates["ok"]] == [
        (0, 5, None, since), (1, 6, None, since)]


def test_a_reorg_puts_connected_payments_back_in_the_pool() -> None:
    monero = chain()
    cursor, ref = BlockRef(6, "66"), BlockRef(7, "77")
    header = {"prev_hash": "66", "timestamp": 1_700_000_000}
    connected = monero._connect(cursor, ref, header, [entry("a"), entry("b", minor=9)],
                                {b"8addr1"})
    [paid] = connected.payments  # the other subaddress is not watched
    assert (paid.txid, paid.block, connected.parent_hash) == ("a", ref, "66")
    assert monero._block_txids["77"] == ("a",) and monero._parents["77"] == "66"
    # The wallet has not noticed the reorg: the daemon has the transaction in its pool.
    daemon = {"a": {"in_pool": True, "received_timestamp": 1_700_000_100}}
    [back] = monero._pool_candidates([], daemon)["a"]
    assert back == Observed("XMR", "a", 0, b"8addr1", 5, None,
                            datetime.fromtimestamp(1_700_000_101, UTC))
    flagged = {"a": daemon["a"] | {"double_spend_seen": True}}
    assert monero._pool_candidates([], flagged) == {}
