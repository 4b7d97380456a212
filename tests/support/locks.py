"""Helpers for the tests of SQLite's locking: a gateway of the fake family on a real SQLite
file (built as `gateway serve` builds it: reading units read), and a recorder of every
BEGIN its two engines send."""

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import event

from gateway.adapters.db.engine import InlineConnection, holds_write_turn, inline_engine
from gateway.bootstrap import Gateway, build
from gateway.config import load
from gateway.domain.accounts import Account
from gateway.services.ports import Profile
from tests.support import fake_family
from tests.support.databases import fresh_database
from tests.support.fake_gateway import fake_env


@dataclass
class Begins:
    """Every BEGIN either engine sends, and whether a writer held the turn meanwhile."""

    seen: list[tuple[str, bool]] = field(default_factory=list)

    def take(self) -> list[str]:
        got, self.seen = [s for s, _ in self.seen], []
        return got

    def outside_turn(self) -> list[str]:
        return [s for s, held in self.seen if s == "BEGIN IMMEDIATE" and not held]


def record_begins(gw: Gateway) -> Begins:
    begins = Begins()
    turn_of = gw.engine.sync_engine

    def hook(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.strip().upper().startswith("BEGIN"):
            begins.seen.append((statement.strip().upper(), holds_write_turn(turn_of)))

    inline = inline_engine(gw.engine)
    assert inline is not None  # SQLite: units of work run inline
    for target in (gw.engine.sync_engine, inline):
        event.listen(target, "before_cursor_execute", hook)
    return begins


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, **env: str) -> AsyncIterator[Gateway]:
    """The fake node is the follower's: `gw.chains.followers()[0].node`."""
    node_name = f"locks-{uuid4().hex[:8]}"
    fake_family.reset(node_name)
    with fresh_database("sqlite", tmp_path) as url:
        gw = build(load(None, fake_env(url, node_name, **env)))
        try:
            yield gw
        finally:
            await gw.aclose()


async def add_account(gw: Gateway) -> str:
    account_id = f"acc_{uuid4().hex[:12]}"
    async with gw.uow() as uow:
        await uow.accounts.add(Account(account_id, gw.clock()), Profile("x@example.org"),
                               f"idx-{account_id}", "hash", "v1")
        await uow.commit()
    return account_id


@contextlib.asynccontextmanager
async def held_by_another_process(db_url: str) -> AsyncIterator[sqlite3.Connection]:
    """SQLite's write lock held by a connection this gateway does not own, as a CLI
    command's transaction would hold it. Taken in a thread: waiting for it must not stop
    this event loop, which the gateway under test shares."""
    other = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None,
                            check_same_thread=False, timeout=30)
    try:
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


@dataclass
class LoopDbCalls:
    """The longest time each kind of database call held the event loop's thread (the
    inline engine runs on it): a statement, a BEGIN, a commit, a rollback."""

    longest: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def seen(self, kind: str, seconds: float) -> None:
        self.count += 1
        self.longest[kind] = max(self.longest.get(kind, 0.0), seconds)

    def worst(self) -> float:
        return max(self.longest.values(), default=0.0)


def time_loop_db_calls(gw: Gateway, monkeypatch: Any) -> LoopDbCalls:
    calls = LoopDbCalls()
    inline = inline_engine(gw.engine)
    assert inline is not None
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, *_rest: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        calls.seen(statement.split(None, 1)[0].upper(),
                   time.perf_counter() - started.pop(id(cursor)))

    event.listen(inline, "before_cursor_execute", before)
    event.listen(inline, "after_cursor_execute", after)
    for name in ("commit", "rollback"):
        def timed(self: InlineConnection, _name: str = name) -> Any:
            begun = time.perf_counter()
            getattr(self._conn, _name)()
            calls.seen(_name.upper(), time.perf_counter() - begun)

        async def method(self: InlineConnection, _timed: Any = timed) -> None:
            _timed(self)

        monkeypatch.setattr(InlineConnection, name, method)
    return calls
