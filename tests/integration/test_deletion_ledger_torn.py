"""Review of issue 28 (promise 13): a crash mid-append leaves the deletion ledger's last
line torn. The next erasure's entry was appended straight onto it, so the merged line
was skipped as torn and a committed erasure vanished from the ledger: a restored backup
would have brought that customer back. Now an append after a torn line starts a line of
its own."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.domain.timestamps import rfc3339

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_an_append_after_a_torn_line_is_kept(tmp_path: Path) -> None:
    ledger = FileDeletionLedger(tmp_path / "deletion-ledger.txt")
    ledger.record("acc_first", NOW - timedelta(days=2))
    # A crash mid-append: half of the next line reached the disk, no newline.
    whole = f"acc_torn {rfc3339(NOW - timedelta(days=1))}\n"
    with ledger.path.open("a", encoding="ascii") as f:
        f.write(whole[:13])
    ledger.record("acc_after", NOW)
    ledger.record("acc_later", NOW + timedelta(seconds=1))

    assert set(ledger.entries()) == {"acc_first", "acc_after", "acc_later"}
    assert ledger.entries()["acc_after"] == NOW
    # The torn fragment is a line of its own, dropped with the old entries by a prune;
    # the entries after it stay.
    assert ledger.path.read_text().splitlines()[1] == whole[:13]
    assert ledger.prune(NOW - timedelta(days=1)) == 1
    assert set(ledger.entries()) == {"acc_after", "acc_later"}
    assert ledger.path.read_text().splitlines() == [
        f"acc_after {rfc3339(NOW)}", f"acc_later {rfc3339(NOW + timedelta(seconds=1))}"]


def test_a_whole_ledger_gets_no_blank_lines(tmp_path: Path) -> None:
    ledger = FileDeletionLedger(tmp_path / "deletion-ledger.txt")
    ledger.record("acc_a", NOW)
    ledger.record("acc_b", NOW)
    assert ledger.path.read_text() == f"acc_a {rfc3339(NOW)}\nacc_b {rfc3339(NOW)}\n"
