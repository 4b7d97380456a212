"""P3, HTTP: `gateway serve` (one process, coins of the fake family so no node is needed)
on SQLite and on PostgreSQL, loaded with 64 connections: `POST /v1/invoices` and
`GET /v1/invoices/{id}`, each beside a bare aiohttp endpoint (own process, same load
generator, same connections) measured in the same run, interleaved.
Run: `make bench` or `.venv/bin/python bench/api_http.py [--seconds S] [--repeats N]
[--only sqlite|postgresql]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from http_load import Load, median_load, run_load  # noqa: E402

CONNECTIONS = 64
GOAL_CREATE_RATE = 1500.0
GOAL_CREATE_P99 = 50.0
GOAL_GET_RATIO = 0.5
GOAL_GET_P99 = 20.0

BARE = """
import sys
from aiohttp import web

async def post(request):
    body = await request.json()
    return web.json_response({"id": "inv_x", **body}, status=201)

async def get(request):
    return web.json_response({"id": request.match_info["id"], "status": "new"})

app = web.Application()
app.router.add_post("/v1/invoices", post)
app.router.add_get("/v1/invoices/{id}", get)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Target:
    def __init__(self, base: str, key: str | None, account: str) -> None:
        self.base = base
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.body = json.dumps({"account_id": account, "coin": "FAK",
                                "price": {"amount": "8.00", "currency": "EUR"}}).encode()
        self.invoice_id = "inv_x"

    def create(self, _i: int) -> tuple[str, str, bytes | None]:
        return "POST", f"{self.base}/v1/invoices", self.body

    def get(self, _i: int) -> tuple[str, str, bytes | None]:
        return "GET", f"{self.base}/v1/invoices/{self.invoice_id}", None


def row(what: str, gw: Load, bare: Load) -> str:
    return (f"| {what:<34} | {gw.rate:7.0f} | {gw.p50_ms:7.1f} | {gw.p99_ms:7.1f} | "
            f"{bare.rate:7.0f} | {bare.p99_ms:6.1f} | {gw.rate / bare.rate:5.3f} |")


async def measure(db: str, seconds: float, repeats: int, tmp: Path) -> tuple[Load, Load,
                                                                            Load, Load]:
    from sqlalchemy import text

    from tests.support.databases import fresh_database
    from tests.support.fake_gateway import fake_env
    from tests.support.nodes import free_port
    from tests.support.stack import GatewayProcess, run_cli

    with fresh_database(db, tmp) as url:
        port, bare_port = free_port(), free_port()
        env = fake_env(url, "bench-node", ("FAK",),
                       GATEWAY_SERVER__PORT=str(port),
                       GATEWAY_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
                       GATEWAY_SERVER__METRICS_LISTEN=f"127.0.0.1:{free_port()}",
                       GATEWAY_COINS__FAK__POLL_INTERVAL_SECONDS="1",
                       GATEWAY_INVOICES__MAX_OPEN_PER_ACCOUNT="1000")
        created = run_cli(env, "apikey", "create", "--name", "bench", "--scope",
                          "invoices:write", "--scope", "invoices:read")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        await add_account(env, "acc_bench")
        gateway = await GatewayProcess(env, tmp / f"gateway-{db}.log").start()
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)])  # noqa: ASYNC220
        try:
            wait_port(bare_port)
            gw = Target(gateway.base, key, "acc_bench")
            base = Target(f"http://127.0.0.1:{bare_port}", None, "acc_bench")
            first = await run_load(gw.create, 1, 0.5, gw.headers)  # warm-up
            assert first.statuses.keys() == {201}, (first.statuses, gateway.log()[-2000:])
            async with EngineConnect(url) as conn:
                gw.invoice_id = (await conn.execute(text(
                    "SELECT id FROM invoices LIMIT 1"))).scalar_one()
            runs: dict[str, list[Load]] = {"create": [], "bare_create": [], "get": [],
                                           "bare_get": []}
            for _ in range(repeats):
                runs["bare_create"].append(
                    await run_load(base.create, CONNECTIONS, seconds, base.headers))
                runs["create"].append(
                    await run_load(gw.create, CONNECTIONS, seconds, gw.headers))
                runs["bare_get"].append(
                    await run_load(base.get, CONNECTIONS, seconds, base.headers))
                runs["get"].append(await run_load(gw.get, CONNECTIONS, seconds, gw.headers))
            for name, loads in runs.items():
                bad = {s: n for load in loads for s, n in load.statuses.items()
                       if s not in (200, 201)}
                if bad:
                    print(f"# {db} {name}: unexpected statuses {bad}")
            log = gateway.log()
            if "database is locked" in log:
                print(f"# {db}: 'database is locked' in the gateway log")
            return (median_load(runs["create"]), median_load(runs["bare_create"]),
                    median_load(runs["get"]), median_load(runs["bare_get"]))
        finally:
            bare.terminate()
            bare.wait(10)
            await gateway.stop()


async def add_account(env: dict[str, str], account_id: str) -> None:
    from datetime import UTC, datetime

    from gateway.bootstrap import build
    from gateway.config import load
    from gateway.domain.accounts import Account
    from gateway.services.ports import Profile

    gw = build(load(None, env))
    try:
        async with gw.uow() as uow:
            await uow.accounts.add(Account(account_id, datetime.now(UTC)),
                                   Profile("bench@example.org"), f"idx-{account_id}", "h", "v1")
            await uow.commit()
    finally:
        await gw.aclose()


class EngineConnect:
    def __init__(self, url: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_async_engine(url, poolclass=NullPool)

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        self.conn = await self.engine.connect()
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()
        await self.engine.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    dbs = [args.only] if args.only else ["sqlite", "postgresql"]
    print(f"P3 HTTP: {CONNECTIONS} connections, {args.seconds:.0f} s per run, median of "
          f"{args.repeats} runs, bare aiohttp endpoint interleaved in the same run; "
          f"{os.cpu_count()} CPUs shared by gateway, database and load generator")
    print("| what                               |   req/s | p50 ms  | p99 ms  | bare/s  | "
          "bare99 | ratio |")
    print("|" + "---|" * 7)
    verdicts: list[str] = []
    worst_create = worst_create_p99 = worst_ratio = worst_get_p99 = None
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmpdir:
        for db in dbs:
            create, bare_create, get, bare_get = await measure(db, args.seconds, args.repeats,
                                                               Path(tmpdir))
            print(row(f"POST /v1/invoices, {db}", create, bare_create))
            print(row(f"GET /v1/invoices/{{id}}, {db}", get, bare_get))
            ratio = get.rate / bare_get.rate
            ok = (create.rate >= GOAL_CREATE_RATE and create.p99_ms <= GOAL_CREATE_P99
                  and ratio >= GOAL_GET_RATIO and get.p99_ms <= GOAL_GET_P99)
            verdicts.append("met" if ok else "not met")
            worst_create = min(worst_create or create.rate, create.rate)
            worst_create_p99 = max(worst_create_p99 or 0, create.p99_ms)
            worst_ratio = min(worst_ratio or ratio, ratio)
            worst_get_p99 = max(worst_get_p99 or 0, get.p99_ms)
    verdict = "met" if all(v == "met" for v in verdicts) else "not met"
    measured = (f"create={worst_create:.0f}/s,p99={worst_create_p99:.0f}ms;"
                f"get={worst_ratio:.2f}x,p99={worst_get_p99:.0f}ms")
    goal = "create>=1500/s,p99<=50ms;get>=0.5x,p99<=20ms"
    print(f"RESULT P3 http {measured} {goal} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
