"""Are the deletion and backup promises kept right now? Asked by `gateway doctor` and the
staff console's admin page, which may run where the jobs do not (the leader runs them),
so the answers come from what every instance can see: the database (erasures overdue),
the backup folder (a backup missing, an old one not pruned) and the ledger's place (can
it be written). The judgement is the domain's (`gateway.domain.deletion_bound`)."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.domain.deletion_bound import backup_problems, erasures_late_before

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.services.retention import RetentionService


@dataclass(frozen=True)
class Check:
    part: str
    ok: bool
    says: str


async def promise_checks(settings: "Settings", retention: "RetentionService",
                         now: datetime,
                         backup_times: Callable[[Path], list[datetime]]) -> list[Check]:
    return [ledger_check(settings.backup.ledger_path(), settings.backup.key is not None),
            await erasure_check(retention, now, settings.retention.interval_seconds),
            *backup_checks(settings, now, backup_times)]


def ledger_check(path: Path | None, backups: bool) -> Check:
    """`backups`: a backup key is configured, so backups can be written (by the job or by
    `gateway backup create --out`) and restored."""
    part = "deletion ledger"
    if path is None:
        if not backups:
            return Check(part, True, "none configured, and no [backup] key: no backup "
                         "can be written that would bring erased customers back")
        return Check(part, False, "none configured ([backup] dir or deletion_ledger) "
                     "while backups can be written: a restored backup brings erased "
                     "customers back")
    wrong = unwritable(path)
    if wrong:
        return Check(part, False, f"{path} cannot be written ({wrong}): every erasure "
                     "fails until it can")
    return Check(part, True, f"{path} can be written")


def unwritable(path: Path) -> str | None:
    """Why this process could not append to the file at `path` (None: it could). Its
    folder must take files too: the ledger's lock file beside it, and its rewrite when
    old entries are pruned."""
    if path.exists():
        if not path.is_file():
            return "it is not a file"
        if not os.access(path, os.W_OK):
            return "no write permission"
        return None if os.access(path.parent, os.W_OK | os.X_OK) else \
            f"no write permission in {path.parent}"
    parent = path.parent
    while not parent.exists():  # the ledger creates its folders
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return None if os.access(parent, os.W_OK | os.X_OK) else \
        f"no write permission in {parent}"


async def erasure_check(retention: "RetentionService", now: datetime,
                        interval_seconds: float) -> Check:
    overdue = await retention.overdue_erasures(
        erasures_late_before(now, timedelta(seconds=interval_seconds)))
    if not overdue:
        return Check("account erasures", True, "none overdue")
    return Check("account erasures", False, (
        f"{len(overdue)} overdue (due more than one [retention] interval ago; first "
        f"{', '.join(overdue[:3])}): the retention run fails to erase them and retries "
        "every run; the leader's log says why (gateway_retention_erasure_failures_total)"))


FLUSH_OWED_PROBLEM_AFTER = timedelta(days=1)


async def flush_check(retention: "RetentionService", now: datetime) -> Check:
    """Erased data that has not left the database files for more than a day (the
    retention run retries the flush every run; an older transaction held open, or a
    lock that never comes, keeps it failing)."""
    since = await retention.flush_owed_since()
    part = "erased data flushed"
    if since is None:
        return Check(part, True, "nothing owed")
    if now - since <= FLUSH_OWED_PROBLEM_AFTER:
        return Check(part, True, f"owed since {since.isoformat()}; retried every run")
    return Check(part, False, (
        f"owed since {since.isoformat()}: erased data is still in the database files "
        "(WAL, dead rows); the retention run retries every run and the leader's log says "
        "why (gateway_retention_flush_owed)"))


def backup_checks(settings: "Settings", now: datetime,
                  backup_times: Callable[[Path], list[datetime]]) -> list[Check]:
    cfg = settings.backup
    if cfg.dir is None or cfg.key is None:
        return []  # no scheduled backups: nothing of ours to prune
    part = f"backups in {cfg.dir}"
    try:
        taken = backup_times(Path(cfg.dir))
    except OSError as exc:
        return [Check(part, False, f"cannot be listed ({exc.strerror or exc})")]
    problems = backup_problems(taken, now, timedelta(days=settings.retention.backup_days),
                               timedelta(hours=cfg.interval_hours))
    if not problems:
        return [Check(part, True, f"{len(taken)} backup(s), the newest "
                      f"{max(taken):%Y-%m-%d %H:%M} UTC, none past its keep")]
    return [Check(part, False, p) for p in problems]
