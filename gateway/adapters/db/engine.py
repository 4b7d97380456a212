"""Engine construction and schema-version checks."""

import asyncio
import contextlib
import os
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.adapters.db.turn import WriteTurn
from gateway.services.errors import ServiceUnavailable

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# Execution option: this connection's transactions write. On SQLite only they begin with
# BEGIN IMMEDIATE (the write lock up front); every other transaction is a deferred BEGIN
# that reads a snapshot and takes no lock: in WAL mode a reader never waits for a writer
# and never holds one up. Only this module's writers set it (`write_transaction`,
# `inline_connection`, `writer`), each inside this process's turn to write.
WRITER = "gateway_writer"
WRITE_LOCK_SECONDS = 30.0  # as long as SQLite's own busy timeout
BUSY_MS = 30000  # SQLite's busy timeout on the async engine's connections (worker threads)
CHECKPOINT_BUSY_MS = 500

# SQLite: one writer at a time. Writers of this process queue on an asyncio lock (handed
# over at once, in order) instead of on SQLite's busy handler, which sleeps and retries
# with growing pauses: under load the lock sat free while every waiter slept.
# The watcher's and the deliveries' writers go first (`turn.WriteTurn`).
_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, WriteTurn]" = weakref.WeakKeyDictionary()
# SQLite: units of work run on the event loop's own thread through the plain sqlite3
# driver. A statement by key takes tens of microseconds; aiosqlite's hand-over to a worker
# thread and back (several per statement) cost milliseconds under load. A reader never
# waits in WAL mode; a writer first takes this process's turn (`write_turn`), so it can
# only find the lock held by another process (a CLI command). SQLite's busy handler would
# wait for that with the loop held (nothing served, nothing else written), so these
# connections have none (busy_timeout 0): BEGIN IMMEDIATE fails at once and is tried again
# after an asyncio sleep (`inline_connection`).
_INLINE: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()
INLINE_BUSY_MS = 0
_RETRY_FIRST, _RETRY_MAX = 0.001, 0.02  # seconds between tries for the lock, doubling
SLICE_SECONDS = 0.002  # an inline unit of work gives the loop up between statements after


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
        engine = create_async_engine(url, connect_args={"timeout": BUSY_MS / 1000}, **kwargs)
        _sqlite_pragmas(engine.sync_engine, BUSY_MS)
        # Never waits for a connection (a wait would block the loop that returns them):
        # 8 kept, any more opened and closed as needed.
        inline = create_engine(engine.url.set(drivername="sqlite"), pool_size=8,
                               max_overflow=-1, hide_parameters=kwargs.get(
                                   "hide_parameters", False))
        _sqlite_pragmas(inline, INLINE_BUSY_MS, guard_reads=True)
        _INLINE[engine.sync_engine] = inline
        return engine
    # PostgreSQL: SQLAlchemy's default pool (5 + 10 overflow) per instance; several
    # instances share the server's max_connections.
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


class WriteLockTimeout(ServiceUnavailable):
    """This process waited too long for its turn to write, or for another process to
    release SQLite's write lock. A request answers 503 (problem+json, Retry-After)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the database is busy ({detail}); try again", 1)


@contextlib.asynccontextmanager
async def write_turn(engine: AsyncEngine, urgent: bool = False) -> AsyncIterator[None]:
    """This process's turn to write: on SQLite one writer at a time (see `_WRITE_LOCKS`);
    on PostgreSQL nothing to wait for. Not reentrant: a writer must not open another.
    `urgent`: served before the other waiters (the watcher, webhook deliveries)."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITE_LOCKS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITE_LOCKS[engine.sync_engine] = WriteTurn()
    try:
        async with asyncio.timeout(WRITE_LOCK_SECONDS):
            await lock.acquire(urgent)
    except TimeoutError:
        raise WriteLockTimeout(
            f"waited {WRITE_LOCK_SECONDS:.0f} s for the write turn") from None
    try:
        yield
    finally:
        lock.release()


