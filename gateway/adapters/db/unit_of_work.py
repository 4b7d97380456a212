import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db import notify
from gateway.adapters.db.accounts import SqlAccounts, SqlApiKeys, SqlSessions
from gateway.adapters.db.audit import SqlAuditLog
from gateway.adapters.db.billing import SqlBilling
from gateway.adapters.db.cash_tokens import SqlCashTokens
from gateway.adapters.db.chain_state import SqlCursors
from gateway.adapters.db.credit import SqlCreditLedger
from gateway.adapters.db.engine import (
    inline_connection,
    inline_engine,
    read_only,
    write_turn,
    writer,
)
from gateway.adapters.db.idempotency import SqlIdempotency
from gateway.adapters.db.invoices import SqlInvoices, SqlPayments
from gateway.adapters.db.ledger import SqlLedger
from gateway.adapters.db.legal import SqlLegalRegister
from gateway.adapters.db.personal import SqlPersonalRecords
from gateway.adapters.db.refund_watches import SqlRefundWatches
from gateway.adapters.db.refunds import SqlRefunds
from gateway.adapters.db.retention import SqlRetention
from gateway.adapters.db.security_log import SqlSecurityLog
from gateway.adapters.db.staff import SqlStaff
from gateway.adapters.db.throttle import SqlThrottle
from gateway.adapters.db.vouchers import SqlVouchers
from gateway.adapters.db.webhooks import SqlEndpoints, SqlEvents, SqlOutbox
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.mail_queue import SqlMailOutbox
from gateway.domain.invoices import Invoice
from gateway.services.changes import API_KEYS, feed_key, invoice_key
from gateway.services.ports import HasEvents, UnitOfWork


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlUnitOfWork:
    """One transaction. Leaving the block without `commit()` rolls everything back.
    `read_only`: for reads only; on SQLite it then takes no lock (and waits for no
    writer), on PostgreSQL it is a READ ONLY transaction. A writing unit takes this
    process's turn to write (SQLite: one at a time, see `engine.write_turn`) and then
    SQLite's write lock (BEGIN IMMEDIATE) for its whole life, so keep it short and never
    open another writing unit inside one.

    Repositories hand every aggregate they add or save to `collect`; at commit the
    events those aggregates recorded go to the outbox, in the same transaction. No
    service publishes an event itself."""

    accounts: SqlAccounts
    sessions: SqlSessions
    api_keys: SqlApiKeys
    invoices: SqlInvoices
    payments: SqlPayments
    cursors: SqlCursors
    endpoints: SqlEndpoints
    outbox: SqlOutbox
    idempotency: SqlIdempotency
    events: SqlEvents
    throttle: SqlThrottle
    security_log: SqlSecurityLog
    retention: SqlRetention
    audit: SqlAuditLog
    ledger: SqlLedger
    staff: SqlStaff
    billing: SqlBilling
    personal: SqlPersonalRecords
    legal: SqlLegalRegister
    mail: SqlMailOutbox
    refunds: SqlRefunds
    credit: SqlCreditLedger
    refund_watches: SqlRefundWatches
    vouchers: SqlVouchers
    cash_tokens: SqlCashTokens

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: FieldCipher,
        *,
        on_events: Callable[[], None] | None = None,
        read_only: bool = False,
        clock: Callable[[], datetime] = _utcnow,
        mail_index: BlindIndex | None = None,
        on_mail: Callable[[], None] | None = None,
        allocator: AsyncEngine | None = None,
        on_change: Callable[[set[str]], None] | None = None,
        urgent: bool = False,
    ) -> None:
        # With the blind index, mail can be queued inside the transaction (billing).
        self._mail_index = mail_index
        self._on_mail = on_mail
        self._on_change = on_change  # the keys of what a commit changed (ChangeHub)
        self._engine = engine
        self._allocator = allocator
        self._clock = clock
        self._collected: list[HasEvents] = []
        self._cipher = cipher
        self._on_events = on_events
        self._read_only = read_only
        # The watcher's units: first in the queue for the turn to write (`turn.WriteTurn`).
        self._urgent = urgent
        self._conn: AsyncConnection | None = None
        self._turn: contextlib.AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> Self:
        inline = inline_engine(self._engine)
        if not self._read_only:
            turn = write_turn(self._engine, self._urgent)
            await turn.__aenter__()
            self._turn = turn
        try:
            if inline is not None:
                self._start(cast(AsyncConnection, await inline_connection(
                    inline, write=not self._read_only)))
                return self
            conn = await self._engine.connect()
            try:
                if self._read_only:
                    await read_only(conn)
                else:
                    await writer(conn)
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            await self._release_turn()
            raise
        self._start(conn)
        return self

    def _start(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._collected = []
        for name in _REPOSITORIES:  # made on first use (`__getattr__`), for this connection
            self.__dict__.pop(name, None)

    @property
    def _live(self) -> AsyncConnection:
        assert self._conn is not None
        return self._conn

    def __getattr__(self, name: str) -> Any:
        """A repository, made the first time the unit uses it: a request's read uses one
        of the 25 (making all of them was a tenth of a read's time)."""
        make = _REPOSITORIES.get(name)
        if make is None or self.__dict__.get("_conn") is None:
            raise AttributeError(name)
        repo = make(self)
        self.__dict__[name] = repo
        return repo

    async def __aexit__(
        self, _et: type[BaseException] | None, ev: BaseException | None,
        _tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._conn = None
                await self._release_turn()

    async def _release_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            await turn.__aexit__(None, None, None)

    def _changes(self, collected: list[HasEvents]) -> set[str]:
        keys = {invoice_key(a.id) for a in collected if isinstance(a, Invoice)}
        made = self.__dict__
        if "payments" in made:
            keys.update(invoice_key(i) for i in self.payments.touched)
            self.payments.touched = set()
        if "cursors" in made:
            keys.update(feed_key(f) for f in self.cursors.changed)
            self.cursors.changed = set()
        if "api_keys" in made and self.api_keys.revoked:
            keys.add(API_KEYS)
            self.api_keys.revoked = False
        return keys

    def collect(self, aggregate: HasEvents) -> None:
        if not any(a is aggregate for a in self._collected):
            self._collected.append(aggregate)

    async def commit(self) -> None:
        assert self._conn is not None
        collected, self._collected = self._collected, []
        events = [event for aggregate in collected for event in aggregate.events]
        if events:
            await self.outbox.publish(events, self._clock())
        changes = self._changes(collected)
        if changes and self._conn.dialect.name == "postgresql":
            await notify.send(self._conn, changes)  # other instances, if this commits
        await self._conn.commit()
        for aggregate in collected:
            aggregate.events.clear()
        self._committed(changes)

    def _committed(self, changes: set[str]) -> None:
        """After a commit: wake who waits on what it wrote (the change hub, the webhook
        worker, the mail sender), and start counting afresh: anything after commit runs
        in a fresh transaction, begun when first used."""
        if changes and self._on_change is not None:
            self._on_change(changes)
        if (self._taken("outbox", "published") + self._taken("events", "requeued")
                and self._on_events is not None):
            self._on_events()
        if (self._taken("billing", "mailed") + self._taken("mail", "queued")
                and self._on_mail is not None):
            self._on_mail()

    def _taken(self, repository: str, counter: str) -> int:
        """A repository's counter, reset to 0; 0 for a repository this unit never used."""
        repo = self.__dict__.get(repository)
        if repo is None:
            return 0
        value: int = getattr(repo, counter)
        setattr(repo, counter, 0)
        return value


_REPOSITORIES: dict[str, Callable[[SqlUnitOfWork], Any]] = {
    "accounts": lambda u: SqlAccounts(u._live, u._cipher, u.collect),
    "sessions": lambda u: SqlSessions(u._live),
    "api_keys": lambda u: SqlApiKeys(u._live),
    "invoices": lambda u: SqlInvoices(u._live, u.collect, u._allocator),
    "payments": lambda u: SqlPayments(u._live),
    "cursors": lambda u: SqlCursors(u._live),
    "endpoints": lambda u: SqlEndpoints(u._live, u._cipher),
    "outbox": lambda u: SqlOutbox(u._live),
    "idempotency": lambda u: SqlIdempotency(u._live),
    "events": lambda u: SqlEvents(u._live),
    "throttle": lambda u: SqlThrottle(u._live),
    "security_log": lambda u: SqlSecurityLog(u._live, u._cipher),
    "retention": lambda u: SqlRetention(u._live),
    "audit": lambda u: SqlAuditLog(u._live, u._cipher),
    "ledger": lambda u: SqlLedger(u._live),
    "staff": lambda u: SqlStaff(u._live, u._cipher),
    "billing": lambda u: SqlBilling(u._live, u._cipher, u._mail_index),
    "personal": lambda u: SqlPersonalRecords(u._live),
    "legal": lambda u: SqlLegalRegister(u._live, u._cipher),
    "mail": lambda u: SqlMailOutbox(u._live, u._cipher, u._mail_index),
    "refunds": lambda u: SqlRefunds(u._live, u._cipher),
    "credit": lambda u: SqlCreditLedger(u._live),
    "refund_watches": lambda u: SqlRefundWatches(u._live, u._cipher, u._mail_index),
    "vouchers": lambda u: SqlVouchers(u._live),
    "cash_tokens": lambda u: SqlCashTokens(u._live, u._cipher),
}


def _conforms(uow: SqlUnitOfWork) -> "UnitOfWork":
    return uow
