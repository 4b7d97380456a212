"""A minute of steady traffic on SQLite, as a small production site sees it: 32 clients
creating and reading invoices, a load balancer polling /readyz and a monitor scraping
/metrics twice a second, payments every 2 s and a block every 3 s on the real litecoind.
No 5xx; never a second in which no request completes while clients wait; the watcher
never more than 2 blocks behind; every paid invoice's `invoice.settled` delivered within
10 s of the block that gave it its depth. The figures are printed (pytest -s)."""

import asyncio
import json
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Stack, StackFactory

# On SQLite by definition (the acceptance): not run again on PostgreSQL.
pytestmark = [pytest.mark.reliability, pytest.mark.load, pytest.mark.fixed_database]

CLIENTS = 32
LOAD_SECONDS = 60.0
PAY_EVERY = 2.0
BLOCK_EVERY = 3.0
PAY_UNTIL = 45.0  # payments after this would reach their depth after the load
PROBE_EVERY = 0.5
PER_PAYMENT = 4  # invoices paid in each payment round
CONFIRMATIONS = 3  # gateway_env's LTC requirement
SETTLED_WITHIN = 10.0
MAX_GAP = 1.0
MAX_LAG = 2
PRICE = "0.80"  # EUR: 0.01 LTC at the fixed rate of 80
LOCKED = "database is locked"


@dataclass(repr=False)  # an assertion must not print every request
class Record:
    requests: list[tuple[str, float, float, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)
    blocks: dict[int, float] = field(default_factory=dict)  # height -> when mined
    paid: dict[str, int] = field(default_factory=dict)  # invoice -> height it reaches depth

    def seen(self, what: str, started: float, status: int, body: str) -> None:
        self.requests.append((what, started, time.monotonic(), status))
        if status >= 500 or LOCKED in body:
            self.failures.append(f"{what}: {status} {body[:200]}")

    def latencies(self, what: str) -> list[float]:
        return sorted(end - start for w, start, end, _ in self.requests if w == what)


def pct(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)] if values else float("nan")


async def client(n: int, stack: Stack, owner: str, rec: Record, until: float) -> None:
    rng = random.Random(n)
    auth = {"Authorization": f"Bearer {stack.key}"}
    base = stack.gateway.base
    mine: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                if rng.random() < 0.5 or not mine:
                    async with http.post(f"{base}/v1/invoices", headers=auth, json={
                            "account_id": owner, "coin": "LTC",
                            "price": {"amount": PRICE, "currency": "EUR"}}) as resp:
                        body = await resp.text()
                        rec.seen("create", started, resp.status, body)
                        if resp.status == 201:
                            doc = json.loads(body)
                            mine.append(doc["id"])
                            rec.created.append(doc)
                else:
                    async with http.get(f"{base}/v1/invoices/{rng.choice(mine)}",
                                        headers=auth) as resp:
                        rec.seen("read", started, resp.status, await resp.text())
            except (aiohttp.ClientError, TimeoutError) as exc:
                rec.failures.append(f"client {n}: {type(exc).__name__} after "
                                    f"{time.monotonic() - started:.1f} s")