def holds_write_turn(engine: Engine) -> bool:
    """Whether some writer of this process holds the turn (SQLite; for checks)."""
    lock = _WRITE_LOCKS.get(engine)
    return lock is not None and lock.locked()


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine, urgent: bool = False
                            ) -> AsyncIterator[AsyncConnection]:
    """A transaction that writes, in this process's turn to write (SQLite). On an engine
    built by `make_engine` for SQLite it runs inline like a unit of work: the turn is then
    held for the statements themselves, not for hand-overs to a driver thread and back
    (the delivery worker's claims queue behind every API writer and hold them up in
    turn). For short transactions only: a statement runs on the event loop's thread.
    `urgent`: in the first queue for the turn (`turn.WriteTurn`)."""
    async with write_turn(engine, urgent):
        inline = inline_engine(engine)
        if inline is None:
            async with engine.connect() as conn:
                await writer(conn)
                async with conn.begin():
                    yield conn
            return
        inline_conn = await inline_connection(inline, write=True)
        try:
            yield cast(AsyncConnection, inline_conn)
            await inline_conn.commit()
        finally:
            if inline_conn.in_transaction():
                await inline_conn.rollback()
            await inline_conn.close()


@contextlib.asynccontextmanager
async def read_transaction(engine: AsyncEngine, small: bool = True
                           ) -> AsyncIterator[AsyncConnection]:
    """A transaction that only reads: no lock on SQLite, READ ONLY on PostgreSQL.
    `small` (a few quick statements, as probes and /metrics make): on SQLite it runs
    inline, so a busy loop does not stretch each statement into a hand-over to a driver
    thread and back. A read that may return many rows passes small=False and runs in the
    driver's thread, off the loop."""
    inline = inline_engine(engine) if small else None
    if inline is None:
        async with engine.connect() as conn:
            await read_only(conn)
            async with conn.begin():
                yield conn
        return
    inline_conn = await inline_connection(inline, write=False)
    try:
        yield cast(AsyncConnection, inline_conn)
    finally:
        await inline_conn.rollback()  # it wrote nothing
        await inline_conn.close()


async def read_only(conn: AsyncConnection) -> None:
    """Mark the connection's next transactions as read-only (before they begin). SQLite's
    transactions read without a lock unless marked as writers, so there is nothing to do."""
    if conn.dialect.name != "sqlite":
        await conn.execution_options(postgresql_readonly=True)


async def writer(conn: AsyncConnection) -> None:
    """Mark the connection's next transactions as writers (before they begin): on SQLite
    they take the write lock at BEGIN. Only inside this process's turn to write."""
    await conn.execution_options(**{WRITER: True})


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
    connection on the event loop's thread. A unit may commit and go on (a failed-login
    count after a committed check): the next statement then begins a new transaction,
    and a writer's BEGIN IMMEDIATE goes through the same retry as the first one, never
    SQLAlchemy's autobegin (which would fail at once while another process writes)."""

    def __init__(self, conn: Connection, write: bool, deadline_seconds: float) -> None:
        self._conn = conn
        self._write = write
        self._deadline_seconds = deadline_seconds
        self.dialect = conn.dialect
        self._since = time.monotonic()  # last gave the loop up

    async def _between(self) -> None:
        """Let other tasks run between statements once this unit has had the loop for
        SLICE_SECONDS: a long unit of work (a busy block) must not hold it for its whole
        length. A short one (a request's read or invoice creation: a few statements of
        tens of microseconds) runs through without giving it up: a reader then holds its
        connection for microseconds (64 concurrent readers needed 64 open connections,
        those beyond the pool's opened and closed each time), and a writer holds the
        process's turn to write only for its statements, not for rounds of the loop
        serving everyone else in between."""
        now = time.monotonic()
        if now - self._since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self._since = time.monotonic()

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        await self._between()
        await self._begun()
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        await self._between()
        await self._begun()
        return self._conn.scalar(statement, parameters)

    def in_transaction(self) -> bool:
        return self._conn.in_transaction()

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        await self._begun()
        with self._conn.begin_nested():
            yield

    async def begin(self) -> None:
        await _begin_retrying(self._conn, self._write, self._deadline_seconds)

    async def _begun(self) -> None:
        if not self._conn.in_transaction():
            await self.begin()

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()


