"""A client generated from the document a running gateway serves (openapi-python-client,
the way integrators build their provisioning code) creates an invoice, reads it and
follows its events until it is settled, with no surprise on the way."""

import asyncio
import importlib
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import StackFactory


def generate(doc: dict[str, Any], tmp: Path) -> Any:
    """The client package for `doc`, generated into `tmp` and imported."""
    (tmp / "openapi.json").write_text(json.dumps(doc))
    tool = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [str(tool), "generate", "--path", str(tmp / "openapi.json"),
         "--output-path", str(tmp / "packetra_client"), "--meta", "none"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation and schema made it into the client: nothing was skipped.
    assert "will not be generated" not in result.stdout + result.stderr, result.stdout
    assert "Unable to" not in result.stdout + result.stderr, result.stdout
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("packetra_client")
    finally:
        sys.path.remove(str(tmp))


def events(stream: str) -> list[dict[str, Any]]:
    found = []
    for block in stream.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if fields:
            assert fields["event"] == "status", block
            found.append(json.loads(fields["data"]))
    return found


async def test_a_generated_client_creates_reads_and_follows_an_invoice(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack()
    account = await stack.signup("generated@example.org")
    doc = await stack.api.ok("GET", "/v1/openapi.json")
    client_pkg = generate(doc, tmp_path)
    models = importlib.import_module("packetra_client.models")
    post_invoice = importlib.import_module("packetra_client.api.service.post_v1_invoices")
    get_invoice = importlib.import_module(
        "packetra_client.api.service.get_v1_invoices_invoice_id")
    follow = importlib.import_module(
        "packetra_client.api.service.get_v1_invoices_invoice_id_events")

    client = client_pkg.AuthenticatedClient(base_url=stack.gateway.base, token=stack.key,
                                            timeout=httpx.Timeout(60))
    # The enums of this gateway's configuration are types of the client.
    assert [c.value for c in models.InvoiceBodyCoin] == ["LTC"]
    assert [c.value for c in models.InvoiceBodyPriceCurrency] == ["EUR"]
    body = models.InvoiceBody(
        account_id=account["id"], coin=models.InvoiceBodyCoin.LTC,
        price=models.InvoiceBodyPrice(amount="9.99",
                                      currency=models.InvoiceBodyPriceCurrency.EUR))
    created = await post_invoice.asyncio_detailed(client=client, body=body)
    assert created.status_code == 201, created.content
    invoice = created.parsed
    assert isinstance(invoice, models.Invoice)
    assert invoice.status == models.InvoiceStatus.NEW and invoice.coin == "LTC"
    assert invoice.price.amount == "9.99" and invoice.amount_due == "0.124875"

    read = await get_invoice.asyncio(invoice_id=invoice.id, client=client)
    assert isinstance(read, models.Invoice)
    assert (read.id, read.address, read.amount_due) == (
        invoice.id, invoice.address, invoice.amount_due)
    missing = await get_invoice.asyncio(invoice_id="inv_" + "0" * 26, client=client)
    assert isinstance(missing, models.Problem) and missing.status == 404

    # Follow the invoice's stream while it is paid and confirmed: it ends once final.
    following = asyncio.create_task(follow.asyncio_detailed(invoice_id=invoice.id,
                                                            client=client))
    await asyncio.sleep(0.5)
    stack.node.send(invoice.address, str(Decimal(invoice.amount_due)))
    await stack.wait_status(invoice.id, "processing")
    stack.node.mine(3)
    streamed = await asyncio.wait_for(following, 60)
    assert streamed.status_code == 200
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    statuses = [e["status"] for e in events(streamed.parsed)]
    statuses = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    # An event per change (confirmations too); the stream polls, so `processing` shows
    # unless the blocks came before its next look.
    assert statuses in (["new", "processing", "settled"], ["new", "settled"]), statuses
    assert events(streamed.parsed)[-1]["final"] is True
    settled = await get_invoice.asyncio(invoice_id=invoice.id, client=client)
    assert isinstance(settled, models.Invoice)
    assert settled.status == models.InvoiceStatus.SETTLED and len(settled.payments) == 1
