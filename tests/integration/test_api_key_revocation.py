"""API keys are checked from a cache, and a revocation still takes effect at once: on
the instance that revokes, and on another instance over the same database (PostgreSQL:
by the revoking commit's NOTIFY; SQLite: by the revocation count, which a CLI command in
another process changes)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.adapters.db import notify
from gateway.services.errors import Unauthorized
from tests.support.fake_gateway import World, fake_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


def count_lookups(world: World) -> list[str]:
    """Every API-key read instance `world` makes from the database from now on."""
    lookups: list[str] = []
    reader = world.gw.core.reader

    @contextlib.asynccontextmanager
    async def counting() -> AsyncIterator[Any]:
        async with reader() as unit:
            by_hash = unit.api_keys.by_hash

            async def counted(digest: str) -> Any:
                lookups.append(digest)
                return await by_hash(digest)

            unit.api_keys.by_hash = counted
            yield unit

    world.gw.services.api_keys._reader = counting  # type: ignore[assignment]
    return lookups


@contextlib.asynccontextmanager
async def listening(url: str, sender: World, receiver: World) -> AsyncIterator[None]:
    """`receiver` hears the other instances' change notices (PostgreSQL), as `serve`
    does; returns once a probe sent by `sender` arrived, so the listener is up."""
    if not url.startswith("postgresql"):
        yield
        return
    heard = asyncio.Event()
    receiver.gw.changes.watch("probe", lambda _keys: heard.set())
    task = asyncio.create_task(notify.listen(url, receiver.gw.changes.publish))
    try:
        async with asyncio.timeout(10):
            while not heard.is_set():
                async with sender.gw.core.engine.begin() as conn:
                    await conn.execute(text("SELECT pg_notify(:c, 'probe')"),
                                       {"c": notify.CHANNEL})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(heard.wait(), 0.2)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_key_is_read_once_and_revoked_at_once_on_this_instance(
    database_url: str, tmp_path: Path, template_dir: Path,
) -> None:
    async with fake_world(tmp_path, template_dir, db_url=database_url) as a:
        keys = a.gw.services.api_keys
        created = await keys.create("shop", ["invoices:read"])
        lookups = count_lookups(a)
        for _ in range(3):
            assert (await keys.authorize(created.secret, "invoices:read")).id == \
                created.record.id
        assert len(lookups) == 1
        await keys.revoke(created.record.id)
        with pytest.raises(Unauthorized):
            await keys.authorize(created.secret, "invoices:read")


async def test_a_revocation_on_another_instance_takes_effect(
    database_url: str, tmp_path: Path, template_dir: Path,
) -> None:
    async with fake_world(tmp_path, template_dir, db_url=database_url) as a, \
            fake_world(tmp_path, template_dir, db_url=database_url) as b, \
            listening(database_url, a, b):
        created = await a.gw.services.api_keys.create("shop", ["invoices:read"])
        other = await a.gw.services.api_keys.create("other", ["invoices:read"])
        on_b = b.gw.services.api_keys
        await on_b.authorize(created.secret, "invoices:read")
        await on_b.authorize(other.secret, "invoices:read")
        lookups = count_lookups(b)
        await on_b.authorize(created.secret, "invoices:read")
        assert lookups == []  # b answers from its cache

        await a.gw.services.api_keys.revoke(created.record.id)
        # SQLite: at the next check. PostgreSQL: once the commit's notice arrived (it
        # is sent in the revoking transaction; delivery takes milliseconds).
        async with asyncio.timeout(5):
            while True:
                try:
                    await on_b.authorize(created.secret, "invoices:read")
                except Unauthorized:
                    break
                assert database_url.startswith("postgresql"), "SQLite: not at once"
                await asyncio.sleep(0.01)
        assert (await on_b.authorize(other.secret, "invoices:read")).name == "other"