async def inline_connection(engine: Engine, write: bool,
                            deadline_seconds: float | None = None) -> InlineConnection:
    """A connection of the inline engine with its transaction begun. A writer (inside this
    process's turn) takes SQLite's write lock at BEGIN; while another process holds it,
    the loop goes on serving and the BEGIN is tried again, up to `deadline_seconds`, then
    `WriteLockTimeout` (by default after WRITE_LOCK_SECONDS)."""
    if deadline_seconds is None:
        deadline_seconds = WRITE_LOCK_SECONDS
    conn = engine.connect()
    try:
        if write:
            conn = conn.execution_options(**{WRITER: True})
        inline = InlineConnection(conn, write, deadline_seconds)
        await inline.begin()
        return inline
    except BaseException:
        conn.close()
        raise


async def _begin_retrying(conn: Connection, write: bool, deadline_seconds: float) -> None:
    if not write:
        conn.begin()
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    pause = _RETRY_FIRST
    while True:
        try:
            conn.begin()
            return
        except OperationalError as exc:
            if not _busy(exc) or loop.time() + pause > deadline:
                if _busy(exc):
                    raise WriteLockTimeout(
                        f"another process held the write lock for "
                        f"{deadline_seconds:g} s") from None
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _RETRY_MAX)


def _busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == 5  # SQLITE_BUSY and its extended codes


def _sqlite_pragmas(engine: Engine, busy_ms: int, guard_reads: bool = False) -> None:
    """`guard_reads` (the inline engine, whose transactions all come from units of work):
    a transaction not marked as a writer is also query_only, so a write slipped into a
    reading unit fails at once instead of taking the write lock outside the write turn."""
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions; a writer's BEGIN IMMEDIATE below takes the write
        # lock up front, so two writers queue instead of failing on lock upgrade.
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
        # Only a marked writer takes the write lock, at BEGIN (see WRITER). Anything else
        # (a unit that reads, a probe, a schema check, a query of a tool) takes a snapshot
        # and no lock: in WAL mode it never waits for the writer nor holds it up.
        writes = bool(conn.get_execution_options().get(WRITER, False))
        if guard_reads:
            info = conn.connection.info  # lives as long as the driver connection
            if info.get("query_only") is not (not writes):
                conn.exec_driver_sql(f"PRAGMA query_only={0 if writes else 1}")
                info["query_only"] = not writes
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


async def checkpoint(engine: AsyncEngine) -> bool:
    """SQLite keeps old page images in its write-ahead log until a checkpoint: copy them
    into the main file (which deletes securely) and truncate the log. Outside any
    transaction, so on the driver connection. A TRUNCATE checkpoint holds the write lock
    while it waits for readers of older snapshots, so it runs in this process's turn to
    write (its writers queue on the turn, not in SQLite) and waits at most
    CHECKPOINT_BUSY_MS. False: a reader (or another process's writer) held part of it
    back; the next call finishes it. Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return True
    async with write_turn(engine), engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        try:
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _pages, _copied = await cursor.fetchone()
        finally:
            await driver.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return not busy


# The tables an account's erasure rewrites or deletes from (SqlAccounts.erase_personal_data).
ERASED_TABLES = ("accounts", "recovery_codes", "sessions", "security_log", "policy_notices",
                 "login_throttle", "mail_queue", "renewals", "cash_tokens")


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
        return await checkpoint(engine)
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
        await read_only(conn)  # no write lock: serve, doctor and the CLI run side by side
        return await conn.run_sync(_read)
