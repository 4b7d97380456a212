"""`gateway notify policy-change`: mail customers a privacy policy change."""

import argparse
import asyncio
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.support import EXIT_CONFIG, Bar, Commands, fail, with_gateway

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway


@dataclass
class _Outcome:
    sent: int = 0
    failed: int = 0
    left: int = 0


def _summary(args: argparse.Namespace) -> str:
    try:
        summary = Path(args.summary).read_text()
    except OSError as exc:
        raise fail(f"cannot read the summary: {exc.strerror}", EXIT_CONFIG) from None
    if not summary.strip():
        raise fail("the summary file is empty", EXIT_CONFIG)
    if args.per_minute <= 0:
        raise fail("--per-minute must be positive", EXIT_CONFIG)
    return summary


async def _pause(stop: asyncio.Event, wait: float) -> None:
    if wait > 0:
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass


async def _send_all(gw: "Gateway", args: argparse.Namespace, summary: str,
                    stop: asyncio.Event, outcome: _Outcome) -> None:
    gap = 60.0 / args.per_minute
    pending = await gw.services.notices.recipients(args.version, args.optional)
    bar = Bar("policy notices", "mail")
    bar.add_total(len(pending))
    try:
        for i, account_id in enumerate(pending):
            if stop.is_set():
                outcome.left = len(pending) - i
                break
            started = time.monotonic()
            if await gw.services.notices.send(account_id, args.version, summary,
                                              args.optional):
                outcome.sent += 1
            else:
                outcome.failed += 1
            bar.advance()
            if i + 1 < len(pending):
                await _pause(stop, gap - (time.monotonic() - started))
    finally:
        bar.close()


def cmd_notify_policy_change(args: argparse.Namespace) -> int:
    """Resumable: accounts already mailed about this version are skipped. SIGINT or SIGTERM
    stops after the mail in flight, so a resumed run repeats nobody."""
    summary = _summary(args)
    stop = asyncio.Event()
    outcome = _Outcome()

    async def work(gw: "Gateway") -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _send_all(gw, args, summary, stop, outcome)

    with_gateway(args, work)
    print(f"{outcome.sent} notices sent, {outcome.failed} failed, "
          f"{outcome.left} not yet sent")
    if outcome.left:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    if outcome.failed:
        print("some mails could not be sent: run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def register(cli: Commands) -> None:
    notify = cli.group("notify", help="mail customers",
                       example="gateway notify policy-change --version 2026-12-01 "
                               "--summary changes.txt")
    change = notify.command(
        "policy-change", cmd_notify_policy_change,
        help="mail every active account a privacy policy change (resumable)",
        example="gateway notify policy-change --version 2026-12-01 --summary changes.txt "
                "--per-minute 30")
    change.add_argument("--version", required=True, help="must equal [privacy] policy_version")
    change.add_argument("--summary", required=True, help="text file: what changed")
    change.add_argument("--per-minute", type=float, default=60, help="sending rate limit")
    change.add_argument("--optional", action="store_true",
                        help="a notice the law does not require: customers who object to "
                             "optional processing are not mailed")
