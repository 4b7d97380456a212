"""Which differences between our records and the node count as disagreements."""

from gateway.domain.reconciliation import NodeView, Recorded, disagreements

KEY = b"\x00\x14" + b"\x01" * 20
REC = Recorded(amount=1000, match_key=KEY, block_hash="b1", block_height=10,
               status="confirmed")
AGREES = NodeView(True, 10, True, KEY, 1000)


def kinds(rec: Recorded, node: NodeView | None, mined: int | None = None) -> list[str]:
    return [k for k, _ in disagreements(rec, node, mined)]


def test_agreement_has_no_findings() -> None:
    assert kinds(REC, AGREES, 10) == []


def test_altered_amount() -> None:
    assert kinds(REC, NodeView(True, 10, True, KEY, 999)) == ["amount"]


def test_other_address() -> None:
    assert kinds(REC, NodeView(True, 10, True, b"\x00\x14" + b"\x02" * 20, 1000)) == [
        "address"]


def test_block_left_the_main_chain() -> None:
    assert kinds(REC, NodeView(True, 10, False, KEY, 1000)) == ["orphaned"]


def test_unknown_transaction() -> None:
    assert kinds(REC, NodeView(False)) == ["missing"]


def test_no_such_output() -> None:
    assert kinds(REC, NodeView(True, 10, True, None, None)) == ["output_missing"]


def test_unconfirmed_record_of_a_mined_output_is_stale() -> None:
    pending = Recorded(1000, KEY, None, None, "pending")
    assert kinds(pending, NodeView(True, 12, True, KEY, 1000), 12) == ["stale"]
    assert kinds(pending, NodeView(True, None, False, KEY, 1000)) == []  # in the mempool


def test_reverted_payment_found_in_a_block() -> None:
    reverted = Recorded(1000, KEY, None, None, "reverted")
    assert kinds(reverted, None, 15) == ["reverted_but_mined"]
    assert kinds(reverted, None, None) == []
