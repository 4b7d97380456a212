"""`gateway demo`: the whole flow on a local regtest node."""

import argparse

from gateway.cli.support import Commands


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(once=args.once, timeout=args.timeout, coin=args.coin)


def register(cli: Commands) -> None:
    demo = cli.command("demo", cmd_demo, config=False,
                       help="the whole flow on a local regtest node",
                       example=["gateway demo", "gateway demo --coin XMR"])
    demo.add_argument("--once", action="store_true", help="exit 0 after account.activated")
    demo.add_argument("--timeout", type=float, default=180.0)
    demo.add_argument("--coin", default="LTC", choices=["LTC", "ETH", "USDC", "XMR"],
                      help="LTC on litecoind; ETH, or a demo USDC token, on anvil; XMR on "
                           "monerod with a view-only wallet")
