"""The arithmetic behind the privacy policy's "deleted within 30 days of a request,
backups included": how long the configured periods let personal data outlive a request,
and when an erasure or a backup is late. No I/O: the callers read the clock, the
database and the backup folder."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

PROMISE = timedelta(days=30)
# A scheduled run takes a while and starts a little after its time: an erasure or a
# backup is late only past this much on top of its interval.
ERASURE_SLACK = timedelta(minutes=10)
BACKUP_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class DeletionBound:
    grace: timedelta               # [retention] deletion_grace_days
    retention_interval: timedelta  # [retention] interval_seconds
    backup_keep: timedelta         # [retention] backup_days
    backup_interval: timedelta     # [backup] interval_hours

    def longest(self) -> timedelta:
        """From a request to the last copy gone: the account is erased by the first
        retention run after its grace; the last backup taken before that is deleted by
        the first pruning (one every backup interval) after it is `backup_keep` old."""
        return self.grace + self.retention_interval + self.backup_keep + self.backup_interval

    def kept(self) -> bool:
        return self.longest() <= PROMISE


def erasures_late_before(now: datetime, retention_interval: timedelta) -> datetime:
    """Accounts due before this should have been erased by a run already."""
    return now - retention_interval - ERASURE_SLACK


def backup_problems(taken: Sequence[datetime], now: datetime, keep: timedelta,
                    interval: timedelta) -> list[str]:
    """What the times of the backups in the folder say about the backup job."""
    problems = []
    if not taken:
        problems.append("no backup written yet (the leader writes one at start and every "
                        "[backup] interval_hours): backups are failing")
    elif max(taken) < now - interval - BACKUP_SLACK:
        problems.append(f"the newest backup was taken {max(taken):%Y-%m-%d %H:%M} UTC, more "
                        "than [backup] interval_hours ago: backups are failing (see the "
                        "leader's log)")
    stale = [t for t in taken if t < now - keep - interval - BACKUP_SLACK]
    if stale:
        problems.append(f"{len(stale)} backup(s) older than [retention] backup_days plus "
                        f"one interval, the oldest taken {min(stale):%Y-%m-%d %H:%M} UTC: "
                        "pruning is failing and the 30-day promise is broken")
    return problems
