"""Finance reads every payment by period and by transaction hash, and reconciliation
checks the records against a real Litecoin regtest node."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gateway.adapters.db.tables import payments
from gateway.services.finance import COLUMNS
from tests.e2e.conftest import Stack, StackFactory
from tests.support.services import create_api_key
from tests.support.stack import run_cli


async def finance_key(stack: Stack) -> str:
    key = await create_api_key(stack.gateway.env, "finance", "payments:read")
    stack.secrets.add(key)
    return key


async def pay(stack: Stack, account_id: str, amount: str) -> tuple[dict[str, Any], str]:
    invoice = await stack.invoice(account_id, amount)
    txid = stack.node.send(invoice["address"], invoice["amount_due"])
    return invoice, txid


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_payments_for_finance_by_period_txid_and_export(make_stack: StackFactory) -> None:
    stack = await make_stack()
    start = datetime.now(UTC) - timedelta(seconds=5)
    key = await finance_key(stack)
    first = await stack.signup("finance-a@example.org", "finance pw 123")
    second = await stack.signup("finance-b@example.org", "finance pw 123")
    inv_a, tx_a = await pay(stack, first["id"], "4.00")
    inv_b, tx_b = await pay(stack, second["id"], "8.00")
    stack.node.mine(3)
    await stack.wait_status(inv_a["id"], "settled")
    await stack.wait_status(inv_b["id"], "settled")

    refused = await stack.api.call("GET", "/v1/payments", token=stack.key)
    assert refused[0] == 403  # the provisioning key has no payments:read

    everything = await stack.api.ok("GET", "/v1/payments", token=key)
    rows = everything["data"]  # in the order they were recorded (one mempool batch here)
    by_tx = {r["txid"]: r for r in rows}
    assert sorted(by_tx) == sorted([tx_a, tx_b])
    assert (by_tx[tx_a]["invoice_id"], by_tx[tx_a]["account_id"]) == (inv_a["id"], first["id"])
    assert (by_tx[tx_b]["invoice_id"], by_tx[tx_b]["account_id"]) == (inv_b["id"],
                                                                      second["id"])
    # Fiat value at the rate the invoice locked (80 EUR/LTC).
    assert (by_tx[tx_a]["fiat_value"], by_tx[tx_b]["fiat_value"]) == ("4.00", "8.00")
    assert {r["fiat_currency"] for r in rows} == {"EUR"}
    assert by_tx[tx_a]["amount"] == inv_a["amount_due"]
    assert all(r["confirmations"] == 3 and r["status"] == "confirmed" for r in rows)
    assert set(rows[0]) == set(COLUMNS)

    page1 = await stack.api.ok("GET", "/v1/payments?limit=1", token=key)
    page2 = await stack.api.ok("GET", f"/v1/payments?limit=1&cursor={page1['next_cursor']}",
                               token=key)
    page3 = await stack.api.ok("GET", f"/v1/payments?limit=1&cursor={page2['next_cursor']}",
                               token=key)
    assert page1["data"] + page2["data"] == rows and page3 == {"data": [],
                                                                "next_cursor": None}

    window = f"from={iso(start)}&to={iso(start + timedelta(minutes=10))}&coin=LTC"
    status, body, headers = await stack.api.fetch(f"/v1/payments?{window}&format=csv", key)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["txid"] for r in table] == [r["txid"] for r in rows]
    assert {r["txid"]: r["fiat_value"] for r in table}[tx_a] == "4.00"
    _, first_row, headers = await stack.api.fetch("/v1/payments?format=csv&limit=1", key)
    assert headers["X-Next-Cursor"] == page1["next_cursor"]
    assert len(first_row.decode().splitlines()) == 2  # header and one row
    before = await stack.api.ok("GET", f"/v1/payments?to={iso(start)}", token=key)
    assert before["data"] == []

    for query, field in (("from=yesterday", "from"), ("coin=BTC", "coin"),
                         ("to=2026-01-01T00:00:00", "to"), ("cursor=abc", "cursor")):
        bad = await stack.api.call("GET", f"/v1/payments?{query}", token=key)
        assert bad[0] == 422 and bad[1]["errors"][0]["field"] == field, (query, bad)

    one = await stack.api.ok("GET", f"/v1/payments/{tx_b}", token=key)
    assert one["data"] == [by_tx[tx_b]]
    assert (await stack.api.call("GET", "/v1/payments/" + "0" * 64, token=key))[0] == 404

    out = stack.tmp / "payments.csv"
    exported = run_cli(stack.gateway.env, "payments", "export", "--from", iso(start),
                       "--to", iso(start + timedelta(minutes=10)), "--format", "csv",
                       "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "wrote 2 payments" in exported.stdout
    assert out.stat().st_mode & 0o077 == 0  # finance data: owner only
    assert list(csv.DictReader(out.open())) == table
    as_json = stack.tmp / "payments.json"
    exported = run_cli(stack.gateway.env, "payments", "export", "--from", iso(start),
                       "--to", iso(start + timedelta(minutes=10)), "--format", "json",
                       "--out", str(as_json))
    assert exported.returncode == 0 and json.loads(as_json.read_text()) == rows
    bad = run_cli(stack.gateway.env, "payments", "export", "--from", "soon", "--to",
                  iso(start), "--out", str(out))
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


async def set_amount(stack: Stack, txid: str, amount: int) -> None:
    engine = create_async_engine(stack.db_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(payments).where(payments.c.txid == txid)
                               .values(amount=amount))
    finally:
        await engine.dispose()


async def amount_of(stack: Stack, txid: str) -> int:
    engine = create_async_engine(stack.db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(payments.c.amount).where(
                payments.c.txid == txid))).scalar_one())
    finally:
        await engine.dispose()


def reconcile(stack: Stack, start: datetime, out: Path) -> tuple[int, dict[str, Any], str]:
    done = run_cli(stack.gateway.env, "reconcile", "--from", iso(start),
                   "--to", iso(datetime.now(UTC) + timedelta(minutes=5)), "--coin", "LTC",
                   "--out", str(out))
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(out.read_text()), done.stdout


async def test_reconciliation_finds_every_kind_of_disagreement(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    node = stack.node
    start = datetime.now(UTC) - timedelta(seconds=5)
    account = await stack.signup("reconcile@example.org", "reconcile pw 1")
    altered, altered_tx = await pay(stack, account["id"], "2.00")
    node.mine(3)
    orphaned, orphaned_tx = await pay(stack, account["id"], "3.00")
    [orphaned_block, *_] = node.mine(3)
    await stack.wait_status(altered["id"], "settled")
    await stack.wait_status(orphaned["id"], "settled")
    unrecorded = await stack.invoice(account["id"], "5.00")

    code, report, out = reconcile(stack, start, stack.tmp / "clean.json")
    assert code == 0, out
    assert report["clean"] and report["checked_payments"] == 2 and report["findings"] == []
    assert "everything agrees" in out
    # `--json` prints the report instead (no file); the old `--json FILE` still writes it.
    window = ("--from", iso(start), "--to", iso(datetime.now(UTC) + timedelta(minutes=5)),
              "--coin", "LTC")
    printed = run_cli(stack.gateway.env, "reconcile", *window, "--json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["checked_payments"] == 2
    old = run_cli(stack.gateway.env, "reconcile", *window, "--json", str(stack.tmp / "old.json"))
    assert old.returncode == 0 and "everything agrees" in old.stdout, old.stderr
    assert "deprecated: use `gateway reconcile --out FILE`" in old.stderr
    assert json.loads((stack.tmp / "old.json").read_text())["clean"]

    true_amount = await amount_of(stack, altered_tx)
    await set_amount(stack, altered_tx, true_amount - 1)
    await stack.gateway.stop()  # the watcher is down from here on
    node.rpc("invalidateblock", orphaned_block)
    unrecorded_tx = node.send(unrecorded["address"], unrecorded["amount_due"])
    node.mine(1)

    code, report, out = reconcile(stack, start, stack.tmp / "dirty.json")
    assert code == 1, out
    found = {(f["kind"], f["txid"], f["invoice_id"]) for f in report["findings"]}
    assert found == {("amount", altered_tx, altered["id"]),
                     ("orphaned", orphaned_tx, orphaned["id"]),
                     ("unrecorded", unrecorded_tx, unrecorded["id"])}, report
    assert "3 disagreement(s)" in out and f"recorded {true_amount - 1} base units" in out

    # Once the watcher has caught up and the record is corrected, all agrees again.
    await set_amount(stack, altered_tx, true_amount)
    await stack.gateway.start()
    await stack.until(unrecorded["id"], lambda d: bool(d["payments"]), "the missed payment")
    await stack.until(orphaned["id"], lambda d: all(p["confirmations"] == 1
                                                    for p in d["payments"]), "re-mined")
    code, report, out = reconcile(stack, start, stack.tmp / "again.json")
    assert code == 0, (out, report)
