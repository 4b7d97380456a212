"""`gateway demo`: the whole flow on a local regtest node."""

import argparse

from gateway.cli.support import Commands


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(once=args.once, timeout=args.timeout, coin=args.coin)


def _demo_coin(text: str) -> str:
    """LTC, ETH, USDC, XMR, or ETH-/USDC-<NETWORK> (a network's name: A-Z, 0-9)."""
    from gateway.config import NETWORK_NAME

    asset, sep, network = text.partition("-")
    if text in ("LTC", "ETH", "USDC", "XMR") or (
            sep and asset in ("ETH", "USDC") and NETWORK_NAME.match(network)):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: choose LTC, ETH, USDC, XMR, or ETH-<NETWORK> / USDC-<NETWORK> "
        "(NETWORK in capitals and digits, e.g. USDC-L2)")


def register(cli: Commands) -> None:
    demo = cli.command("demo", cmd_demo, config=False,
                       help="the whole flow on a local regtest node",
                       example=["gateway demo", "gateway demo --coin XMR",
                                "gateway demo --coin USDC-L2"])
    demo.add_argument("--once", action="store_true", help="exit 0 after account.activated")
    demo.add_argument("--timeout", type=float, default=180.0)
    demo.add_argument("--coin", default="LTC", type=_demo_coin,
                      help="LTC on litecoind; ETH, or a demo USDC token, on anvil; "
                           "ETH-<NETWORK> or USDC-<NETWORK> on anvil configured as "
                           "[networks.<NETWORK>] (e.g. USDC-L2); XMR on monerod with a "
                           "view-only wallet")
