"""Engine construction and schema-version checks."""

import asyncio
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
READ_ONLY = "gateway_read_only"  # execution option: this transaction only reads


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions; BEGIN IMMEDIATE below takes the write lock up
        # front so two writers queue on busy_timeout instead of failing on lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and overwritten content is zeroed, not left in free pages: an erased
        # account must not be recoverable from the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # A read-only unit of work takes a snapshot and no lock: in WAL mode readers never
        # wait for the writer (the checkout page must not queue behind logins).
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


async def checkpoint(engine: AsyncEngine) -> None:
    """SQLite keeps old page images in its write-ahead log until a checkpoint: copy them
    into the main file (which deletes securely) and truncate the log. Outside any
    transaction, so on the driver connection. Busy readers can hold part of it back; the
    next call finishes it. Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# The tables an account's erasure rewrites or deletes from (SqlAccounts.erase_personal_data).
ERASED_TABLES = ("accounts", "recovery_codes", "sessions", "security_log", "policy_notices",
                 "login_throttle", "mail_queue")


async def erase_residue(engine: AsyncEngine, lock_timeout_seconds: float = 5.0,
                        wait_seconds: float = 10.0) -> bool:
    """After erasures: make the old values leave the database files now. SQLite: the
    checkpoint above. PostgreSQL keeps an updated or deleted row's old version in the
    table file (a dead tuple) until vacuum, and a plain VACUUM frees the space without
    overwriting it: VACUUM FULL rewrites the tables an erasure touches into new files and
    removes the old ones. A version some open snapshot may still see is copied along, so
    transactions older than this call are waited for first (up to `wait_seconds`). Each
    table is locked while it is copied (small tables: moments); `lock_timeout` keeps that
    from queueing behind long transactions. False (or an error): not done, call again
    later."""
    if engine.dialect.name == "sqlite":
        await checkpoint(engine)
        return True
    if engine.dialect.name != "postgresql":
        return True
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # A transaction id newer than every erasure. Waited for: snapshots in this
        # database older than it (they may still see an erased row's old version), and
        # transactions anywhere on the server older than it (they hold back the xmin of
        # the vacuum's own snapshot, so it would keep the old versions too).
        mark = int((await conn.exec_driver_sql(
            "SELECT pg_current_xact_id()::text::bigint % 4294967296")).scalar_one())
        older = text(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ("
            "(backend_xid IS NOT NULL AND age(backend_xid) >= age(CAST(:mark AS xid))) OR "
            "(datname = current_database() AND backend_xmin IS NOT NULL "
            "AND age(backend_xmin) >= age(CAST(:mark AS xid))))")
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while (await conn.execute(older, {"mark": mark})).scalar_one():
            if asyncio.get_running_loop().time() > deadline:
                return False  # a long transaction might still see the old versions
            await asyncio.sleep(0.2)
        await conn.exec_driver_sql(f"SET lock_timeout = '{int(lock_timeout_seconds * 1000)}ms'")
        for table in ERASED_TABLES:  # one at a time: each lock is held only for its copy
            await conn.exec_driver_sql(f"VACUUM (FULL) {table}")
    return True


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def _read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_read)
