"""Several `gateway serve` processes on one PostgreSQL database."""

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.databases import fresh_database
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import Api, GatewayProcess, Receiver, gateway_env, run_cli


@dataclass
class Cluster:
    db_url: str
    env: dict[str, str]
    processes: list[GatewayProcess]
    key: str
    http: aiohttp.ClientSession
    receiver: Receiver
    secrets: set[str] = field(default_factory=set)

    def api(self, i: int) -> Api:
        return Api(self.processes[i].base, self.http)

    async def scalar(self, sql: str) -> Any:
        engine = create_async_engine(self.db_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    async def column(self, sql: str) -> list[Any]:
        engine = create_async_engine(self.db_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(sql))).scalars())
        finally:
            await engine.dispose()


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, pg_url: str, litecoin: LitecoinRegtest, tmp_path: Path
) -> AsyncIterator[Cluster]:
    count = request.param
    env = gateway_env(pg_url, litecoin, 0, GATEWAY_SERVER__LOG_LEVEL="INFO")
    created = run_cli(env, "apikey", "create", "--name", "load", "--scope", "invoices:write",
                      "--scope", "invoices:read", "--scope", "webhooks:manage")
    assert created.returncode == 0, created.stderr
    processes = [GatewayProcess({**env, "GATEWAY_SERVER__PORT": str(free_port()),
                                 "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{free_port()}"},
                                tmp_path / f"instance-{i}.log") for i in range(count)]
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    receiver = await Receiver().start()
    try:
        for p in processes:
            await p.start()
        yield Cluster(pg_url, env, processes, created.stdout.strip(), http, receiver,
                      {created.stdout.strip()})
    finally:
        for p in processes:
            await p.stop()
        await receiver.stop()
        await http.close()


async def make_invoices(cluster: Cluster, instance: int, account_id: str, n: int
                        ) -> list[dict[str, Any]]:
    api = cluster.api(instance)
    gate = asyncio.Semaphore(12)

    async def one() -> dict[str, Any]:
        async with gate:
            return await api.ok("POST", "/v1/invoices", {
                "account_id": account_id, "price": {"amount": "0.80", "currency": "EUR"},
                "coin": "LTC"}, cluster.key)

    return list(await asyncio.gather(*(one() for _ in range(n))))


@pytest.mark.parametrize("cluster", [2], indirect=True)
async def test_two_processes_never_share_an_address(cluster: Cluster) -> None:
    account = await cluster.api(0).ok("POST", "/v1/accounts", {
        "email": "load@example.org", "password": "load password 1"})
    both = await asyncio.gather(*(make_invoices(cluster, i, account["id"], 500)
                                  for i in range(2)))
    invoices = [inv for batch in both for inv in batch]
    assert len(invoices) == 1000
    assert len({inv["address"] for inv in invoices}) == 1000
    assert await cluster.scalar(
        "SELECT count(DISTINCT derivation_index) FROM invoices") == 1000
    assert await cluster.scalar("SELECT max(derivation_index) FROM invoices") == 999


def lock_taken_at(process: GatewayProcess, name: str) -> list[float]:
    times = []
    for line in process.log().splitlines():
        if f"{name}: this instance took the lock" in line:
            stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line)
            assert stamp
            times.append(datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


@pytest.mark.parametrize("cluster", [3], indirect=True)
async def test_watcher_failover_with_300_paid_invoices(
    cluster: Cluster, litecoin: LitecoinRegtest
) -> None:
    endpoint = await cluster.api(0).ok("POST", "/v1/webhook-endpoints",
                                       {"url": cluster.receiver.url}, cluster.key)
    cluster.secrets.add(endpoint["secret"])
    accounts = [await cluster.api(i % 3).ok("POST", "/v1/accounts", {
        "email": f"load{i}@example.org", "password": "load password 1"}) for i in range(30)]
    batches = await asyncio.gather(*(make_invoices(cluster, i % 3, a["id"], 10)
                                     for i, a in enumerate(accounts)))
    invoices = [inv for batch in batches for inv in batch]
    assert len({inv["address"] for inv in invoices}) == 300

    # Exactly one instance runs the LTC watcher.
    deadline = time.monotonic() + 15
    while True:
        leaders = [i for i, p in enumerate(cluster.processes)
                   if lock_taken_at(p, "gateway:watcher:LTC")]
        if leaders:
            break
        assert time.monotonic() < deadline, "no instance took the watcher lock"
        await asyncio.sleep(0.2)
    assert len(leaders) == 1
    [leader] = leaders

    # Pay all 300 in one transaction; once the leader has seen it in the mempool, kill
    # it before it can confirm anything.
    litecoin.rpc("sendmany", "", {inv["address"]: str(Decimal(inv["amount_due"]))
                                  for inv in invoices}, wallet=litecoin.wallet)
    deadline = time.monotonic() + 20
    while not await cluster.scalar("SELECT count(*) FROM payments"):
        assert time.monotonic() < deadline, "the leader never recorded the payment"
        await asyncio.sleep(0.1)
    killed_at = time.time()
    await cluster.processes[leader].kill()
    litecoin.mine(3)

    deadline = time.monotonic() + 20
    while True:
        takeovers = [t for i, p in enumerate(cluster.processes) if i != leader
                     for t in lock_taken_at(p, "gateway:watcher:LTC")]
        if takeovers:
            break
        assert time.monotonic() < deadline, "no instance took over the watcher"
        await asyncio.sleep(0.2)
    assert min(takeovers) - killed_at < 10, "takeover took 10 s or more"

    deadline = time.monotonic() + 120
    while (await cluster.scalar("SELECT count(*) FROM invoices WHERE status = 'settled'")
           ) < 300:
        assert time.monotonic() < deadline, "not every invoice settled"
        await asyncio.sleep(0.5)
    assert await cluster.scalar("SELECT count(*) FROM payments") == 300

    event_ids = await cluster.column("SELECT id FROM events")
    deadline = time.monotonic() + 120
    while True:
        received = Counter(d.headers["webhook-id"] for d in cluster.receiver.deliveries)
        missing = [e for e in event_ids if e not in received]
        if not missing:
            break
        assert time.monotonic() < deadline, f"{len(missing)} events never delivered"
        await asyncio.sleep(0.5)
    types = Counter(d.type for d in cluster.receiver.deliveries)
    assert types["invoice.settled"] >= 300 and types["account.activated"] >= 30
    duplicates = sum(n - 1 for n in received.values())
    # Only deliveries the killed worker held may arrive twice: it claims at most twice its
    # per-endpoint concurrency ahead (sent, their results not yet written), so that many.
    from gateway.config import WebhooksConfig

    assert duplicates <= 2 * WebhooksConfig().per_endpoint_concurrency
    assert len(set(await cluster.column("SELECT id FROM events WHERE type = 'invoice.settled'"))
               ) == 300
