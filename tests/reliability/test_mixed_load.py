"""100 concurrent clients for 20 s mixing signups, logins, invoice creation, reads and
checkout streams, while a block paying 500 invoices arrives: no 5xx, every 201 has its
row and every row its 201, no `database is locked` in any response or in the log, and
every payment of the block recorded once."""

import asyncio
import random
import re
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import StackFactory

pytestmark = [pytest.mark.reliability, pytest.mark.load]

CLIENTS = 100
SECONDS = 20.0  # the busy block lands a few seconds in; 30 s asserted nothing more
BLOCK_AFTER = 5 * CLIENTS  # answers into the load (a few seconds): the block comes mid-load
BLOCK_PAYMENTS = 500
PRICE = "0.80"  # EUR: 0.01 LTC at the fixed rate of 80
LOCKED = "database is locked"


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []  # 5xx, unexpected statuses, broken connections
        self.invoices: set[str] = set()  # every 201 of POST /v1/invoices
        self.accounts: set[str] = set()  # every 201 of POST /v1/accounts
        self.logins = 0

    def seen(self, what: str, status: int, body: str) -> None:
        self.statuses[(what, status)] += 1
        if status >= 500 or LOCKED in body:
            self.failures.append(f"{what}: {status} {body[:300]}")


async def client(n: int, base: str, key: str, owner: str, tally: Tally,
                 deadline: float) -> None:
    rng = random.Random(n)
    auth = {"Authorization": f"Bearer {key}"}
    mine: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        while time.monotonic() < deadline:
            roll = rng.random()
            try:
                if roll < 0.05:  # a customer signs up, then logs in
                    email = f"load-{n}-{rng.getrandbits(32):x}@example.org"
                    creds = {"email": email, "password": "correct horse battery"}
                    async with http.post(f"{base}/v1/accounts", json=creds) as resp:
                        body = await resp.text()
                        tally.seen("signup", resp.status, body)
                        if resp.status == 201:
                            tally.accounts.add((await resp.json())["id"])
                    async with http.post(f"{base}/v1/sessions", json=creds) as resp:
                        body = await resp.text()
                        tally.seen("login", resp.status, body)
                        tally.logins += resp.status == 201
                elif roll < 0.50 or not mine:  # the merchant creates an invoice
                    async with http.post(f"{base}/v1/invoices", headers=auth, json={
                            "account_id": owner, "coin": "LTC",
                            "price": {"amount": "9.99", "currency": "EUR"}}) as resp:
                        body = await resp.text()
                        tally.seen("create", resp.status, body)
                        if resp.status == 201:
                            invoice_id = (await resp.json())["id"]
                            tally.invoices.add(invoice_id)
                            mine.append(invoice_id)
                elif roll < 0.85:  # and reads one
                    async with http.get(f"{base}/v1/invoices/{rng.choice(mine)}",
                                        headers=auth) as resp:
                        tally.seen("read", resp.status, await resp.text())
                else:  # a customer watches a checkout page for a moment
                    async with http.get(f"{base}/pay/{rng.choice(mine)}/events") as resp:
                        if resp.status != 200:
                            tally.seen("stream", resp.status, await resp.text())
                            continue
                        line = await resp.content.readline()
                        tally.seen("stream", resp.status, "" if line.startswith(
                            b"event: status") else f"first line {line!r}")
                        await asyncio.sleep(rng.uniform(0.2, 1.5))
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.failures.append(f"client {n}: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
async def test_mixed_load_with_a_busy_block(make_stack: StackFactory, db: str) -> None:
    stack = await make_stack(
        db, register_endpoint=False,
        process=True,  # the load comes from this process: the gateway has its own
        GATEWAY_SERVER__LOG_LEVEL="INFO",
        GATEWAY_SECURITY__SIGNUP_PER_IP_PER_HOUR="100000",
        GATEWAY_SECURITY__LOGIN_PER_IP_PER_MINUTE="100000",
        # Signups and logins hash (argon2id) in a bounded pool: let them queue, not shed.
        GATEWAY_SECURITY__HASH_MAX_WAITING="10000",
        GATEWAY_SECURITY__HASH_MAX_WAIT_SECONDS="60",
        GATEWAY_SERVER__EVENT_STREAMS_PER_CLIENT="1000",
        GATEWAY_SERVER__EVENT_STREAMS_TOTAL="1000",
    )
    owner = (await stack.signup(f"owner-{db}@example.org"))["id"]
    accounts_before = {r[0] for r in await stack.rows("SELECT id FROM accounts")}
    sem = asyncio.Semaphore(32)

    async def pay_me() -> dict[str, Any]:
        async with sem:
            return await stack.invoice(owner, amount=PRICE)

    to_pay = await asyncio.gather(*(pay_me() for _ in range(BLOCK_PAYMENTS)))
    before = {i["id"] for i in to_pay}

    tally = Tally()
    started = time.monotonic()
    load = [asyncio.create_task(client(n, stack.gateway.base, stack.key, owner, tally,
                                       started + SECONDS)) for n in range(CLIENTS)]
    while sum(tally.statuses.values()) < BLOCK_AFTER:
        assert time.monotonic() < started + SECONDS, \
            f"the load ended before {BLOCK_AFTER} answers: {dict(tally.statuses)}"
        await asyncio.sleep(0.1)
    outputs = {i["address"]: i["amount_due"] for i in to_pay}
    txid = await asyncio.to_thread(stack.node.rpc, "sendmany", "", outputs,
                                   wallet=stack.node.wallet)
    await asyncio.to_thread(stack.node.mine, 1)
    await asyncio.gather(*load)

    print(dict(tally.statuses))
    assert not tally.failures, tally.failures[:20]
    assert tally.statuses[("create", 201)] > 100 and tally.statuses[("read", 200)] > 100
    assert tally.statuses[("stream", 200)] > 10 and tally.logins > 0
    # Every 201 has its row, every row its 201.
    invoices = {r[0] for r in await stack.rows("SELECT id FROM invoices")}
    assert invoices == before | tally.invoices
    accounts = {r[0] for r in await stack.rows("SELECT id FROM accounts")}
    assert accounts == accounts_before | tally.accounts
    # The block's payments: each recorded once, every invoice it paid processing.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        paid = await stack.scalar(
            "SELECT count(*) FROM payments WHERE txid = :t", t=txid)
        processing = await stack.scalar(
            "SELECT count(*) FROM invoices WHERE status = 'processing'")
        if paid == BLOCK_PAYMENTS and processing >= BLOCK_PAYMENTS:
            break
        await asyncio.sleep(0.5)
    assert paid == BLOCK_PAYMENTS
    assert processing >= BLOCK_PAYMENTS
    log = stack.gateway.log()
    assert LOCKED not in log
    assert not re.findall(r"(?:GET|POST) \S+ 5\d\d \d", log)  # the access log: no 5xx
