"""The mempool bookkeeping every family's follow loop shares (chains.mempool): which
transactions are matched, which are reported gone, and when none may be."""

from chains.base import MempoolGone, MempoolSeen, Observed
from chains.mempool import MempoolTracker


def paid(txid: str) -> Observed:
    return Observed("LTC", txid, 0, b"\x00\x14" + b"\xaa" * 20, 1000, None)


def test_a_pending_transaction_that_left_the_pool_unmined_is_gone_once() -> None:
    book = MempoolTracker(["a", "b"])  # known from the database, before any pass
    book.start_pass({"a"})
    assert book.end_pass() == MempoolGone(("b",))
    assert book.pending == {"a"}
    book.start_pass({"a"})
    assert book.end_pass() is None  # reported once, not on every pass


def test_a_mined_transaction_is_not_gone() -> None:
    book = MempoolTracker(["a", "b"])
    book.start_pass(["a", "b"])  # the snapshot, taken before the blocks are read
    book.connected(["b", "x"])  # mined in a block of this pass: it left the pool too
    assert book.pending == {"a"}
    assert book.end_pass() is None
    book.start_pass(["a"])
    assert book.mined == set()  # each pass starts afresh
    assert book.end_pass() is None


def test_nothing_is_gone_after_a_reorg_or_short_of_the_tip() -> None:
    book = MempoolTracker(["a"])
    book.start_pass(set())
    book.disconnected(["b"])  # a reorged block's payment: pending, may come back
    assert book.pending == {"a", "b"} and book.reorged
    assert book.end_pass() is None
    book.start_pass(set())
    assert not book.reorged
    assert book.end_pass(caught_up=False) is None  # a block not yet connected may hold it
    assert book.end_pass() == MempoolGone(("a", "b"))  # sorted


def test_fresh_transactions_are_matched_once_in_their_order() -> None:
    book = MempoolTracker()
    book.start_pass(["c", "a", "m", "b"])
    book.connected(["m"])
    assert book.fresh(["c", "a", "m", "b"]) == ["c", "a", "b"]
    book.inspected_now(["c", "a", "b"])
    assert book.fresh(["c", "a", "b", "d"]) == ["d"]
    book.end_pass()
    # One that left the pool is forgotten: back in it (a reorg), it is matched again.
    book.start_pass(["c"])
    book.end_pass()
    assert book.inspected == {"c"}
    book.start_pass(["c", "a"])
    assert book.fresh(["c", "a"]) == ["a"]


def test_seen_payments_become_pending() -> None:
    book = MempoolTracker()
    book.start_pass(["t"])
    assert book.seen([]) is None
    assert book.seen([paid("t")]) == MempoolSeen((paid("t"),))
    assert book.pending == {"t"}
    book.start_pass([])
    assert book.end_pass() == MempoolGone(("t",))


def test_a_dropped_transaction_counts_as_out_of_the_pool() -> None:
    book = MempoolTracker(["d"])
    book.start_pass(["d", "e"])
    book.inspected_now(["d", "e"])
    book.drop(["d"])  # a double spend seen: as good as gone
    assert book.end_pass() == MempoolGone(("d",))
    assert book.inspected == {"e"}
