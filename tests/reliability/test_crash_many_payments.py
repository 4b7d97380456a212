"""300 payments over 50 blocks while the gateway is SIGKILLed at 10 random moments and
restarted: every payment is recorded exactly once, every invoice settles, and every
settled invoice's webhooks reach the receiver at least once.

`make test` runs it on SQLite at that size and again on PostgreSQL at a smaller one (120
payments, 20 blocks, 6 kills: the same three kinds of kill moment, every payment and
webhook checked the same way). What the kills test is the gateway's recovery, which both
databases share; the second run checks PostgreSQL's transactions under the same kills,
and the full size there cost the suite's ten minutes a minute of two cores."""

import asyncio
import random
import time

from tests.e2e.conftest import DEFAULT_DB, StackFactory

PAYMENTS, BLOCKS, KILLS = (300, 50, 10) if DEFAULT_DB == "sqlite" else (120, 20, 6)
ACCOUNTS = 10


async def test_payments_over_many_blocks_with_random_kills(make_stack: StackFactory) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)  # printed on failure, to replay the same moments
    stack = await make_stack(process=True)  # SIGKILL
    node = stack.node
    accounts = [await stack.signup(f"crash-{i}@example.org") for i in range(ACCOUNTS)]
    invoices = [await stack.invoice(accounts[i % ACCOUNTS]["id"]) for i in range(PAYMENTS)]
    per_block = PAYMENTS // BLOCKS
    # Kill moments: (block round, where in the round): before paying, between the
    # payments and the block, or right after the block.
    kills = {r: rng.choice(("before", "paid", "mined"))
             for r in rng.sample(range(BLOCKS), KILLS)}
    txids: dict[str, str] = {}

    async def kill_and_restart() -> None:
        await stack.gateway.kill()
        await stack.gateway.start(timeout=60)

    for r in range(BLOCKS):
        batch = invoices[r * per_block:(r + 1) * per_block]
        if kills.get(r) == "before":
            await kill_and_restart()
        if r % 2:  # one transaction paying the whole batch
            txid = node.rpc("sendmany", "", {i["address"]: i["amount_due"] for i in batch},
                            wallet=node.wallet)
            txids.update({i["id"]: str(txid) for i in batch})
        else:
            for invoice in batch:
                txids[invoice["id"]] = node.send(invoice["address"], invoice["amount_due"])
        await asyncio.sleep(rng.uniform(0, 0.4))
        if kills.get(r) == "paid":
            await kill_and_restart()
        node.mine(1)
        if kills.get(r) == "mined":
            await asyncio.sleep(rng.uniform(0, 0.3))
            await kill_and_restart()
        await asyncio.sleep(rng.uniform(0, 0.2))
    node.mine(3)  # the last batch reaches 3 confirmations

    deadline = time.monotonic() + 120
    while await stack.scalar(
            "SELECT count(*) FROM invoices WHERE status = 'settled'") < PAYMENTS:
        assert time.monotonic() < deadline, f"not all invoices settled (seed {seed})"
        await asyncio.sleep(0.5)

    # Every payment exactly once, on the invoice it paid, with the right transaction.
    rows = await stack.rows("SELECT invoice_id, txid FROM payments")
    assert len(rows) == PAYMENTS, f"seed {seed}"
    assert {r.invoice_id: r.txid for r in rows} == txids, f"seed {seed}"
    assert await stack.scalar(
        "SELECT count(*) FROM events WHERE type = 'invoice.settled'") == PAYMENTS

    # Every settled invoice's webhooks, at least once (a delivery cut short by a kill goes
    # out again with the same webhook-id).
    wanted = set(txids)
    deadline = time.monotonic() + 120
    while True:
        settled = {d.doc["data"]["invoice_id"] for d in stack.receiver.of_type("invoice.settled")}
        received = {d.doc["data"]["invoice_id"]
                    for d in stack.receiver.of_type("invoice.payment_received")}
        activated = {d.doc["data"]["account_id"]
                     for d in stack.receiver.of_type("account.activated")}
        if settled == wanted and received == wanted and len(activated) == ACCOUNTS:
            break
        assert time.monotonic() < deadline, (
            f"seed {seed}: settled webhooks missing for {len(wanted - settled)}, "
            f"payment_received for {len(wanted - received)}, "
            f"activations {len(activated)}/{ACCOUNTS}")
        await asyncio.sleep(0.5)
    for kind in ("invoice.settled", "account.activated"):  # one event per transition
        per_subject: dict[str, set[str]] = {}
        for d in stack.receiver.of_type(kind):
            subject = d.doc["data"]["invoice_id" if kind == "invoice.settled" else "account_id"]
            per_subject.setdefault(subject, set()).add(d.headers["webhook-id"])
        assert all(len(ids) == 1 for ids in per_subject.values()), (kind, seed)
    assert "watcher failed" not in stack.gateway.log()
