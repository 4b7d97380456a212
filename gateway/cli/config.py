"""`gateway config check`: is this configuration fit to run."""

import argparse
import asyncio
import sys

from gateway.cli.support import EXIT_CONFIG, Commands


def cmd_config_check(args: argparse.Namespace) -> int:
    from gateway.config_check import check, effective_toml

    report = check(getattr(args, "config", None))
    if report.settings is not None:
        from gateway.bootstrap import startup_problems

        # What `gateway serve` would refuse: an EVM token whose contract says other
        # decimals (only EVM nodes are asked; one that cannot be asked is a warning).
        fatal, warnings = asyncio.run(startup_problems(report.settings))
        report.problems.extend(fatal)
        report.warnings.extend(warnings)
        print(effective_toml(report), end="")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if report.problems:
        return EXIT_CONFIG
    print("# configuration is valid", file=sys.stderr)
    return 0


def register(cli: Commands) -> None:
    cfg = cli.group("config", help="the configuration",
                    example="gateway config check -c /etc/gateway/gateway.toml")
    cfg.command("check", cmd_config_check,
                help="print the effective configuration (secrets shown as their source); "
                     "exit 2 with one line per problem",
                example="gateway config check -c /etc/gateway/gateway.toml")
