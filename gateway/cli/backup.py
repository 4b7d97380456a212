"""`gateway backup create|restore|prune`: encrypted database backups."""

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import logs
from gateway.cli.support import EXIT_CONFIG, Commands, fail, settings_or_exit
from gateway.config import ConfigError

if TYPE_CHECKING:
    from gateway.config import Settings


def _guarded(work: "Callable[[Settings], None]", args: argparse.Namespace) -> int:
    """`work` with the configuration; its refusals as one line and a non-zero exit."""
    from gateway.bootstrap import BackupError, BackupFormatError

    settings = settings_or_exit(args)
    logs.configure("WARNING")
    try:
        work(settings)
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", EXIT_CONFIG) from None
    except (BackupError, BackupFormatError, OSError) as exc:
        raise fail(str(exc)) from None
    return 0


def cmd_backup_prune(args: argparse.Namespace) -> int:
    from gateway.bootstrap import prune_backups

    def work(settings: "Settings") -> None:
        folder = args.dir or settings.backup.dir
        if folder is None:
            raise fail("give --dir or set [backup] dir", EXIT_CONFIG)
        days = settings.retention.backup_days if args.days is None else args.days
        if days < 1:
            raise fail("--days must be at least 1 (0 would delete every backup)",
                       EXIT_CONFIG)
        removed = prune_backups(Path(folder), timedelta(days=days), datetime.now(UTC))
        for path in removed:
            print(f"removed {path}")
        print(f"{len(removed)} removed: backups older than {days} days and "
              "leftovers of interrupted runs older than a day")

    return _guarded(work, args)


def cmd_backup_create(args: argparse.Namespace) -> int:
    from gateway.bootstrap import build_backups

    def work(settings: "Settings") -> None:
        path = build_backups(settings).create(Path(args.out), datetime.now(UTC))
        print(f"wrote {path}")
        configured = settings.backup.dir
        if configured is None or Path(args.out).resolve() != Path(configured).resolve():
            print(f"note: {args.out} is not [backup] dir, so nothing prunes it: delete "
                  "it within 30 days (`gateway backup prune --dir`), as the privacy "
                  "policy promises", file=sys.stderr)

    return _guarded(work, args)


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from gateway.bootstrap import build_backups

    def work(settings: "Settings") -> None:
        build_backups(settings).restore(Path(args.file), force=args.force)
        print(f"restored {args.file}")
        print(_reapply_ledger(settings))

    return _guarded(work, args)


def _reapply_ledger(settings: "Settings") -> str:
    """Erasures made after the backup was taken are carried out again at once."""
    from gateway.bootstrap import SchemaNotReady, build

    if settings.backup.ledger_path() is None:
        return ("warning: no deletion ledger is configured ([backup] dir or "
                "deletion_ledger): accounts erased after this backup was taken are back")

    async def run() -> int:
        gw = build(settings)
        try:
            await gw.check_schema()
            return await gw.services.retention.reapply_ledger()
        finally:
            await gw.aclose()

    try:
        count = asyncio.run(run())
    except SchemaNotReady:
        return ("the backup is from an older version: run `gateway db upgrade`; the next "
                "retention run then re-applies the deletion ledger")
    return (f"deletion ledger re-applied: {count} account(s) erased after this backup "
            "was taken are erased again")


def register(cli: Commands) -> None:
    backup = cli.group("backup", help="encrypted database backups",
                       example="gateway backup create --out /var/backups/gateway")
    create = backup.command("create", cmd_backup_create, help="write an encrypted backup",
                            example="gateway backup create --out /var/backups/gateway")
    create.add_argument("--out", required=True, help="directory for the backup file")
    restore = backup.command(
        "restore", cmd_backup_restore,
        help="restore a backup into the configured database",
        example="gateway backup restore /var/backups/gateway/gateway-20261201T030000Z.sqlite.enc")
    restore.add_argument("file")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that already holds data")
    prune = backup.command("prune", cmd_backup_prune, help="delete old backups",
                           example="gateway backup prune --days 30 --dir /var/backups/gateway")
    prune.add_argument("--days", type=int,
                       help="delete backups older than this (default: [retention] backup_days)")
    prune.add_argument("--dir", help="backup directory (default: [backup] dir)")
