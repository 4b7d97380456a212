"""`gateway config check` and `gateway doctor`: is this configuration, and is everything
it points at, fit to run."""

import argparse
import asyncio
import sys

from gateway import logs
from gateway.cli_support import EXIT_CONFIG, settings_or_exit


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


def cmd_doctor(args: argparse.Namespace) -> int:
    from gateway.bootstrap import build
    from gateway.doctor import examine

    settings = settings_or_exit(args)
    logs.configure("ERROR")

    async def run() -> list[str]:
        gw = build(settings)
        try:
            found = await examine(gw)
        finally:
            await gw.aclose()
        return [f.line() for f in found] + [
            f"{sum(not f.ok for f in found)} problem(s)"]

    lines = asyncio.run(run())
    print("\n".join(lines))
    return 0 if lines[-1].startswith("0 ") else 1


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
             common: argparse.ArgumentParser) -> None:
    cfg = sub.add_parser("config", help="the configuration").add_subparsers(
        dest="config_cmd", required=True)
    check = cfg.add_parser(
        "check", parents=[common],
        help="print the effective configuration (secrets shown as their source); exit 2 "
             "with one line per problem")
    check.set_defaults(func=cmd_config_check)
    doctor = sub.add_parser(
        "doctor", parents=[common],
        help="check the database, every node, SMTP and every webhook endpoint; exit 1 on "
             "any problem")
    doctor.set_defaults(func=cmd_doctor)
