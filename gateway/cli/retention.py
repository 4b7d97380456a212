"""`gateway retention run`: delete what is past its retention period."""

import argparse
import sys

from gateway.cli.support import Commands, with_gateway


def cmd_retention_run(args: argparse.Namespace) -> int:
    counts = with_gateway(args, lambda gw: gw.services.retention.run(dry_run=args.dry_run))
    verb = "would remove" if args.dry_run else "removed"
    failed = counts.pop("erasure_failures", 0)
    prune_failed = counts.pop("prune_failures", 0)
    stage_failed = counts.pop("stage_failures", 0)
    flush_owed = counts.pop("flush_owed", 0)
    for what, n in counts.items():
        print(f"{what}: {verb} {n}")
    if flush_owed:
        print("erased data has not yet left the database files (the log says why); the "
              "next run retries", file=sys.stderr)
    if prune_failed:
        print(f"{prune_failed} register(s) could not be pruned (the log says why); the next "
              "run retries", file=sys.stderr)
    if stage_failed:
        print(f"{stage_failed} retention stage(s) failed (the log says which and why); the "
              "next run retries", file=sys.stderr)
    if failed:  # last: the line that matters most
        print(f"{failed} erasure(s) failed and are still due (the log says why); the next "
              "run retries them", file=sys.stderr)
    return 1 if failed or prune_failed or stage_failed else 0


def register(cli: Commands) -> None:
    retention = cli.group("retention", help="privacy retention",
                          example="gateway retention run --dry-run")
    run = retention.command(
        "run", cmd_retention_run,
        help="delete what is past its retention period (the server also does it on its "
             "own schedule)",
        example="gateway retention run --dry-run")
    run.add_argument("--dry-run", action="store_true", help="count only")
