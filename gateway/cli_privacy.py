"""`gateway backup ...`, `gateway notify policy-change`, `gateway account export`."""

import argparse
import asyncio
import getpass
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import logs
from gateway.cli_support import (
    EXIT_CONFIG,
    Bar,
    fail,
    private_binary_file,
    settings_or_exit,
    with_gateway,
)
from gateway.config import ConfigError

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.config import Settings


def cmd_backup(args: argparse.Namespace) -> int:
    from gateway.bootstrap import (
        BackupError,
        BackupFormatError,
        build_backups,
        prune_backups,
    )

    settings = settings_or_exit(args)
    logs.configure("WARNING")
    now = datetime.now(UTC)
    try:
        if args.backup == "prune":
            folder = args.dir or settings.backup.dir
            if folder is None:
                raise fail("give --dir or set [backup] dir", EXIT_CONFIG)
            if args.days is None:
                args.days = settings.retention.backup_days
            if args.days < 1:
                raise fail("--days must be at least 1 (0 would delete every backup)",
                           EXIT_CONFIG)
            removed = prune_backups(Path(folder), timedelta(days=args.days), now)
            for path in removed:
                print(f"removed {path}")
            print(f"{len(removed)} removed: backups older than {args.days} days and "
                  "leftovers of interrupted runs older than a day")
            return 0
        backups = build_backups(settings)
        if args.backup == "create":
            path = backups.create(Path(args.out), now)
            print(f"wrote {path}")
            configured = settings.backup.dir
            if configured is None or Path(args.out).resolve() != Path(configured).resolve():
                print(f"note: {args.out} is not [backup] dir, so nothing prunes it: delete "
                      "it within 30 days (`gateway backup prune --dir`), as the privacy "
                      "policy promises", file=sys.stderr)
        else:
            backups.restore(Path(args.file), force=args.force)
            print(f"restored {args.file}")
            print(_reapply_ledger(args, settings))
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", EXIT_CONFIG) from None
    except (BackupError, BackupFormatError, OSError) as exc:
        raise fail(str(exc)) from None
    return 0


def _reapply_ledger(args: argparse.Namespace, settings: "Settings") -> str:
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


def cmd_notify_policy_change(args: argparse.Namespace) -> int:
    """Resumable: accounts already mailed about this version are skipped. SIGINT or SIGTERM
    stops after the mail in flight, so a resumed run repeats nobody."""
    try:
        summary = Path(args.summary).read_text()
    except OSError as exc:
        raise fail(f"cannot read the summary: {exc.strerror}", EXIT_CONFIG) from None
    if not summary.strip():
        raise fail("the summary file is empty", EXIT_CONFIG)
    if args.per_minute <= 0:
        raise fail("--per-minute must be positive", EXIT_CONFIG)
    gap = 60.0 / args.per_minute
    stop = asyncio.Event()
    outcome = {"sent": 0, "failed": 0, "left": 0}

    async def work(gw: "Gateway") -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        pending = await gw.services.notices.recipients(args.version, args.optional)
        bar = Bar("policy notices", "mail")
        bar.add_total(len(pending))
        try:
            for i, account_id in enumerate(pending):
                if stop.is_set():
                    outcome["left"] = len(pending) - i
                    break
                started = time.monotonic()
                if await gw.services.notices.send(account_id, args.version, summary,
                                                  args.optional):
                    outcome["sent"] += 1
                else:
                    outcome["failed"] += 1
                bar.advance()
                wait = gap - (time.monotonic() - started)
                if wait > 0 and i + 1 < len(pending):
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                    except TimeoutError:
                        pass
        finally:
            bar.close()

    with_gateway(args, work)
    print(f"{outcome['sent']} notices sent, {outcome['failed']} failed, "
          f"{outcome['left']} not yet sent")
    if outcome["left"]:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    if outcome["failed"]:
        print("some mails could not be sent: run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def cmd_account_export(args: argparse.Namespace) -> int:
    from gateway.services.privacy import EXPORT_COLUMNS, Reader
    from gateway.tabular import tables_json, tables_zip

    # The service holds the reason to the API's and the console's rule (one line, exit 2).
    reader = Reader(f"cli:{getpass.getuser()}", args.reason, args.legal_request)
    tables = with_gateway(args, lambda gw: gw.services.privacy.export(args.id, reader))
    data = tables_json(tables) if args.format == "json" else tables_zip(tables, EXPORT_COLUMNS)
    out = Path(args.out)
    with private_binary_file(out) as sink:
        sink.write(data)
    print(f"wrote {out} (this read is recorded in the account's access audit log)")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
             common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser("backup", help="encrypted database backups").add_subparsers(
        dest="backup", required=True)
    create = backup.add_parser("create", parents=[common], help="write an encrypted backup")
    create.add_argument("--out", required=True, help="directory for the backup file")
    restore = backup.add_parser("restore", parents=[common],
                                help="restore a backup into the configured database")
    restore.add_argument("file")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that already holds data")
    prune = backup.add_parser("prune", parents=[common], help="delete old backups")
    prune.add_argument("--days", type=int,
                       help="delete backups older than this (default: [retention] backup_days)")
    prune.add_argument("--dir", help="backup directory (default: [backup] dir)")
    for p in backup.choices.values():
        p.set_defaults(func=cmd_backup)

    notify = sub.add_parser("notify", help="mail customers").add_subparsers(
        dest="notify", required=True)
    change = notify.add_parser("policy-change", parents=[common],
                               help="mail every active account a privacy policy change")
    change.add_argument("--version", required=True, help="must equal [privacy] policy_version")
    change.add_argument("--summary", required=True, help="text file: what changed")
    change.add_argument("--per-minute", type=float, default=60, help="sending rate limit")
    change.add_argument("--optional", action="store_true",
                        help="a notice the law does not require: customers who object to "
                             "optional processing are not mailed")
    change.set_defaults(func=cmd_notify_policy_change)

    account = sub.add_parser("account", help="customer accounts").add_subparsers(
        dest="account", required=True)
    export = account.add_parser("export", parents=[common],
                                help="export an account's data (audited)")
    export.add_argument("--id", required=True, help="account id, acc_...")
    export.add_argument("--reason", required=True, help="why; kept in the audit log")
    export.add_argument("--legal-request", metavar="ID",
                        help="the legal request this export serves (lr_...): its audit "
                             "entry is withheld from the customer while the request is held")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_account_export)
