"""`gateway wallet gap`: what the merchant's wallet must scan to see every payment."""

import argparse

from gateway.cli.support import Commands, with_gateway


def cmd_wallet_gap(args: argparse.Namespace) -> int:
    gap = with_gateway(args, lambda gw: gw.services.wallet.gap(args.coin))
    if args.json:
        import json

        print(json.dumps({"coin": args.coin, "derived": gap.derived, "longest_gap": gap.longest,
                          "start_index": gap.start, "end_index": gap.end}))
        return 0
    where = f" (indexes {gap.start}-{gap.end})" if gap.start is not None else ""
    print(f"{args.coin}: {gap.derived} addresses derived; longest run of addresses that "
          f"never received a confirmed payment: {gap.longest}{where}")
    print(f"Scan at least {max(gap.longest + 1, 20)} addresses ahead (gap limit) in the "
          "wallet that holds the keys, or it will not see every payment.")
    return 0


def register(cli: Commands) -> None:
    wallet = cli.group("wallet", help="the merchant wallet's view",
                       example="gateway wallet gap --coin BTC")
    gap = wallet.command("gap", cmd_wallet_gap,
                         help="longest run of derived addresses that never received",
                         example=["gateway wallet gap --coin BTC",
                                  "gateway wallet gap --coin LTC --json"])
    gap.add_argument("--coin", required=True)
    gap.add_argument("--json", action="store_true", help="print JSON")
