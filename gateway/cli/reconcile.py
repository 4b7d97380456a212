"""`gateway reconcile`: recorded payments against the nodes."""

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.support import (
    Bar,
    Commands,
    FlagOrOldValue,
    deprecated,
    fail,
    when,
    with_gateway,
)

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.services.reconcile import Report


def _summary(report: "Report") -> str:
    lines = [f"Reconciliation {report.start.isoformat()} .. {report.end.isoformat()} "
             f"({', '.join(report.coins)})",
             f"  recorded payments checked: {report.checked_payments}",
             f"  refund payments checked: {report.checked_refund_outputs}"]
    for coin, (first, last) in report.scanned_blocks.items():
        lines.append(f"  {coin} blocks scanned: {first}..{last}")
    for v in report.voucher_liability:
        lines.append(f"  vouchers {v['currency']}: sold {v['sold']}, redeemed "
                     f"{v['redeemed']}, outstanding (owed) {v['outstanding']}")
    if report.clean:
        lines.append("  everything agrees with the nodes")
    else:
        lines.append(f"  {len(report.findings)} disagreement(s):")
        lines.extend(f"  - [{f.kind}] {f.coin} {f.txid}:{f.output_index} "
                     f"invoice {f.invoice_id or '-'}: {f.detail}" for f in report.findings)
    return "\n".join(lines)


def _out(args: argparse.Namespace) -> Path | None:
    """Where the JSON report goes: --out, the old `--json FILE`, or (without --json) a
    file named after the time."""
    if isinstance(args.json, str):
        deprecated("gateway reconcile --out FILE")
        return Path(args.json)
    if args.out is not None:
        return Path(args.out)
    if args.json:
        return None
    return Path(f"reconcile-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")


def _write(out: Path, document: dict[str, Any]) -> None:
    try:
        out.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None


def cmd_reconcile(args: argparse.Namespace) -> int:
    start, end = when(args.from_), when(args.to)
    out = _out(args)

    async def work(gw: "Gateway") -> "Report":
        bar = Bar("reconcile", "item")
        try:
            return await gw.services.reconcile.run(start, end, args.coin, bar)
        finally:
            bar.close()

    report = with_gateway(args, work)
    document = {**asdict(report), "start": report.start.isoformat(),
                "end": report.end.isoformat(), "clean": report.clean}
    if out is not None:
        _write(out, document)
    if args.json is True:
        print(json.dumps(document, indent=2))
    else:
        print(_summary(report))
        print(f"  report: {out}")
    if not report.clean:
        print("gateway: the records and the nodes disagree (see above)", file=sys.stderr)
        return 1
    return 0


def register(cli: Commands) -> None:
    rec = cli.command(
        "reconcile", cmd_reconcile,
        help="check recorded payments against the nodes; exit 1 on any disagreement",
        example=["gateway reconcile --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z",
                 "gateway reconcile --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z "
                 "--coin BTC --json"])
    rec.add_argument("--from", dest="from_", metavar="TIME", required=True,
                     help="ISO 8601 time with zone")
    rec.add_argument("--to", metavar="TIME", required=True,
                     help="ISO 8601 time with zone (exclusive)")
    rec.add_argument("--coin")
    rec.add_argument("--out", metavar="FILE",
                     help="where to write the JSON report (default, without --json: "
                          "reconcile-<time>.json here)")
    # `--json FILE` named the report's file before: still taken, with a deprecation line.
    rec.add_argument("--json", action=FlagOrOldValue,
                     help="print the JSON report instead of the summary (no file unless "
                          "--out is given)")
