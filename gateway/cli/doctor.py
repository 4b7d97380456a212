"""`gateway doctor`: is everything the configuration points at reachable and sound."""

import argparse
import asyncio

from gateway import logs
from gateway.cli.support import Commands, settings_or_exit


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


def register(cli: Commands) -> None:
    cli.command("doctor", cmd_doctor,
                help="check the database, every node, SMTP and every webhook endpoint; exit "
                     "1 on any problem",
                example="gateway doctor -c /etc/gateway/gateway.toml")
