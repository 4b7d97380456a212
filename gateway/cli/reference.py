"""`gateway cli-reference`: the CLI reference (docs/cli.md), generated from the parser so
that it cannot drift from it (tests/unit/test_cli.py regenerates and compares)."""

import argparse
from pathlib import Path

from gateway.cli.support import Commands, Formatter

WIDTH = 88  # the reference is the same on every terminal

HEADER = """# `gateway` command reference

Generated from the parser by `gateway cli-reference --out docs/cli.md`: do not edit by
hand (a unit test fails when this file differs from what the parser says).

Vocabulary: `create`, `list`, `show`, `revoke` and `delete`; a command's own verb only
where none of those fits (`db upgrade`, `backup restore`, `backup prune`, `webhook
rotate`, `legal lift-hold`...). `--json` always means "print JSON"; a file to write is
named with `--out`. Old spellings (`webhook add`, `staff add`, `staff remove`, `legal
add`, `reconcile --json FILE`) still work for one release and say what to type instead.
`-c FILE` (or `GATEWAY_CONFIG`) names the configuration, before or after the command.
"""


class _Fixed(Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH)


def markdown() -> str:
    from gateway.cli import build

    parts = [HEADER]
    for name, p in build()[1]:
        p.formatter_class = _Fixed
        parts.append(f"## `{name}`\n\n```text\n{p.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def cmd_cli_reference(args: argparse.Namespace) -> int:
    text = markdown()
    if args.out is None:
        print(text, end="")
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return 0


def register(cli: Commands) -> None:
    ref = cli.command("cli-reference", cmd_cli_reference, config=False,
                      help="print this reference of every command as Markdown (docs/cli.md)",
                      example="gateway cli-reference --out docs/cli.md")
    ref.add_argument("--out", metavar="FILE", help="write it to FILE instead")
