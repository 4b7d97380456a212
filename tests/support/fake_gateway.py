"""The gateway's services wired by `bootstrap.build` on a real SQLite file, with coins of
the fake family (registered through `[families] extra`, like any plug-in): payment
tracker and invoice service tests in milliseconds, no node."""

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import text

from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.bootstrap import Gateway, Overrides, build
from gateway.config import load
from gateway.domain.accounts import Account
from gateway.domain.money import Fiat
from gateway.services.chain_events import Feed
from gateway.services.ports import Profile
from gateway.watcher import ChainWatcher
from tests.support import fake_family
from tests.support.databases import fresh_database
from tests.support.fake_family import FakeFollower, FakeNode
from tests.support.inprocess import QUICK_HASHING
from tests.support.keys import security_env

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fake_env(db_url: str, node: str, coins: tuple[str, ...] = ("FAK",),
             confirmations: int = 3, **extra: str) -> dict[str, str]:
    env = {"GATEWAY_DATABASE__URL": db_url,
           "GATEWAY_FAMILIES__EXTRA": json.dumps(["tests.support.fake_family"]),
           "GATEWAY_RATES__FIXED": json.dumps({f"{c}-EUR": "80.00" for c in coins}),
           # No operations or staff listener unless a test asks: their default ports are
           # fixed, and tests run side by side.
           "GATEWAY_SERVER__METRICS_LISTEN": "", "GATEWAY_STAFF__LISTEN": "",
           **security_env()}
    for coin in coins:
        env |= {f"GATEWAY_COINS__{coin}__KIND": "fake",
                f"GATEWAY_COINS__{coin}__NODE": node,
                f"GATEWAY_COINS__{coin}__SEED": node,
                f"GATEWAY_COINS__{coin}__CONFIRMATIONS": str(confirmations),
                f"GATEWAY_COINS__{coin}__POLL_INTERVAL_SECONDS": "0.001"}
    return env | extra


class Crash(Exception):
    """A crash injected before a commit: the transaction never happened."""


@dataclass
class World:
    gw: Gateway
    node: FakeNode
    follower: FakeFollower
    clock: Clock
    crash_at: set[int] = field(default_factory=set)  # commit numbers that crash
    commits: int = 0
    _task: asyncio.Task[None] | None = None

    @property
    def tracker(self) -> Any:
        return self.gw.services.tracker

    async def account(self) -> str:
        account_id = f"acc_{uuid4().hex[:12]}"
        async with self.gw.sql_uow() as uow:
            await uow.accounts.add(Account(account_id, self.clock()), Profile("x@example.org"),
                                   f"idx-{account_id}", "hash", "v1")
            await uow.commit()
        return account_id

    async def invoice(self, account_id: str, coin: str = "FAK", eur: str = "8.00") -> Any:
        return await self.gw.services.invoices.create(
            account_id, Fiat(int(eur.replace(".", "")), "EUR"), coin)

    async def read(self, invoice_id: str) -> Any:
        return await self.gw.services.invoices.read(invoice_id)

    async def start(self) -> None:
        """The follower loop as `gateway serve` runs it (retrying on a crash from the
        stored cursor), on this world's follower; from the node's tip on its first run,
        as if the gateway had been following the node all along."""
        feed = Feed(self.follower.feed, self.follower.coins)
        if await self.tracker.start_cursor(feed) is None:
            await self.tracker.set_cursor(feed, self.node.tip)
        watcher = ChainWatcher(self.follower, self.tracker,
                               SqlWatchlist(self.gw.engine, self.follower.address_space,
                                            self.gw.core.cipher),
                               retry_delay=0.001)
        self._task = asyncio.create_task(watcher.run())

    async def idle(self, timeout: float = 5.0) -> None:
        """Until the follower has made two full passes over the node with nothing left:
        every change made before the call is processed."""
        async with asyncio.timeout(timeout):
            start = self.follower.passes
            while self.follower.passes < start + 2:
                await asyncio.sleep(0.001)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sql(self, query: str, **params: Any) -> list[Any]:
        async with self.gw.engine.connect() as conn:
            return list((await conn.execute(text(query), params)).all())

    async def event_types(self, invoice_id: str) -> list[str]:
        rows = await self.sql("SELECT type, body FROM events ORDER BY seq")
        return [r.type for r in rows if r.type.startswith("invoice.")
                and json.loads(r.body)["data"].get("invoice_id")
                == invoice_id]


_TEMPLATE: dict[str, Path] = {}


def _template(tmp: Path) -> Path:
    """One migrated SQLite file per test session, copied for each world (milliseconds,
    where migrating takes a second)."""
    if "db" not in _TEMPLATE:
        with fresh_database("sqlite", tmp) as url:
            path = Path(url.split("///", 1)[1])
            keep = tmp / "template.db"
            shutil.copy(path, keep)
        _TEMPLATE["db"] = keep
    return _TEMPLATE["db"]


@contextlib.asynccontextmanager
async def fake_world(tmp: Path, template_dir: Path, coins: tuple[str, ...] = ("FAK",),
                     confirmations: int = 3,
                     db_url: str | None = None, env: dict[str, str] | None = None,
                     **more_env: str) -> AsyncIterator[World]:
    if db_url is None:
        path = tmp / f"world-{uuid4().hex[:8]}.db"
        shutil.copy(_template(template_dir), path)
        db_url = f"sqlite+aiosqlite:///{path}"
    name = f"world-{uuid4().hex[:8]}"
    node = fake_family.reset(name)
    clock = Clock()
    node.clock = clock
    settings = load(None, fake_env(db_url, name, coins, confirmations,
                                   **(env or {}), **more_env))

    def uow() -> Any:
        real = world.gw.sql_uow()
        commit = real.commit

        async def crashing_commit() -> None:
            world.commits += 1
            if world.commits in world.crash_at:
                raise Crash(f"crash before commit {world.commits}")
            await commit()

        real.commit = crashing_commit
        return real

    gw = build(settings, overrides=Overrides(clock=clock, uow=uow, hash_cost=QUICK_HASHING))
    [follower] = gw.chains.followers()
    assert isinstance(follower, FakeFollower)
    world = World(gw, node, follower, clock)
    try:
        yield world
    finally:
        await world.stop()
        await gw.aclose()


@contextlib.contextmanager
def quiet(logger: str = "gateway.watcher") -> Iterator[None]:
    """Injected crashes are logged with a traceback by the watcher; keep the output calm."""
    import logging

    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


Check = Callable[[World], Any]
