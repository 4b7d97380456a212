"""`gateway db upgrade`: the database schema."""

import argparse
import asyncio

from gateway import logs
from gateway.cli.support import Commands, settings_or_exit


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from alembic import command

    from gateway.adapters.db.engine import alembic_config

    settings = settings_or_exit(args)
    logs.configure("WARNING")
    command.upgrade(alembic_config(settings.database.url), "head")
    print("database is up to date")
    # Migrations never see the data keys, so fields written before they were bound to
    # their column are rewritten by `keys rotate-data`, not here: say so when it is due.
    old = asyncio.run(_format1_rows(settings.database.url))
    if old:
        print(f"{old} rows hold personal fields bound to their record only (written by an "
              "older version): run `gateway keys rotate-data`, then set [security] "
              "read_legacy_ciphertexts = false once links mailed before the upgrade have "
              "expired, 7 days (OPERATIONS.md, Keys)")
    return 0


async def _format1_rows(url: str) -> int:
    from gateway.adapters.db.engine import dispose, make_engine
    from gateway.adapters.db.field_rotation import count_format1

    engine = make_engine(url, hide_parameters=True)
    try:
        return await count_format1(engine)
    finally:
        await dispose(engine)


def register(cli: Commands) -> None:
    db = cli.group("db", help="the database schema", example="gateway db upgrade")
    db.command("upgrade", cmd_db_upgrade,
               help="apply every migration (run it before `serve` after each upgrade)",
               example="gateway db upgrade -c /etc/gateway/gateway.toml")
