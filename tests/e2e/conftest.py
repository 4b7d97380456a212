import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.bootstrap import Overrides, build
from gateway.config import load
from tests.support.databases import fresh_database
from tests.support.db_bytes import sqlite_bytes
from tests.support.inbox import inbox  # noqa: F401  (a fixture for every e2e module)
from tests.support.inprocess import InProcessGateway
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import Api, GatewayProcess, Receiver, gateway_env

# `make test` runs the e2e and reliability suites once on SQLite and once on PostgreSQL.
DEFAULT_DB = os.environ.get("GATEWAY_TEST_DATABASE", "sqlite")


@dataclass
class Stack:
    gateway: InProcessGateway | GatewayProcess
    api: Api
    key: str
    receiver: Receiver
    endpoint: dict[str, Any]
    node: LitecoinRegtest
    db_url: str
    tmp: Path
    secrets: set[str] = field(default_factory=set)

    async def signup(self, email: str, password: str = "correct horse battery",
                     **extra: Any) -> dict[str, Any]:
        self.secrets.update({email, password})
        return await self.api.ok("POST", "/v1/accounts",
                                 {"email": email, "password": password, **extra})

    async def invoice(self, account_id: str, amount: str = "9.99",
                      metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.api.ok("POST", "/v1/invoices", {
            "account_id": account_id, "price": {"amount": amount, "currency": "EUR"},
            "coin": "LTC", "metadata": metadata or {},
        }, self.key)

    async def read(self, invoice_id: str) -> dict[str, Any]:
        return await self.api.ok("GET", f"/v1/invoices/{invoice_id}", token=self.key)

    async def until(self, invoice_id: str, check: Callable[[dict[str, Any]], bool],
                    what: str, timeout: float = 20) -> dict[str, Any]:
        """Poll the invoice through the API until `check` holds; its last state."""
        deadline = time.monotonic() + timeout
        while True:
            doc = await self.read(invoice_id)
            if check(doc):
                return doc
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {doc}"
            await asyncio.sleep(0.2)

    async def wait_status(self, invoice_id: str, status: str, timeout: float = 20
                          ) -> dict[str, Any]:
        return await self.until(invoice_id, lambda d: d["status"] == status, status, timeout)

    async def login(self, email: str, password: str) -> str:
        status, doc, _ = await self.api.call("POST", "/v1/sessions",
                                             {"email": email, "password": password})
        assert status == 201, doc
        self.secrets.add(doc["token"])
        return str(doc["token"])

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value straight from the database, whichever store this stack runs on."""
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        engine = create_async_engine(self.db_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql), params)).scalar()
        finally:
            await engine.dispose()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        engine = create_async_engine(self.db_url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    async def count(self, table: str) -> int:
        return int(await self.scalar(f"SELECT count(*) FROM {table}"))

    def raw_database(self) -> bytes:
        """The SQLite file and its write-ahead log, as bytes: what a stolen disk shows."""
        return sqlite_bytes(self.db_url)

    def all_secrets(self) -> set[str]:
        return {s for s in self.secrets | self.api.secrets if s}


StackFactory = Callable[..., Awaitable[Stack]]
SCOPES = ("invoices:write", "invoices:read", "personal_data:read", "webhooks:manage",
          "events:read")


async def _provisioning_key(env: dict[str, str]) -> str:
    """The API key a provisioning system holds, made as `gateway apikey create` does."""
    gw = build(load(None, env))
    try:
        key = (await gw.services.api_keys.create("provisioning", list(SCOPES))).secret
    finally:
        await gw.aclose()
    assert key.startswith("gk_")
    return key


@pytest.fixture
async def make_stack(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StackFactory]:
    """A whole gateway on a fresh database (a copy of the migrated template) following the
    session's litecoind, a webhook receiver and an API key. The gateway runs in this
    process (`InProcessGateway`: the real application on a real socket); `process=True`
    runs `gateway serve` as a process instead, for what only a process shows (SIGKILL,
    exit codes). `overrides` (in-process only): a clock, say, so that a test of a schedule
    moves time instead of waiting for it."""
    stacks: list[Stack] = []
    gateways: list[InProcessGateway | GatewayProcess] = []
    receivers: list[Receiver] = []
    cleanups: contextlib.ExitStack = contextlib.ExitStack()
    http = aiohttp.ClientSession()

    async def make(db: str = DEFAULT_DB, script: list[Any] | None = None,
                   event_types: list[str] | None = None, register_endpoint: bool = True,
                   process: bool = False, overrides: Overrides | None = None,
                   **env_extra: str) -> Stack:
        litecoin: LitecoinRegtest = request.getfixturevalue("litecoin")
        db_url = cleanups.enter_context(fresh_database(db, tmp_path))
        env = gateway_env(db_url, litecoin, free_port(), **env_extra)
        key = await _provisioning_key(env)
        log_path = tmp_path / f"gateway-{len(gateways)}.log"
        gateway: InProcessGateway | GatewayProcess = (
            GatewayProcess(env, log_path) if process
            else InProcessGateway(env, log_path, overrides))
        gateways.append(gateway)  # stopped at teardown even if the rest of setup fails
        await gateway.start()
        receiver = await Receiver(script=list(script or [])).start()
        receivers.append(receiver)
        api = Api(gateway.base, http)
        endpoint: dict[str, Any] = {}
        if register_endpoint:
            endpoint = await api.ok("POST", "/v1/webhook-endpoints", {
                "url": receiver.url, "event_types": event_types or [],
            }, key)
        stack = Stack(gateway, api, key, receiver, endpoint, litecoin, db_url, tmp_path,
                      {key, endpoint.get("secret", "")})
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        await http.close()  # first: an open event stream would hold up a graceful stop
        for gateway in gateways:
            await gateway.stop()
        for receiver in receivers:
            await receiver.stop()
        cleanups.close()
    # Across every e2e run: no email, password, session token, API key or webhook secret
    # in the gateway's own output (it runs at DEBUG level).
    for stack in stacks:
        # The privacy policy allows two cookies: the session and the preference cookie.
        assert stack.api.cookie_names <= {"__Host-session", "__Host-pref"}
        log = stack.gateway.log()
        for secret in stack.all_secrets():
            assert secret not in log, "a secret or personal datum reached the gateway log"
