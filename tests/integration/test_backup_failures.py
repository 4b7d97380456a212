"""Issue 28, item 2: old backups are pruned even when a new backup fails. The scheduled
job prunes first and whatever the backup does; one old backup that cannot be deleted
keeps no other; a backup that fails every run is a metric (with an alert rule) and a
`gateway doctor` / admin-page problem (`gateway/promise_checks.py`). Real encrypted
backups of a real SQLite file and a real PostgreSQL database, in a temporary folder."""

import asyncio
import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.adapters.backup.files import Backups, backup_times, prune
from gateway.adapters.metrics import Metrics
from gateway.config import load
from gateway.jobs import BackupRun, run_backups
from gateway.promise_checks import backup_checks
from tests.support.keys import security_env

KEY = os.urandom(32)
KEEP = timedelta(days=21)
INTERVAL = timedelta(hours=24)


def name(at: datetime, kind: str = "sqlite") -> str:
    return f"gateway-{at:%Y%m%dT%H%M%SZ}.{kind}.enc"


def unreachable(database_url: str) -> str:
    """The same kind of database, one that does not exist: every backup of it fails."""
    base = database_url.rsplit("/", 1)[0]
    return f"{base}/missing.db" if database_url.startswith("sqlite") \
        else f"{base}/gw_no_such_database"


async def runs(writer: Backups, folder: Path, count: int, clock: Callable[[], datetime],
               metrics: Metrics) -> list[BackupRun]:
    """The scheduled job as the server runs it, reported as bootstrap reports it, for
    `count` runs (or until it stops reporting)."""
    seen: list[BackupRun] = []
    enough = asyncio.Event()

    def report(run: BackupRun) -> None:
        metrics.backup_run(run.written is not None, run.prune_failed)
        seen.append(run)
        if len(seen) >= count:
            enough.set()

    job = asyncio.create_task(run_backups(writer, folder, KEEP, 0.05, clock, prune, report))
    try:
        await asyncio.wait_for(enough.wait(), 15)
    finally:
        job.cancel()
    return seen


def metric(metrics: Metrics, metric_name: str) -> float:
    line = next(x for x in metrics.render().decode().splitlines()
                if x.startswith(metric_name + " "))
    return float(line.split()[1])


async def test_old_backups_are_pruned_when_every_backup_fails(
    database_url: str, tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    folder = tmp_path / "backups"
    folder.mkdir()
    old = [folder / name(now - KEEP - timedelta(days=d)) for d in (1, 5, 9)]
    recent = folder / name(now - timedelta(days=2))
    for path in (*old, recent):
        path.write_bytes(b"an older backup")
    # One old "backup" that cannot be deleted (a folder by that name): the others go.
    stuck = folder / name(now - KEEP - timedelta(days=3))
    stuck.mkdir()
    metrics = Metrics()
    settings = load(None, {"GATEWAY_DATABASE__URL": database_url, **security_env(),
                           "GATEWAY_BACKUP__DIR": str(folder),
                           "GATEWAY_BACKUP__KEY": base64.b64encode(KEY).decode()})

    failed = await runs(Backups(unreachable(database_url), KEY), folder, 2, lambda: now,
                        metrics)
    assert [r.written for r in failed] == [None, None]  # the backup fails every run
    assert not any(p.exists() for p in old) and recent.exists() and stuck.exists()
    assert all(r.prune_failed for r in failed)
    assert metric(metrics, "gateway_backup_failures_total") == 2
    assert metric(metrics, "gateway_backup_last_failure_timestamp_seconds") > \
        metric(metrics, "gateway_backup_last_success_timestamp_seconds")
    assert metric(metrics, "gateway_backup_prune_failing") == 1
    # What doctor and the admin page say: no backup for two days, one past its keep.
    problems = backup_checks(settings, now, backup_times)
    assert not any(c.ok for c in problems) and len(problems) == 2
    assert "backups are failing" in problems[0].says
    assert "1 backup(s) older than [retention] backup_days" in problems[1].says

    stuck.rmdir()
    [done] = await runs(Backups(database_url, KEY), folder, 1, lambda: now, metrics)
    assert done.written is not None and done.written.exists() and not done.prune_failed
    assert sorted(folder.iterdir()) == sorted([recent, done.written])
    assert metric(metrics, "gateway_backup_last_success_timestamp_seconds") > \
        metric(metrics, "gateway_backup_last_failure_timestamp_seconds")
    assert metric(metrics, "gateway_backup_prune_failing") == 0
    [fine] = backup_checks(settings, now, backup_times)
    assert fine.ok and "2 backup(s)" in fine.says


def test_backup_prune_by_hand_keeps_what_the_schedule_keeps(tmp_path: Path) -> None:
    """`gateway backup prune` without --days prunes at [retention] backup_days, as the
    scheduled job does (its old default, 30 days, no longer fits the promise)."""
    from tests.support.stack import run_cli

    now = datetime.now(UTC).replace(microsecond=0)
    folder = tmp_path / "backups"
    folder.mkdir()
    kept, gone = (folder / name(now - timedelta(days=d)) for d in (20, 22))
    for path in (kept, gone):
        path.write_bytes(b"a backup")
    done = run_cli({"GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                    **security_env()}, "backup", "prune", "--dir", str(folder))
    assert done.returncode == 0, done.stderr
    assert "1 removed: backups older than 21 days" in done.stdout
    assert kept.exists() and not gone.exists()
