"""A processing invoice whose payment is double-spent before settlement goes back to `new`
and says so by webhook (`invoice.processing_reverted`, issue 27 item 22), on a real
litecoind."""

from tests.e2e.conftest import StackFactory
from tests.support.double_spend import double_spend


async def test_a_double_spent_payment_reverts_processing_with_a_webhook(
        make_stack: StackFactory) -> None:
    stack = await make_stack()
    account = await stack.signup("processing-reverted@example.org")
    invoice = await stack.invoice(account["id"])
    paid = stack.node.send(invoice["address"], invoice["amount_due"], replaceable=True)
    await stack.wait_status(invoice["id"], "processing")
    await stack.receiver.wait_for("invoice.processing")
    double_spend(stack.node, paid)
    await stack.wait_status(invoice["id"], "new")
    event = await stack.receiver.wait_for("invoice.processing_reverted")
    assert event.doc["data"]["invoice_id"] == invoice["id"]
    assert event.doc["data"]["status"] == "new"
    types = [d.type for d in stack.receiver.deliveries
             if d.doc["data"].get("invoice_id") == invoice["id"]]
    assert types == ["invoice.created", "invoice.payment_received", "invoice.processing",
                     "invoice.processing_reverted"]
