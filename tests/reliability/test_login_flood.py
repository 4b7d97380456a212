"""A login flood from 200 addresses: the pages and the payment path keep working.

Each wrong-password login makes the server hash (argon2id, ~19 MiB, tens of ms of CPU).
The hashes run in a bounded thread pool with a global cap, so the event loop that serves
`/healthz` and the checkout page, follows the chain and delivers webhooks stays free."""

import asyncio
import http.client
import random
import statistics
import threading
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import StackFactory

# The flood is the password hasher's: no database changes what it shows.
pytestmark = [pytest.mark.load, pytest.mark.any_database]

CLIENTS = 200
LOGINS_PER_CLIENT = 3
SPREAD_SECONDS = 12.0  # clients start at random moments in this window
ACCOUNTS = 8
BASELINE_SAMPLES = 40  # per page, before the flood
# The flood may slow the pages this much against that baseline (the hashing threads
# take CPU the pages share on two cores; a loop blocked by hashing would take seconds).
BASELINE_FACTOR = 8
# ... or up to these absolute p95s, whichever is larger. /healthz does nothing but answer
# from the loop: 100 ms. The checkout page also reads the invoice from the database and
# renders a template, and on two cores shares them with the hashing threads and the rest
# of the suite: a second is what a paying customer would still call working (a loop
# frozen by argon2, 50+ hashes of tens of ms each, would take several).
P95_FLOOR_SECONDS = {"/healthz": 0.100, "page": 1.0}
TIMEOUT_SECONDS = 5.0
# A login waits at most this long for a hashing slot before it is refused (503): set here,
# so that the flood's bound below follows from it.
HASH_MAX_WAIT_SECONDS = 5.0
# Each client's logins run one after another, each a wait at the door, a hash and a
# database write: past this, requests were queued without bound (a hang guard derived
# from the door, not a speed target; a loaded machine took 47 s).
FLOOD_BOUND_SECONDS = SPREAD_SECONDS + LOGINS_PER_CLIENT * (HASH_MAX_WAIT_SECONDS + 10)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def measure(port: int, paths: list[str], stop: threading.Event,
            latencies: dict[str, list[float]]) -> None:
    """In a thread of its own, with a blocking client: what a load balancer and a paying
    customer see, never delayed by this test's own event loop."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    while not stop.is_set():
        for path in paths:
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
            except TimeoutError:  # counted as the time waited, then a fresh connection
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
                latencies[path].append(TIMEOUT_SECONDS)
                continue
            latencies[path].append(time.perf_counter() - started)
            assert resp.status == 200, (path, resp.status)
        stop.wait(0.05)
    conn.close()


async def test_login_flood_leaves_pages_and_payments_alone(make_stack: StackFactory) -> None:
    stack = await make_stack(
        process=True,  # the load comes from this process: the gateway has its own
        GATEWAY_SERVER__LOG_LEVEL="INFO",
        # Every wrong password is hashed: no per-email delay gets in the way of the flood.
        GATEWAY_SECURITY__LOGIN_FREE_FAILURES="50",
        GATEWAY_SECURITY__LOGIN_FAILURES_PER_HOUR="100",
        GATEWAY_SECURITY__HASH_MAX_WAIT_SECONDS=str(HASH_MAX_WAIT_SECONDS),
    )
    emails = [f"flood-{i}@example.org" for i in range(ACCOUNTS)]
    accounts = [await stack.signup(email, "the real password 1") for email in emails]
    invoice = await stack.invoice(accounts[0]["id"])
    pay_path = f"/pay/{invoice['id']}"

    statuses: Counter[int] = Counter()
    rng = random.Random(11)

    async def client(n: int) -> None:
        source = f"127.0.{1 + n // 250}.{1 + n % 250}"  # 200 distinct source addresses
        await asyncio.sleep(rng.uniform(0, SPREAD_SECONDS))
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        async with aiohttp.ClientSession(connector=connector) as http_:
            for attempt in range(LOGINS_PER_CLIENT):
                body = {"email": emails[(n + attempt) % ACCOUNTS],
                        "password": f"guess {n}-{attempt}"}
                async with http_.post(f"{stack.gateway.base}/v1/sessions", json=body) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
                    if resp.status == 503:
                        assert int(resp.headers["Retry-After"]) > 0

    # The same pages measured first without the flood, on the machine as the rest of the
    # suite loads it: the bound below is the absolute one, or a multiple of this baseline
    # when the machine alone is slower than that (a ratio measured in the same run, not
    # a timing that another test's CPU can break).
    baseline: dict[str, list[float]] = {"/healthz": [], pay_path: []}
    quiet = threading.Event()
    sampling = asyncio.create_task(asyncio.to_thread(
        measure, stack.gateway.port, list(baseline), quiet, baseline))
    deadline = time.monotonic() + 30
    while min(len(s) for s in baseline.values()) < BASELINE_SAMPLES:
        assert time.monotonic() < deadline, "timed out measuring the baseline"
        await asyncio.sleep(0.05)
    quiet.set()
    await sampling
    limits = {path: max(P95_FLOOR_SECONDS.get(path, P95_FLOOR_SECONDS["page"]),
                        BASELINE_FACTOR * p95(samples))
              for path, samples in baseline.items()}

    latencies: dict[str, list[float]] = {"/healthz": [], pay_path: []}
    stop = threading.Event()
    watcher = asyncio.create_task(asyncio.to_thread(
        measure, stack.gateway.port, list(latencies), stop, latencies))
    started = time.monotonic()
    flood = asyncio.gather(*(client(n) for n in range(CLIENTS)))

    # A customer pays while the flood runs: once a sixth of its logins were answered.
    deadline = time.monotonic() + 60
    while sum(statuses.values()) < CLIENTS * LOGINS_PER_CLIENT // 6:
        assert time.monotonic() < deadline, f"timed out waiting for the flood: {statuses}"
        await asyncio.sleep(0.1)
    txid = await asyncio.to_thread(stack.node.send, invoice["address"], invoice["amount_due"])
    await asyncio.to_thread(stack.node.mine, 3)
    settled: Any = await stack.receiver.wait_for("invoice.settled", timeout=30)
    settled_after = time.monotonic() - started

    await flood
    flood_seconds = time.monotonic() - started
    stop.set()
    await watcher

    assert settled.doc["data"]["invoice_id"] == invoice["id"]
    Webhook(stack.endpoint["secret"]).verify(settled.body, settled.headers)
    assert [p["txid"] for p in (await stack.read(invoice["id"]))["payments"]] == [txid]
    # The flood was real: wrong passwords hashed (401) by the dozen; the rest refused at
    # the door (503 busy, or 429) rather than queued without bound; nothing else.
    assert sum(statuses.values()) == CLIENTS * LOGINS_PER_CLIENT
    assert set(statuses) <= {401, 429, 503}, statuses
    # How many depends on the CPU the rest of the machine leaves the hashing pool: about
    # 130 to 190 of 600 with the suite running beside it, 85 with more beside that. Fifty
    # are still seconds of argon2 that would have frozen the loop had they run on it.
    assert statuses[401] >= 50, statuses
    assert settled_after < flood_seconds, (settled_after, flood_seconds)  # during the flood
    assert flood_seconds < FLOOD_BOUND_SECONDS, flood_seconds
    report = {path: (len(s), round(p95(s) * 1000, 1), round(max(s) * 1000, 1))
              for path, s in latencies.items()}
    bounds = {path: round(limit * 1000, 1) for path, limit in limits.items()}
    print(f"flood {flood_seconds:.1f} s, {dict(statuses)}; (samples, p95 ms, max ms) {report}"
          f"; bounds (ms) {bounds}")
    for path, samples in latencies.items():
        assert len(samples) >= 20, report
        assert p95(samples) < limits[path], (report, f"bounds (ms) {bounds}")
