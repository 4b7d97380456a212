"""`gateway ...` commands: one module per command group, each with a `register`
function that declares its commands (gateway/cli/support.py, `Commands`). Errors are one
clear line on stderr and a non-zero exit.

Vocabulary: `create`, `list`, `show`, `revoke`, `delete`; a domain verb only where none
of those fits (`db upgrade`, `backup restore`, `webhook rotate`...). `--json` always
means "print JSON"; files are named with `--out`. The reference, docs/cli.md, is
generated from this parser (`gateway cli-reference`)."""

import argparse
from collections.abc import Sequence

from gateway.cli import (
    account,
    apikey,
    backup,
    config,
    db,
    demo,
    doctor,
    keys,
    legal,
    notify,
    openapi,
    payments,
    reconcile,
    reference,
    retention,
    serve,
    staff,
    voucher,
    wallet,
    webhook,
)
from gateway.cli.support import Commands, Formatter, deprecated, deprecation

# In the order of `gateway --help`.
GROUPS = (serve, db, config, doctor, apikey, webhook, payments, reconcile, wallet, account,
          voucher, legal, notify, retention, backup, keys, staff, openapi, demo, reference)


def build() -> tuple[argparse.ArgumentParser, list[tuple[str, argparse.ArgumentParser]]]:
    """The parser, and every parser in it by its full command (for the reference)."""
    p = argparse.ArgumentParser(
        prog="gateway", description="Packetra payment gateway", formatter_class=Formatter,
        epilog="example:\n  gateway -c /etc/gateway/gateway.toml serve")
    p.add_argument("-c", "--config", help="TOML configuration file (or GATEWAY_CONFIG)")
    # Also accepted after the command's name (`gateway serve -c FILE`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parsers = [("gateway", p)]
    sub = p.add_subparsers(dest="command", required=True)
    commands = Commands(sub, common, "gateway", "command", parsers)
    for group in GROUPS:
        group.register(commands)
    sub.metavar = "COMMAND"
    return p, parsers


def parser() -> argparse.ArgumentParser:
    return build()[0]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    instead = deprecation(args)
    if instead is not None:
        deprecated(instead)
    result: int = args.func(args)
    return result
