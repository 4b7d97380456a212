import json

from tests.e2e.conftest import StackFactory
from tests.support.stack import run_cli


async def test_gap_report_after_paid_and_expired_invoices(make_stack: StackFactory) -> None:
    import asyncio

    stack = await make_stack(GATEWAY_INVOICES__EXPIRY_MINUTES="0.05")
    account = await stack.signup("gap@example.org")
    invoices = [await stack.invoice(account["id"]) for _ in range(7)]
    for i in (0, 4):  # indexes 1-3 and 5-6 stay unused; 1-3 is the longest run
        stack.node.send(invoices[i]["address"], invoices[i]["amount_due"])
    stack.node.send(invoices[6]["address"], invoices[6]["amount_due"])
    for i in (0, 4, 6):  # seen unconfirmed, then mined
        await stack.until(invoices[i]["id"], lambda d: bool(d["payments"]),
                          f"invoice {i}'s payment seen in the mempool")
    stack.node.mine(1)
    for i in (0, 4, 6):
        for _ in range(100):
            doc = await stack.read(invoices[i]["id"])
            if doc["payments"] and doc["payments"][0]["status"] == "confirmed":
                break
            await asyncio.sleep(0.2)
    result = run_cli(stack.gateway.env, "wallet", "gap", "--coin", "LTC", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"coin": "LTC", "derived": 7, "longest_gap": 3,
                                         "start_index": 1, "end_index": 3}
    human = run_cli(stack.gateway.env, "wallet", "gap", "--coin", "LTC")
    assert "longest run" in human.stdout and ": 3 (indexes 1-3)" in human.stdout
    unknown = run_cli(stack.gateway.env, "wallet", "gap", "--coin", "DOGE")
    assert unknown.returncode == 2 and "not configured" in unknown.stderr
