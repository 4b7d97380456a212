"""Engine construction and schema-version checks."""

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
READ_ONLY = "gateway_read_only"  # execution option: this transaction only reads
WRITE_LOCK_SECONDS = 30.0  # as long as SQLite's own busy timeout

# SQLite: one writer at a time. Writers of this process queue on an asyncio lock (handed
# over at once, in order) instead of on SQLite's busy handler, which sleeps and retries
# with growing pauses: under load the lock sat free while every waiter slept.
_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, asyncio.Lock]" = weakref.WeakKeyDictionary()
# SQLite: units of work run on the event loop's own thread through the plain sqlite3
# driver. A statement by key takes tens of microseconds; aiosqlite's hand-over to a worker
# thread and back (several per statement) cost milliseconds under load. A reader never
# waits in WAL mode; a writer first takes this process's turn (`write_turn`), so it can
# only wait for another process (a CLI command), at most INLINE_BUSY_MS with the loop held.
_INLINE: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()
INLINE_BUSY_MS = 5000


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL; None for another database or one in memory."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _create_private(path: str) -> None:
    """A new SQLite file is created readable by its owner only. SQLite gives the -wal and
    -shm files it makes beside it the main file's mode, so they are 0600 too, whatever
    the umask (outside the systemd unit, which sets 0077, it is usually 0022). An existing
    file keeps its mode: `gateway doctor` says when others can read it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # a folder that does not exist: the driver's own error says so


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            _create_private(path)
        # Readers never wait in WAL mode, so more of them may run at once than writers.
        kwargs.setdefault("pool_size", 16)
        kwargs.setdefault("max_overflow", 16)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_pragmas(engine.sync_engine, 30000)
        # Never waits for a connection (a wait would block the loop that returns them):
        # 8 kept, any more opened and closed as needed.
        inline = create_engine(engine.url.set(drivername="sqlite"), pool_size=8,
                               max_overflow=-1, hide_parameters=kwargs.get(
                                   "hide_parameters", False))
        _sqlite_pragmas(inline, INLINE_BUSY_MS)
        _INLINE[engine.sync_engine] = inline
        return engine
    # PostgreSQL: SQLAlchemy's default pool (5 + 10 overflow) per instance; several
    # instances share the server's max_connections.
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


class WriteLockTimeout(Exception):
    """This process waited too long for its turn to write (SQLite)."""


@contextlib.asynccontextmanager
async def write_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """This process's turn to write: on SQLite one writer at a time (see `_WRITE_LOCKS`);
    on PostgreSQL nothing to wait for. Not reentrant: a writer must not open another."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITE_LOCKS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITE_LOCKS[engine.sync_engine] = asyncio.Lock()
    try:
        async with asyncio.timeout(WRITE_LOCK_SECONDS):
            await lock.acquire()
    except TimeoutError:
        raise WriteLockTimeout(
            f"waited {WRITE_LOCK_SECONDS:.0f} s for the database write lock") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.begin()` in this process's turn to write (SQLite)."""
    async with write_turn(engine), engine.begin() as conn:
        yield conn


@contextlib.asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that only reads: no write lock on SQLite, READ ONLY on PostgreSQL."""
    async with engine.connect() as conn:
        await read_only(conn)
        async with conn.begin():
            yield conn


async def read_only(conn: AsyncConnection) -> None:
    """Mark the connection's next transactions as read-only (before they begin)."""
    if conn.dialect.name == "sqlite":
        await conn.execution_options(**{READ_ONLY: True})
    else:
        await conn.execution_options(postgresql_readonly=True)


def inline_engine(engine: AsyncEngine) -> Engine | None:
    """The engine for inline units of work (SQLite built by `make_engine`), else None."""
    return _INLINE.get(engine.sync_engine)


async def dispose(engine: AsyncEngine) -> None:
    await engine.dispose()
    inline = _INLINE.get(engine.sync_engine)
    if inline is not None:
        inline.dispose()


class InlineConnection:
    """The part of `AsyncConnection` the repositories use, over a synchronous SQLite
    connection on the event loop's thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        result = self._conn.execute(statement, parameters)
        # Let other tasks run between statements: a long unit of work (a busy block)
        # must not hold the loop for its whole length.
        await asyncio.sleep(0)
        return result

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        result = self._conn.scalar(statement, parameters)
        await asyncio.sleep(0)
        return result

    def in_transaction(self) -> bool:
        return self._conn.in_transaction()

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self._conn.begin_nested():
            yield

    async def begin(self) -> None:
        self._conn.begin()

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()


def inline_connection(engine: Engine, read_only: bool) -> InlineConnection:
    conn = engine.connect()
    try:
        if read_only:
            conn = conn.execution_options(**{READ_ONLY: True})
        conn.begin()
    except BaseException:
        conn.close()
        raise
    return InlineConnection(conn)


def _sqlite_pragmas(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions; BEGIN IMMEDIATE below takes the write lock up
        # front so two writers queue on busy_timeout instead of failing on lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and overwritten content is zeroed, not left in free pages: an erased
        # account must not be recoverable from the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
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
