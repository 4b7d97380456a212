"""`gateway payments export`: every payment of a period, for finance."""

import argparse
import json
from pathlib import Path
from typing import IO, TYPE_CHECKING

from gateway.cli.support import Bar, Commands, private_text_file, when, with_gateway

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.services.finance import Period


async def _write(gw: "Gateway", period: "Period", sink: IO[str], as_json: bool,
                 bar: Bar) -> int:
    from gateway.services.finance import COLUMNS
    from gateway.tabular import csv_text

    sink.write("[" if as_json else csv_text(COLUMNS, []))
    written = 0
    async for line in gw.services.finance.stream(period):
        row = line.as_dict()
        if as_json:
            sink.write(("," if written else "") + "\n  " + json.dumps(row))
        else:
            sink.write(csv_text(COLUMNS, [row], header=False))
        written += 1
        bar.advance()
    if as_json:
        sink.write("\n]\n")
    return written


def cmd_payments_export(args: argparse.Namespace) -> int:
    from gateway.services.finance import Period

    period = Period(when(args.from_), when(args.to), args.coin)
    out = Path(args.out)

    async def work(gw: "Gateway") -> int:
        bar = Bar("payments", "row")
        bar.add_total(await gw.services.finance.count(period))
        try:
            # A CLI run: nothing else waits on this loop while the file is written.
            with private_text_file(out) as sink:
                return await _write(gw, period, sink, args.format == "json", bar)
        finally:
            bar.close()

    count = with_gateway(args, work)
    print(f"wrote {count} payments to {out}")
    if args.credit_out:
        credit_out = Path(args.credit_out)

        async def credit(gw: "Gateway") -> int:
            return _write_credit(await gw.services.finance.credit(period), credit_out,
                                 args.format == "json")

        print(f"wrote {with_gateway(args, credit)} credit entries to {credit_out}")
    if args.vouchers_out:
        print(_export_vouchers(args, period, Path(args.vouchers_out)))
    return 0


def _export_vouchers(args: argparse.Namespace, period: "Period", out: Path) -> str:
    """Every voucher batch: sold and redeemed, in all and within the period."""
    from datetime import UTC, datetime

    from gateway.services.finance import VOUCHER_COLUMNS
    from gateway.tabular import csv_text

    async def work(gw: "Gateway") -> int:
        rows = await gw.services.finance.vouchers(period, datetime.now(UTC))
        with private_text_file(out) as sink:
            sink.write(json.dumps(rows, indent=1) + "\n" if args.format == "json"
                       else csv_text(VOUCHER_COLUMNS, rows))
        return len(rows)

    return f"wrote {with_gateway(args, work)} voucher batches to {out}"


def _write_credit(rows: list[dict[str, str | int]], out: Path, as_json: bool) -> int:
    """The credit ledger's entries of the period: credits, spends, refunds, txids."""
    from gateway.services.finance import CREDIT_COLUMNS
    from gateway.tabular import csv_text

    with private_text_file(out) as sink:
        sink.write(json.dumps(rows, indent=1) + "\n" if as_json
                   else csv_text(CREDIT_COLUMNS, rows))
    return len(rows)


def register(cli: Commands) -> None:
    payments = cli.group("payments", help="finance",
                         example="gateway payments export --from 2026-11-01T00:00:00Z "
                                 "--to 2026-12-01T00:00:00Z --out november.csv")
    export = payments.command(
        "export", cmd_payments_export, help="every payment of a period, for finance",
        example=["gateway payments export --from 2026-11-01T00:00:00Z "
                 "--to 2026-12-01T00:00:00Z --out november.csv",
                 "gateway payments export --from 2026-11-01T00:00:00Z "
                 "--to 2026-12-01T00:00:00Z --coin BTC --format json --out btc.json"])
    export.add_argument("--from", dest="from_", metavar="TIME", required=True,
                        help="ISO 8601 time with zone")
    export.add_argument("--to", metavar="TIME", required=True,
                        help="ISO 8601 time with zone (exclusive)")
    export.add_argument("--coin")
    export.add_argument("--format", choices=("csv", "json"), default="csv",
                        help="the file's format (default csv)")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--credit-out", metavar="FILE",
                        help="also write the period's account credit entries (credits, "
                             "spends, refunds, with their txids) to this file")
    export.add_argument("--vouchers-out", metavar="FILE",
                        help="also write every voucher batch (sold, redeemed in all and in "
                             "the period) to this file")
