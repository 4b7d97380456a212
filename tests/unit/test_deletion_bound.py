"""Issue 28, items 1 and 2: the arithmetic of the 30 days from a deletion request, and
when an erasure or a backup is late, at their exact boundaries."""

from datetime import UTC, datetime, timedelta

from gateway.domain.deletion_bound import (
    BACKUP_SLACK,
    ERASURE_SLACK,
    DeletionBound,
    backup_problems,
    erasures_late_before,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def test_the_bound_adds_grace_one_run_the_keep_and_one_pruning() -> None:
    bound = DeletionBound(7 * DAY, HOUR, 21 * DAY, 24 * HOUR)
    assert bound.longest() == 29 * DAY + HOUR and bound.kept()
    assert DeletionBound(7 * DAY, HOUR, 22 * DAY, 24 * HOUR - HOUR).kept()  # exactly 30
    assert not DeletionBound(7 * DAY, HOUR, 22 * DAY, 24 * HOUR).kept()


def test_an_erasure_is_late_one_interval_and_the_slack_after_it_was_due() -> None:
    assert erasures_late_before(NOW, HOUR) == NOW - HOUR - ERASURE_SLACK


def test_backups_missing_late_or_past_their_keep() -> None:
    keep, every = 21 * DAY, 24 * HOUR
    assert backup_problems([NOW - HOUR, NOW - keep], NOW, keep, every) == []
    assert "no backup written yet" in backup_problems([], NOW, keep, every)[0]
    on_time = NOW - every - BACKUP_SLACK
    assert backup_problems([on_time], NOW, keep, every) == []
    [late] = backup_problems([on_time - timedelta(seconds=1)], NOW, keep, every)
    assert "backups are failing" in late
    last_kept = NOW - keep - every - BACKUP_SLACK
    assert backup_problems([NOW, last_kept], NOW, keep, every) == []
    [stale] = backup_problems([NOW, last_kept - timedelta(seconds=1)], NOW, keep, every)
    assert stale.startswith("1 backup(s) older than") and "pruning is failing" in stale
