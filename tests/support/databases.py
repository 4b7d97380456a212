"""A fresh, migrated database per test: an SQLite file, or a new PostgreSQL database on
the server at GATEWAY_TEST_POSTGRES_URL (default: the local one, trust auth).

Migrating from empty takes about a second; a test's database is instead a copy of a
template migrated once per process (a copied SQLite file; PostgreSQL's `CREATE DATABASE
... TEMPLATE`). The migration tests still migrate from empty (`migrate=False`)."""

import asyncio
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
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


_templates: dict[str, str] = {}  # kind -> this process's migrated template
_templates_lock = threading.Lock()


def _pg_url(name: str) -> str:
    base = postgres_admin_url().rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


def _template(kind: str) -> str:
    """This process's migrated template: an SQLite file's path or a PostgreSQL database's
    name, made on first use; `drop_templates` removes them."""
    with _templates_lock:
        if kind in _templates:
            return _templates[kind]
        if kind == "sqlite":
            folder = tempfile.mkdtemp(prefix="gateway-template-")
            path = os.path.join(folder, "template.db")
            _upgrade(f"sqlite+aiosqlite:///{path}")
            # Everything in the main file: a copy of it alone is the whole database.
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _templates[kind] = path
        else:
            name = f"gw_template_{os.getpid()}_{secrets.token_hex(3)}"
            _run(_admin(f'CREATE DATABASE "{name}"'))
            _upgrade(_pg_url(name))
            _templates[kind] = name
        return _templates[kind]


def drop_templates() -> None:
    """Remove this process's templates (at the end of the test session)."""
    with _templates_lock:
        for kind, template in _templates.items():
            if kind == "sqlite":
                shutil.rmtree(os.path.dirname(template), ignore_errors=True)
            else:
                _run(_admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        _templates.clear()


@contextmanager
def fresh_database(kind: str, tmp: Path, migrate: bool = True) -> Iterator[str]:
    """A new database of `kind`; `migrate`: at the head revision (a copy of the template),
    else empty."""
    if kind == "sqlite":
        path = tmp / f"gateway-{secrets.token_hex(4)}.db"
        if migrate:
            shutil.copyfile(_template(kind), path)
            path.chmod(0o600)  # as the gateway creates one (gateway doctor checks it)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"gw_test_{secrets.token_hex(6)}"
    template = f' TEMPLATE "{_template(kind)}"' if migrate else ""
    _run(_admin(f'CREATE DATABASE "{name}"{template}'))
    try:
        yield _pg_url(name)
    finally:
        _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
