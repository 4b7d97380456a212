from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db.accounts import SqlAccounts, SqlApiKeys, SqlSessions
from gateway.adapters.db.audit import SqlAuditLog
from gateway.adapters.db.chain_state import SqlCursors
from gateway.adapters.db.engine import READ_ONLY
from gateway.adapters.db.idempotency import SqlIdempotency
from gateway.adapters.db.invoices import SqlInvoices, SqlPayments
from gateway.adapters.db.ledger import SqlLedger
from gateway.adapters.db.legal import SqlLegalRegister
from gateway.adapters.db.personal import SqlPersonalRecords
from gateway.adapters.db.retention import SqlRetention
from gateway.adapters.db.security_log import SqlSecurityLog
from gateway.adapters.db.throttle import SqlThrottle
from gateway.adapters.db.webhooks import SqlEndpoints, SqlEvents, SqlOutbox
from gateway.adapters.fields import FieldCipher
from gateway.services.ports import HasEvents, UnitOfWork


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlUnitOfWork:
    """One transaction. Leaving the block without `commit()` rolls everything back.
    `read_only`: for reads only; on SQLite it then takes no write lock.

    Repositories hand every aggregate they add or save to `collect`; at commit the
    events those aggregates recorded go to the outbox, in the same transaction. No
    service publishes an event itself."""

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: FieldCipher,
        on_events: Callable[[], None] | None = None,
        read_only: bool = False,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._collected: list[HasEvents] = []
        self._cipher = cipher
        self._on_events = on_events
        self._read_only = read_only
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        conn = await self._engine.connect()
        if self._read_only:
            await conn.execution_options(**{READ_ONLY: True})
        await conn.begin()
        self._conn = conn
        self._collected = []
        self.accounts = SqlAccounts(conn, self._cipher, self.collect)
        self.sessions = SqlSessions(conn)
        self.api_keys = SqlApiKeys(conn)
        self.invoices = SqlInvoices(conn, self.collect)
        self.payments = SqlPayments(conn)
        self.cursors = SqlCursors(conn)
        self.endpoints = SqlEndpoints(conn, self._cipher)
        self.outbox = SqlOutbox(conn)
        self.idempotency = SqlIdempotency(conn)
        self.events = SqlEvents(conn)
        self.throttle = SqlThrottle(conn)
        self.security_log = SqlSecurityLog(conn, self._cipher)
        self.retention = SqlRetention(conn)
        self.audit = SqlAuditLog(conn, self._cipher)
        self.ledger = SqlLedger(conn)
        self.personal = SqlPersonalRecords(conn)
        self.legal = SqlLegalRegister(conn, self._cipher)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    def collect(self, aggregate: HasEvents) -> None:
        if not any(a is aggregate for a in self._collected):
            self._collected.append(aggregate)

    async def commit(self) -> None:
        assert self._conn is not None
        collected, self._collected = self._collected, []
        events = [event for aggregate in collected for event in aggregate.events]
        if events:
            await self.outbox.publish(events, self._clock())
        await self._conn.commit()
        for aggregate in collected:
            aggregate.events.clear()
        if (self.outbox.published or self.events.requeued) and self._on_events is not None:
            self._on_events()
        # A read after commit (as create-then-read does) runs in a fresh transaction.
        await self._conn.begin()
        self.outbox.published = 0
        self.events.requeued = 0


def _conforms(uow: SqlUnitOfWork) -> "UnitOfWork":
    return uow
