"""`gateway payments export` and `gateway reconcile`."""

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli_support import Bar, fail, private_text_file, when, with_gateway

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.services.reconcile import Report


def cmd_payments_export(args: argparse.Namespace) -> int:
    from gateway.services.finance import COLUMNS, Period
    from gateway.tabular import csv_text

    period = Period(when(args.from_), when(args.to), args.coin)
    out = Path(args.out)

    async def work(gw: "Gateway") -> int:
        bar = Bar("payments", "row")
        bar.add_total(await gw.services.finance.count(period))
        written = 0
        try:
            # A CLI run: nothing else waits on this loop while the file is written.
            with private_text_file(out) as sink:
                if args.format == "json":
                    sink.write("[")
                else:
                    sink.write(csv_text(COLUMNS, []))
                async for line in gw.services.finance.stream(period):
                    row = line.as_dict()
                    if args.format == "json":
                        sink.write(("," if written else "") + "\n  " + json.dumps(row))
                    else:
                        sink.write(csv_text(COLUMNS, [row], header=False))
                    written += 1
                    bar.advance()
                if args.format == "json":
                    sink.write("\n]\n")
        finally:
            bar.close()
        return written

    count = with_gateway(args, work)
    print(f"wrote {count} payments to {out}")
    return 0


def _summary(report: "Report") -> str:
    lines = [f"Reconciliation {report.start.isoformat()} .. {report.end.isoformat()} "
             f"({', '.join(report.coins)})",
             f"  recorded payments checked: {report.checked_payments}"]
    for coin, (first, last) in report.scanned_blocks.items():
        lines.append(f"  {coin} blocks scanned: {first}..{last}")
    if report.clean:
        lines.append("  everything agrees with the nodes")
    else:
        lines.append(f"  {len(report.findings)} disagreement(s):")
        lines.extend(f"  - [{f.kind}] {f.coin} {f.txid}:{f.output_index} "
                     f"invoice {f.invoice_id or '-'}: {f.detail}" for f in report.findings)
    return "\n".join(lines)


def cmd_reconcile(args: argparse.Namespace) -> int:
    start, end = when(args.from_), when(args.to)
    out = Path(args.json or f"reconcile-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")

    async def work(gw: "Gateway") -> "Report":
        bar = Bar("reconcile", "item")
        try:
            return await gw.services.reconcile.run(start, end, args.coin, bar)
        finally:
            bar.close()

    report = with_gateway(args, work)
    document = {**asdict(report), "start": report.start.isoformat(),
                "end": report.end.isoformat(), "clean": report.clean}
    try:
        out.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None
    print(_summary(report))
    print(f"  report: {out}")
    if not report.clean:
        print("gateway: the records and the nodes disagree (see above)", file=sys.stderr)
        return 1
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
             common: argparse.ArgumentParser) -> None:
    payments = sub.add_parser("payments", help="finance").add_subparsers(
        dest="payments", required=True)
    export = payments.add_parser("export", parents=[common],
                                 help="every payment of a period, for finance")
    export.add_argument("--from", dest="from_", required=True, help="ISO 8601 time with zone")
    export.add_argument("--to", required=True, help="ISO 8601 time with zone (exclusive)")
    export.add_argument("--coin")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_payments_export)

    rec = sub.add_parser("reconcile", parents=[common],
                         help="check recorded payments against the nodes; exit 1 on any "
                              "disagreement")
    rec.add_argument("--from", dest="from_", required=True, help="ISO 8601 time with zone")
    rec.add_argument("--to", required=True, help="ISO 8601 time with zone (exclusive)")
    rec.add_argument("--coin")
    rec.add_argument("--json", help="where to write the JSON report "
                                    "(default: reconcile-<time>.json here)")
    rec.set_defaults(func=cmd_reconcile)
