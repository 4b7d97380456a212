"""P2, payments per block: `gateway serve` (SQLite; `--postgresql` too) following a real
Litecoin regtest node; N invoices (one customer account each, 1 confirmation), all paid
by one transaction with N outputs, first seen in the mempool, then mined. Measured from
the moment `generatetoaddress` returns: all invoices settled, and every `invoice.settled`
and `account.activated` webhook received by a local receiver; meanwhile a blocking client
in a thread of its own times `GET /healthz` and `GET /v1/invoices/{id}`. Baseline in the
same run: `getblock` (verbosity 2) of that block and its JSON parse.
Run: `make bench` or `.venv/bin/python bench/block.py [N] [--postgresql]`."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from http_load import percentile  # noqa: E402

GOAL_SETTLED = 2.0
GOAL_WEBHOOKS = 5.0
GOAL_P99_MS = 100.0


class Hooks:
    def __init__(self) -> None:
        self.arrived: dict[str, list[float]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        kind = json.loads(body)["type"]
        self.arrived.setdefault(kind, []).append(time.monotonic())
        return web.Response(status=204)

    def count(self, kind: str) -> int:
        return len(self.arrived.get(kind, ()))


def probe(port: int, paths: list[str], stop: threading.Event,
          latencies: dict[str, list[float]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        for path in paths:
            started = time.perf_counter()
            conn.request("GET", path[0], headers=path[1])
            resp = conn.getresponse()
            resp.read()
            latencies[path[0].split("/")[-1] if "healthz" in path[0] else "invoice"].append(
                (time.perf_counter() - started) * 1000)
        stop.wait(0.01)
    conn.close()


async def run(db: str, n: int, tmp: Path) -> dict[str, Any]:
    from tests.support.databases import fresh_database
    from tests.support.nodes import LitecoinRegtest, free_port
    from tests.support.stack import GatewayProcess, gateway_env, run_cli

    node = LitecoinRegtest(tmp / f"litecoin-{db}").start()
    try:
        node.create_wallet("payer")
        node.mine(200)
        with fresh_database(db, tmp) as url:
            port = free_port()
            env = gateway_env(url, node, port, GATEWAY_COINS__LTC__CONFIRMATIONS="1",
                              GATEWAY_SERVER__LOG_LEVEL="INFO",
                              GATEWAY_COINS__LTC__POLL_INTERVAL_SECONDS="0.2",
                              PYTHONPATH=str(ROOT))
            created = run_cli(env, "apikey", "create", "--name", "bench", "--scope",
                              "invoices:write", "--scope", "invoices:read", "--scope",
                              "webhooks:manage")
            assert created.returncode == 0, created.stderr
            key = created.stdout.strip()
            accounts = await add_accounts(env, n)
            gateway = await GatewayProcess(env, tmp / f"gateway-{db}.log").start()
            hooks = Hooks()
            app = web.Application()
            app.router.add_post("/hooks", hooks.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            hook_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", hook_port).start()
            try:
                return await measure(gateway, node, key, accounts, hooks, hook_port, n)
            finally:
                await runner.cleanup()
                await gateway.stop()
                locked = "database is locked" in gateway.log()
                if locked:
                    print(f"# {db}: 'database is locked' in the gateway log")
    finally:
        node.stop()


async def add_accounts(env: dict[str, str], n: int) -> list[str]:
    from datetime import UTC, datetime

    from gateway.bootstrap import build
    from gateway.config import load
    from gateway.domain.accounts import Account
    from gateway.services.ports import Profile

    gw = build(load(None, env))
    ids = [f"acc_bench{i:05d}" for i in range(n)]
    try:
        async with gw.uow() as uow:
            for account_id in ids:
                await uow.accounts.add(Account(account_id, datetime.now(UTC)),
                                       Profile(f"{account_id}@example.org"),
                                       f"idx-{account_id}", "h", "v1")
            await uow.commit()
    finally:
        await gw.aclose()
    return ids


async def measure(gateway: Any, node: Any, key: str, accounts: list[str], hooks: Hooks,
                  hook_port: int, n: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=auth) as http_session:
        async with http_session.post(f"{gateway.base}/v1/webhook-endpoints", json={
                "url": f"http://127.0.0.1:{hook_port}/hooks",
                "event_types": ["invoice.settled", "account.activated"]}) as resp:
            assert resp.status == 201, await resp.text()
        sem = asyncio.Semaphore(32)

        async def invoice(account_id: str) -> dict[str, Any]:
            async with sem, http_session.post(f"{gateway.base}/v1/invoices", json={
                    "account_id": account_id, "coin": "LTC",
                    "price": {"amount": "0.80", "currency": "EUR"}}) as r:
                assert r.status == 201, await r.text()
                return dict(await r.json())

        invoices = await asyncio.gather(*(invoice(a) for a in accounts))
    outputs = {i["address"]: i["amount_due"] for i in invoices}
    await asyncio.to_thread(node.rpc, "sendmany", "", outputs, wallet=node.wallet)
    # Wait until the gateway has seen the payments in the mempool (status processing).
    probe_path = f"/v1/invoices/{invoices[-1]['id']}"
    await wait_status(gateway, auth, [i["id"] for i in invoices[:: max(n // 20, 1)]],
                      "processing", 120)
    latencies: dict[str, list[float]] = {"healthz": [], "invoice": []}
    stop = threading.Event()
    thread = threading.Thread(target=probe, args=(
        gateway.port, [("/healthz", {}), (probe_path, auth)], stop, latencies), daemon=True)
    thread.start()
    await asyncio.sleep(0.5)
    for values in latencies.values():
        values.clear()  # only while the block is handled
    [block_hash] = await asyncio.to_thread(node.mine, 1)
    mined = time.monotonic()
    settled_at = webhooks_at = None
    deadline = mined + 120
    while time.monotonic() < deadline and (settled_at is None or webhooks_at is None):
        if settled_at is None and hooks.count("invoice.settled") >= n:
            settled_at = max(hooks.arrived["invoice.settled"])
        if (webhooks_at is None and hooks.count("invoice.settled") >= n
                and hooks.count("account.activated") >= n):
            webhooks_at = max(hooks.arrived["invoice.settled"]
                              + hooks.arrived["account.activated"])
        await asyncio.sleep(0.02)
    stop.set()
    thread.join(15)
    # When the last invoice settled, by the database (not by its webhook).
    settled_db = await last_settled(gateway, auth, invoices)
    started = time.perf_counter()
    raw = await asyncio.to_thread(node.rpc, "getblock", block_hash, 2)
    json.dumps(raw, default=str)
    baseline = time.perf_counter() - started
    return {
        "settled": settled_db - mined if settled_db else float("inf"),
        "webhooks": (webhooks_at - mined) if webhooks_at else float("inf"),
        "baseline": baseline,
        "healthz_p99": percentile(latencies["healthz"], 0.99),
        "invoice_p99": percentile(latencies["invoice"], 0.99),
        "probes": len(latencies["healthz"]),
    }


async def wait_status(gateway: Any, auth: dict[str, str], ids: list[str], status: str,
                      seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers=auth) as http_session:
        for invoice_id in ids:
            while True:
                async with http_session.get(f"{gateway.base}/v1/invoices/{invoice_id}") as r:
                    if (await r.json())["status"] == status:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{invoice_id} not {status}")
                await asyncio.sleep(0.2)


async def last_settled(gateway: Any, auth: dict[str, str],
                       invoices: list[dict[str, Any]]) -> float | None:
    """The monotonic time the last invoice settled, from its settled_at (UTC wall clock)."""
    from datetime import UTC, datetime

    latest = None
    async with aiohttp.ClientSession(headers=auth) as http_session:
        for inv in invoices:
            async with http_session.get(f"{gateway.base}/v1/invoices/{inv['id']}") as r:
                doc = await r.json()
            if doc["status"] != "settled" or not doc.get("settled_at"):
                return None
            at = datetime.fromisoformat(doc["settled_at"].replace("Z", "+00:00"))
            latest = at if latest is None or at > latest else latest
    assert latest is not None
    return time.monotonic() - (datetime.now(UTC) - latest).total_seconds()


async def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 2000
    dbs = ["sqlite", "postgresql"] if "--postgresql" in sys.argv else ["sqlite"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-block-") as tmpdir:
        for db in dbs:
            results[db] = await run(db, n, Path(tmpdir))
    print(f"P2 payments per block: one regtest Litecoin block paying {n} invoices (one "
          f"transaction, {n} outputs, seen in the mempool first), 1 confirmation; "
          f"{os.cpu_count()} CPUs shared by node, gateway, database and receiver")
    print("| database | all settled s | all webhooks s | getblock+parse s | ratio | "
          "healthz p99 ms | GET invoice p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for db, r in results.items():
        print(f"| {db} | {r['settled']:.2f} | {r['webhooks']:.2f} | {r['baseline']:.3f} | "
              f"{r['settled'] / r['baseline']:.0f} | {r['healthz_p99']:.0f} | "
              f"{r['invoice_p99']:.0f} |")
    worst = {k: max(r[k] for r in results.values())
             for k in ("settled", "webhooks", "healthz_p99", "invoice_p99")}
    met = (worst["settled"] <= GOAL_SETTLED and worst["webhooks"] <= GOAL_WEBHOOKS
           and worst["healthz_p99"] < GOAL_P99_MS and worst["invoice_p99"] < GOAL_P99_MS)
    print(f"RESULT P2 payments-per-block settled={worst['settled']:.1f}s,webhooks="
          f"{worst['webhooks']:.1f}s,p99={max(worst['healthz_p99'], worst['invoice_p99']):.0f}"
          f"ms settled<=2s,webhooks<=5s,p99<100ms {'met' if met else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
