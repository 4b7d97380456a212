"""A fresh, migrated database per test: an SQLite file, or a new PostgreSQL database on
the server at GATEWAY_TEST_POSTGRES_URL (default: the local one, trust auth)."""

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from alembic import command

from gateway.adapters.db.engine import alembic_config

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_PG)
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(postgres_admin_url(), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro: object) -> None:
    # In a thread of its own, so this works from inside a running event loop too.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def _upgrade(url: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(command.upgrade, alembic_config(url), "head").result()


@contextmanager
def fresh_database(kind: str, tmp: Path, migrate: bool = True) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / f'gateway-{secrets.token_hex(4)}.db'}"
        if migrate:
            _upgrade(url)
        yield url
        return
    name = f"gw_test_{secrets.token_hex(6)}"
    _run(_admin(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url().rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    try:
        if migrate:
            _upgrade(url)
        yield url
    finally:
        _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
