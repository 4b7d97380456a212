"""The node stopped mid-run, until the watcher has failed three times and backed off
(2 s, 4 s, 8 s): /readyz says so, the gateway keeps serving, the watcher catches up
afterwards and misses no payment. (This module stops its own node: the `litecoin`
fixture is per module.)"""

import asyncio
import time
from typing import Any

from tests.e2e.conftest import Stack, StackFactory

BACKED_OFF = "retrying in 8s"  # the watcher's third failure in a row (2 s, 4 s, 8 s)


async def readiness(stack: Stack) -> tuple[int, dict[str, Any]]:
    async with stack.api.http.get(f"{stack.gateway.ops_url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_node_stopped_while_the_watcher_backs_off(make_stack: StackFactory) -> None:
    stack = await make_stack(process=True)  # the process survives the outage
    node = stack.node
    account = await stack.signup("outage@example.org")
    status, doc = await readiness(stack)
    assert status == 200 and doc["chains"]["LTC"]["status"] == "ok", doc

    # Before the outage: one payment seen and confirmed; two more paid and mined in the
    # last block before the node stops (the watcher may or may not have seen them).
    invoices = [await stack.invoice(account["id"]) for _ in range(5)]
    paid = {invoices[0]["id"]: node.send(invoices[0]["address"], invoices[0]["amount_due"])}
    node.mine(1)
    await stack.wait_status(invoices[0]["id"], "processing")
    for invoice in invoices[1:3]:
        paid[invoice["id"]] = node.send(invoice["address"], invoice["amount_due"])
    node.mine(1)
    node.stop()

    # While it is down: readiness names the chain, the API keeps answering (addresses are
    # derived, not asked of the node), the process stays up.
    deadline = time.monotonic() + 15
    while True:
        status, doc = await readiness(stack)
        if status != 200:
            break
        assert time.monotonic() < deadline, f"/readyz still ready with the node down: {doc}"
        await asyncio.sleep(0.5)
    assert status == 503, (status, doc)
    assert doc["chains"]["LTC"]["status"].startswith("unreachable"), doc
    assert doc["database"] == "ok"
    during = await stack.invoice(account["id"])
    assert (await stack.read(invoices[0]["id"]))["status"] == "processing"
    deadline = time.monotonic() + 60
    while BACKED_OFF not in stack.gateway.log():
        assert time.monotonic() < deadline, f"timed out waiting for {BACKED_OFF!r} in the log"
        await asyncio.sleep(0.2)
    assert stack.gateway.proc is not None and stack.gateway.proc.poll() is None

    node.start()
    node.rpc("loadwallet", node.wallet)
    for invoice in [*invoices[3:], during]:
        paid[invoice["id"]] = node.send(invoice["address"], invoice["amount_due"])
    node.mine(3)
    # The watcher retries after its back-off (8 s, then 16 s); then it catches up.
    for invoice_id, txid in paid.items():
        settled = await stack.wait_status(invoice_id, "settled", timeout=90)
        assert [p["txid"] for p in settled["payments"]] == [txid]
    status, doc = await readiness(stack)
    assert status == 200 and doc["chains"]["LTC"]["status"] == "ok", doc
    tip = int(node.rpc("getblockcount"))
    assert doc["chains"]["LTC"]["processed_height"] == tip
    assert await stack.count("payments") == len(paid) == 6

    settled_ids = {d.doc["data"]["invoice_id"] for d in stack.receiver.of_type("invoice.settled")}
    deadline = time.monotonic() + 30
    while settled_ids != set(paid):
        assert time.monotonic() < deadline, f"settled webhooks missing: {set(paid) - settled_ids}"
        await asyncio.sleep(0.2)
        settled_ids = {d.doc["data"]["invoice_id"]
                       for d in stack.receiver.of_type("invoice.settled")}
    assert stack.gateway.proc is not None and stack.gateway.proc.poll() is None
    log = stack.gateway.log()
    assert "Traceback" not in log and "watcher failed" not in log
    assert "node unreachable" in log  # the outage was noticed (and only warned about)