async def probe(stack: Stack, path: str, rec: Record, until: float) -> None:
    """Twice a second, as a load balancer (/readyz) or a monitor (/metrics) would."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                async with http.get(stack.gateway.ops_url + path) as resp:
                    body = await resp.text()
                    rec.seen(path, started, resp.status, body)
                    if path == "/readyz" and resp.status == 200:
                        rec.lags.append(int(json.loads(body)["chains"]["LTC"]["lag_blocks"]))
            except (aiohttp.ClientError, TimeoutError) as exc:
                rec.failures.append(f"{path}: {type(exc).__name__}")
            await asyncio.sleep(max(PROBE_EVERY - (time.monotonic() - started), 0))


async def chain(stack: Stack, rec: Record, started: float, until: float) -> None:
    """Payments every PAY_EVERY, a block every BLOCK_EVERY, one after the other on one
    task, so each payment is in the next block mined."""
    node = stack.node
    next_pay, next_block = started + PAY_EVERY, started + BLOCK_EVERY
    in_mempool: list[str] = []
    taken: set[str] = set()
    while True:
        now = time.monotonic()
        if next_block >= until and now >= until:
            return
        await asyncio.sleep(max(min(next_pay, next_block) - now, 0))
        if time.monotonic() >= next_pay:
            next_pay += PAY_EVERY
            if time.monotonic() - started < PAY_UNTIL:
                fresh = [i for i in rec.created[-4 * PER_PAYMENT:] if i["id"] not in taken]
                batch = fresh[:PER_PAYMENT]
                if batch:
                    outputs = {i["address"]: str(Decimal(i["amount_due"])) for i in batch}
                    await asyncio.to_thread(node.rpc, "sendmany", "", outputs,
                                            wallet=node.wallet)
                    taken.update(i["id"] for i in batch)
                    in_mempool.extend(i["id"] for i in batch)
        if time.monotonic() >= next_block:
            next_block += BLOCK_EVERY
            [block] = await asyncio.to_thread(node.mine, 1)
            height = int((await asyncio.to_thread(node.rpc, "getblock", block))["height"])
            rec.blocks[height] = time.monotonic()
            for invoice_id in in_mempool:
                rec.paid[invoice_id] = height + CONFIRMATIONS - 1
            in_mempool = []


def settled_at(stack: Stack) -> dict[str, float]:
    """invoice id -> when its first `invoice.settled` reached the receiver."""
    seen: dict[str, float] = {}
    for delivery, at in zip(stack.receiver.attempts, stack.receiver.attempt_times,
                            strict=True):
        if delivery.type == "invoice.settled":
            seen.setdefault(delivery.doc["data"]["invoice_id"], at)
    return seen


async def test_a_minute_of_mixed_traffic_on_sqlite(make_stack: StackFactory) -> None:
    stack = await make_stack("sqlite", process=True,  # the clients must not share its loop
                             GATEWAY_SERVER__LOG_LEVEL="INFO")
    owner = (await stack.signup("soak-owner@example.org"))["id"]
    rec = Record()
    started = time.monotonic()
    until = started + LOAD_SECONDS
    tasks = [asyncio.create_task(client(n, stack, owner, rec, until)) for n in range(CLIENTS)]
    tasks += [asyncio.create_task(probe(stack, p, rec, until)) for p in ("/readyz", "/metrics")]
    tasks.append(asyncio.create_task(chain(stack, rec, started, until)))
    await asyncio.gather(*tasks)
    # The last payments' settlements, each until SETTLED_WITHIN after its depth.
    last_depth = max((rec.blocks.get(h, until) for h in rec.paid.values()), default=until)
    tail = last_depth + SETTLED_WITHIN
    while time.monotonic() < tail and not set(rec.paid) <= set(settled_at(stack)):
        await asyncio.sleep(0.1)
    settled = settled_at(stack)

    ends = sorted(end for what, _, end, _ in rec.requests
                  if what in ("create", "read") and end <= until)
    gaps = [b - a for a, b in zip([started, *ends], ends, strict=False)]
    late = {i: (settled[i] - rec.blocks[h]) if i in settled else None
            for i, h in rec.paid.items() if h in rec.blocks}
    waited = sorted(v for v in late.values() if v is not None)
    log = stack.gateway.log()
    figures = {
        "invoices created": sum(1 for r in rec.requests if r[0] == "create" and r[3] == 201),
        "invoices read": sum(1 for r in rec.requests if r[0] == "read" and r[3] == 200),
        "max gap without a completed request (s)": round(max(gaps, default=0), 3),
        "max watcher lag (blocks)": max(rec.lags, default=None),
        "readyz answers": len(rec.lags),
        "paid invoices": len(rec.paid),
        "settled webhooks within 10 s": sum(1 for v in waited if v <= SETTLED_WITHIN),
        "settled after depth p50/max (s)": (round(pct(waited, 0.5), 2),
                                            round(max(waited, default=0), 2)),
        "webhooks delivered": len(stack.receiver.deliveries),
        "failures": len(rec.failures),
    }
    counts: dict[str, int] = defaultdict(int)
    for w, _, _, s in rec.requests:
        counts[f"{w} {s}"] += 1
    figures["statuses"] = dict(sorted(counts.items()))
    for what in ("create", "read", "/readyz", "/metrics"):
        lat = rec.latencies(what)
        figures[f"{what} p50/p99/max (ms)"] = tuple(
            round(1000 * v, 1) for v in (pct(lat, 0.5), pct(lat, 0.99), max(lat, default=0)))
    print("\nsoak figures:", json.dumps(figures, indent=1))

    failures = rec.failures
    assert not failures, failures[:20]
    assert figures["invoices created"] > 500 and figures["invoices read"] > 500
    assert max(gaps) <= MAX_GAP, f"{max(gaps):.2f} s in which no request completed"
    lags, paid = rec.lags, len(rec.paid)
    assert len(lags) > LOAD_SECONDS  # /readyz answered all along
    assert max(lags) <= MAX_LAG, f"the watcher fell {max(lags)} blocks behind"
    assert paid >= 0.8 * PAY_UNTIL / PAY_EVERY * PER_PAYMENT
    slow = {i: v for i, v in late.items() if v is None or v > SETTLED_WITHIN}
    assert not slow, (f"{len(slow)} of {len(late)} invoice.settled late or missing "
                      f"(s after depth): {dict(list(slow.items())[:5])}")
    assert LOCKED not in log
    assert "watcher failed" not in log
    assert not re.findall(r"(?:GET|POST) \S+ 5\d\d \d", log)  # the access log: no 5xx
