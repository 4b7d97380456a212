"""The shared base every area is built on: settings, clock, keys, the database and its
units of work, the credentials checks, and the metrics registry."""

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from chains.base import Follower
from gateway.adapters.common_passwords import CommonPasswords
from gateway.adapters.db.engine import dispose, make_engine
from gateway.adapters.db.key_revisions import SqliteRevocations, revocations
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.metrics import Metrics
from gateway.adapters.passwords import Argon2Passwords, HashCost, default_concurrency
from gateway.adapters.totp import PyotpCodes
from gateway.bootstrap.resources import Resource
from gateway.config import Settings
from gateway.domain.throttle import ThrottlePolicy
from gateway.i18n import Catalogs
from gateway.services.api_keys import KeyCache
from gateway.services.attempts import Attempts
from gateway.services.changes import API_KEYS, ChangeHub
from gateway.services.ports import UnitOfWorkFactory

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Keys:
    """The configured secrets, decoded once."""

    session: bytes
    index: bytes
    data: list[tuple[str, bytes]]

    @classmethod
    def of(cls, settings: Settings) -> "Keys":
        sec = settings.security
        return cls(base64.b64decode(sec.session_key.get_secret_value()),
                   base64.b64decode(sec.index_key.get_secret_value()),
                   sec.data_key_list())


@dataclass(frozen=True)
class Overrides:
    """What tests may inject into `build`: followers (a fake family's, say), a clock,
    a unit-of-work factory, a cheaper password hash (where no test measures hashing)."""

    chains: Sequence[Follower] | None = None
    clock: Clock | None = None
    uow: UnitOfWorkFactory | None = None
    hash_cost: HashCost | None = None


class Doorbell:
    """A wake-up the unit of work rings after a commit, for a worker an area builds
    after it (the delivery worker, the mail sender)."""

    def __init__(self) -> None:
        self._hooks: list[Callable[[], None]] = []

    def connect(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def ring(self) -> None:
        for hook in self._hooks:
            hook()


@dataclass(frozen=True, kw_only=True)
class Core:
    settings: Settings
    clock: Clock
    keys: Keys
    engine: AsyncEngine
    allocator: AsyncEngine | None  # PostgreSQL: derivation indexes' own pool
    cipher: FieldCipher
    index: BlindIndex
    metrics: Metrics
    changes: ChangeHub  # open checkout streams wait on it
    make_uow: UnitOfWorkFactory  # what the services use: an `Overrides.uow` if injected
    reader: UnitOfWorkFactory  # reads only (the override's, if injected)
    sql_uow: Callable[[], SqlUnitOfWork]  # the database's own, which an override may wrap
    # The watcher's: first in the queue for SQLite's one writer (`adapters/db/turn.py`).
    watcher_uow: UnitOfWorkFactory
    catalogs: Catalogs  # every language's compiled messages (pages, answers, mails)
    deliveries: Doorbell = field(default_factory=Doorbell)
    mail: Doorbell = field(default_factory=Doorbell)
    # Every request's API key check, emptied by revocations (here, by notice, or seen in
    # `revocations` on SQLite).
    key_cache: KeyCache = field(default_factory=KeyCache)
    revocations: SqliteRevocations | None = None

    def resources(self) -> list[Resource]:
        out = [Resource("database", lambda: dispose(self.engine))]
        if self.revocations is not None:
            out.append(Resource("revocation check", self.revocations.aclose))
        if self.allocator is not None:
            out.append(Resource("allocator pool", self.allocator.dispose))
        return out


def build_core(settings: Settings, clock: Clock, overrides: Overrides) -> Core:
    """Opens no connection (they open on first use); reads the compiled catalogs."""
    keys = Keys.of(settings)
    engine = make_engine(settings.database.url, hide_parameters=True)
    # PostgreSQL: derivation indexes come from a pool of their own (SqlInvoices.allocate).
    allocator = (make_engine(settings.database.url, hide_parameters=True, pool_size=1,
                             max_overflow=3)
                 if engine.dialect.name == "postgresql" else None)
    cipher = FieldCipher(keys.data, read_legacy=settings.security.read_legacy_ciphertexts)
    index = BlindIndex(keys.index)
    changes = ChangeHub()
    deliveries, mail = Doorbell(), Doorbell()
    revoked = revocations(settings.database.url)
    key_cache = KeyCache(revision=revoked)
    changes.watch(API_KEYS, key_cache.clear)

    def sql_uow() -> SqlUnitOfWork:
        # Billing queues its reminder mail inside its own transactions.
        return SqlUnitOfWork(engine, cipher, on_events=deliveries.ring, clock=clock,
                             mail_index=index, on_mail=mail.ring, allocator=allocator,
                             on_change=changes.publish)

    def watcher_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher, on_events=deliveries.ring, clock=clock,
                             mail_index=index, on_mail=mail.ring, allocator=allocator,
                             on_change=changes.publish, urgent=True)

    def sql_reader() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, cipher, read_only=True, clock=clock)

    return Core(settings=settings, clock=clock, keys=keys, engine=engine,
                allocator=allocator, cipher=cipher, index=index, metrics=Metrics(),
                changes=changes, make_uow=overrides.uow or sql_uow,
                reader=overrides.uow or sql_reader, sql_uow=sql_uow,
                watcher_uow=overrides.uow or watcher_uow,
                catalogs=Catalogs.load(), deliveries=deliveries, mail=mail,
                key_cache=key_cache, revocations=revoked)


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Password hashing, TOTP codes and the one policy for every failure counter:
    logins, logged-in password checks and the per-account second-factor counter
    (gateway.services.attempts)."""

    passwords: Argon2Passwords
    codes: PyotpCodes
    throttle: ThrottlePolicy
    attempts: Attempts
    common: CommonPasswords

    def resources(self) -> list[Resource]:
        return [Resource("password hashing", self._close)]

    async def _close(self) -> None:
        self.passwords.close()


def build_credentials(settings: Settings, clock: Clock,
                      cost: HashCost | None = None) -> Credentials:
    sec = settings.security
    cost = cost or HashCost()
    throttle = ThrottlePolicy(
        free_failures=sec.login_free_failures,
        max_delay=timedelta(seconds=sec.login_max_delay_seconds),
        max_failures_per_window=sec.login_failures_per_hour,
    )
    return Credentials(
        passwords=Argon2Passwords(time_cost=cost.time_cost, memory_kib=cost.memory_kib,
                                  parallelism=cost.parallelism,
                                  concurrency=sec.hash_concurrency or default_concurrency(),
                                  max_waiting=sec.hash_max_waiting,
                                  max_wait_seconds=sec.hash_max_wait_seconds),
        codes=PyotpCodes(), throttle=throttle, attempts=Attempts(throttle, clock),
        common=CommonPasswords())
