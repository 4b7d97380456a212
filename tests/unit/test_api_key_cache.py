"""The API-key cache: a live key is checked without a database read; any revocation
(here, by change notice from another instance, or seen in the revision on SQLite) empties
it at once; a read that began before a revocation does not put its record back."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.services.api_keys import ApiKeyService, KeyCache
from gateway.services.changes import API_KEYS, ChangeHub
from gateway.services.errors import Unauthorized
from gateway.services.ports import ApiKeyRecord
from tests.support.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class CountingStore:
    """A memory store whose units count the key lookups they make."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.lookups = 0
        self.before_lookup: Callable[[], Any] | None = None

    def unit(self) -> Any:
        unit = self.store.unit(lambda: T0)
        outer = self

        class Counting:
            async def __aenter__(self) -> Any:
                inner = await unit.__aenter__()
                original = inner.api_keys.by_hash

                async def by_hash(digest: str) -> ApiKeyRecord | None:
                    outer.lookups += 1
                    if outer.before_lookup is not None:
                        await outer.before_lookup()
                    return await original(digest)

                inner.api_keys.by_hash = by_hash
                return inner

            async def __aexit__(self, *exc: Any) -> None:
                await unit.__aexit__(*exc)

        return Counting()


def service(store: CountingStore, cache: KeyCache) -> ApiKeyService:
    return ApiKeyService(store.unit, lambda: T0, lambda: "gk_secret", lambda s: "d:" + s,
                         cache=cache)


async def test_a_live_key_is_checked_once_then_from_the_cache() -> None:
    store = CountingStore()
    keys = service(store, KeyCache())
    await keys.create("shop", ["invoices:write"])
    for _ in range(5):
        assert (await keys.authorize("gk_secret", "invoices:write")).name == "shop"
    assert store.lookups == 1


async def test_a_revocation_on_this_instance_takes_effect_at_once() -> None:
    store = CountingStore()
    keys = service(store, KeyCache())
    created = await keys.create("shop", ["invoices:write"])
    await keys.authorize("gk_secret", "invoices:write")
    await keys.revoke(created.record.id)
    with pytest.raises(Unauthorized):
        await keys.authorize("gk_secret", "invoices:write")


async def test_another_instances_notice_empties_the_cache() -> None:
    """Instance b caches the key; instance a revokes it; a's commit notice (published on
    b's hub by the listener) empties b's cache."""
    store = CountingStore()
    hub = ChangeHub()
    cache_b = KeyCache()
    hub.watch(API_KEYS, cache_b.clear)
    a, b = service(store, KeyCache()), service(store, cache_b)
    created = await a.create("shop", ["invoices:write"])
    await b.authorize("gk_secret", "invoices:write")
    await a.revoke(created.record.id)
    assert (await b.authorize("gk_secret", "invoices:write")).name == "shop"  # no notice yet
    hub.publish([API_KEYS])
    with pytest.raises(Unauthorized):
        await b.authorize("gk_secret", "invoices:write")


async def test_a_lost_notice_channel_empties_the_cache_too() -> None:
    hub = ChangeHub()
    cache = KeyCache()
    hub.watch(API_KEYS, cache.clear)
    record = ApiKeyRecord("key_1", "shop", frozenset({"invoices:read"}), T0)
    cache.put("d", record, cache.epoch)
    hub.publish(["invoice:inv_1"])
    assert cache.get("d") is record
    hub.publish(["*"])  # the listener reconnected: notices may have been missed
    assert cache.get("d") is None


async def test_a_read_begun_before_a_revocation_does_not_refill_the_cache() -> None:
    store = CountingStore()
    cache = KeyCache()
    keys = service(store, cache)
    await keys.create("shop", ["invoices:write"])
    reading, revoked = asyncio.Event(), asyncio.Event()

    async def stall() -> None:
        reading.set()
        await revoked.wait()

    store.before_lookup = stall
    # The check's read is under way when the cache is emptied (as a revocation's notice
    # does): what that read returns must not be kept.
    check = asyncio.create_task(keys.authorize("gk_secret", "invoices:write"))
    await reading.wait()
    cache.clear()
    revoked.set()
    await check
    store.before_lookup = None
    await keys.authorize("gk_secret", "invoices:write")
    assert store.lookups == 2  # the read from before the emptying was not kept


def test_a_changed_revision_empties_the_cache() -> None:
    revision = [0]
    cache = KeyCache(revision=lambda: revision[0])
    record = ApiKeyRecord("key_1", "shop", frozenset({"invoices:read"}), T0)
    assert cache.get("d") is None
    cache.put("d", record, cache.epoch)
    assert cache.get("d") is record
    revision[0] = 1  # another process revoked a key
    assert cache.get("d") is None


def test_entries_lapse_and_the_oldest_goes_first() -> None:
    now = [0.0]
    cache = KeyCache(size=2, max_age=60, clock=lambda: now[0])
    records = [ApiKeyRecord(f"key_{i}", "k", frozenset(), T0) for i in range(3)]
    for i, record in enumerate(records):
        cache.put(f"d{i}", record, cache.epoch)
    assert [cache.get(f"d{i}") for i in range(3)] == [None, records[1], records[2]]
    now[0] = 60.0
    assert cache.get("d1") is None
    revoked = ApiKeyRecord("key_9", "k", frozenset(), T0, revoked_at=T0)
    cache.put("d9", revoked, cache.epoch)
    assert cache.get("d9") is None  # only live keys are kept
