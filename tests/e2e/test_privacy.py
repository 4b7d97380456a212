"""The privacy policy's promises, end to end: export, deletion, access audit."""

import asyncio
import io
import json
import zipfile
from typing import Any

from gateway.adapters.db.tables import metadata
from tests.e2e.conftest import Stack, StackFactory
from tests.support.services import gateway_of
from tests.support.stack import run_cli

PASSWORD = "privacy pw 123"


async def paid_account(stack: Stack, email: str, **profile: str) -> tuple[dict[str, Any],
                                                                            dict[str, Any], str]:
    account = await stack.signup(email, PASSWORD, **profile)
    stack.secrets.update(v for v in profile.values() if len(v) > 5)
    invoice = await stack.invoice(account["id"], "4.00")
    txid = stack.node.send(invoice["address"], invoice["amount_due"])
    stack.node.mine(3)
    await stack.wait_status(invoice["id"], "settled")
    return account, invoice, txid


async def dump_everything(stack: Stack) -> str:
    """Every row of every table, as text: what an export of the database would show."""
    parts = []
    for table in metadata.sorted_tables:
        for row in await stack.rows(f"SELECT * FROM {table.name}"):
            parts.append(repr(tuple(row)))
    return "\n".join(parts)


async def test_export_holds_everything_about_the_account_and_nothing_else(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    _mine, invoice, txid = await paid_account(stack, "export-me@example.org",
                                             display_name="Exporter Pseudonym")
    other, other_invoice, other_txid = await paid_account(stack, "someone-else@example.org")
    token = await stack.login("export-me@example.org", PASSWORD)

    status, body, headers = await stack.api.fetch("/v1/me/export?format=json", token)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert "attachment" in headers["Content-Disposition"]
    doc = json.loads(body)
    assert doc["profile"][0]["email"] == "export-me@example.org"
    assert doc["profile"][0]["display_name"] == "Exporter Pseudonym"
    assert [i["id"] for i in doc["invoices"]] == [invoice["id"]]
    assert [(p["txid"], p["invoice_id"]) for p in doc["payments"]] == [(txid, invoice["id"])]
    assert [e["event"] for e in doc["security_log"]] == ["login_succeeded"] * 2
    assert set(doc) == {"profile", "preferences", "invoices", "payments", "security_log",
                        "audit_log", "sessions", "recovery_codes", "policy_notices",
                        "webhook_events", "login_throttle", "legal_requests",
                        "optional_processing", "paid_periods", "renewals",
                        "credit_entries", "refunds", "cash_tokens"}
    # The account's own webhook events are in it (account.created at least).
    assert "account.created" in {e["type"] for e in doc["webhook_events"]}
    assert doc["sessions"] and all(s["created_at"] for s in doc["sessions"])

    status, body, headers = await stack.api.fetch("/v1/me/export?format=csv", token)
    assert status == 200 and headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    assert set(files) == {f"{t}.csv" for t in doc}
    assert "export-me@example.org" in files["profile.csv"]
    assert invoice["id"] in files["invoices.csv"]
    assert txid in files["payments.csv"]
    assert files["security_log.csv"].count("login_succeeded") == 2

    for raw in (json.dumps(doc), *files.values()):
        for foreign in ("someone-else@example.org", other["id"], other_invoice["id"],
                        other_txid):
            assert foreign not in raw

    bad = await stack.api.call("GET", "/v1/me/export?format=xml", token=token)
    assert bad[0] == 422 and "json or csv" in bad[1]["detail"]
    assert (await stack.api.call("GET", "/v1/me/export"))[0] == 401


async def test_personal_data_needs_its_scope_and_every_read_is_audited(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    account = await stack.signup("audited@example.org", PASSWORD)
    narrow = run_cli(stack.gateway.env, "apikey", "create", "--name", "billing",
                     "--scope", "invoices:read", "--scope", "payments:read")
    assert narrow.returncode == 0
    narrow_key = narrow.stdout.strip()
    stack.secrets.add(narrow_key)

    refused = await stack.api.call("GET", f"/v1/accounts/{account['id']}", token=narrow_key)
    assert refused[0] == 403 and "personal_data:read" in refused[1]["detail"]
    refused = await stack.api.call("GET", f"/v1/accounts/{account['id']}/export",
                                   token=narrow_key)
    assert refused[0] == 403
    assert await stack.count("audit_log") == 0

    status, doc, _ = await stack.api.call(
        "GET", f"/v1/accounts/{account['id']}", token=stack.key,
        headers={"X-Access-Reason": "support ticket 4711"})
    assert status == 200 and doc["email"] == "audited@example.org"
    key_id = await stack.scalar("SELECT id FROM api_keys WHERE name = 'provisioning'")
    # Without a reason a read is refused before anything is read (tests/integration/
    # test_access_audit.py goes through every such read).
    refused = await stack.api.call("GET", f"/v1/accounts/{account['id']}", token=stack.key)
    assert refused[0] == 400 and "X-Access-Reason" in refused[1]["detail"]

    # The operator's CLI follows the API's and the console's rule (10 to 200 characters).
    short = run_cli(stack.gateway.env, "account", "export", "--id", account["id"],
                    "--reason", "because", "--out", str(stack.tmp / "short.json"))
    assert short.returncode == 2 and short.stderr.count("\n") == 1, short.stderr
    assert "at least 10 characters" in short.stderr and not (stack.tmp / "short.json").exists()

    exported = run_cli(stack.gateway.env, "account", "export", "--id", account["id"],
                       "--reason", "court order 12", "--out", str(stack.tmp / "acc.json"))
    assert exported.returncode == 0, exported.stderr
    assert (stack.tmp / "acc.json").stat().st_mode & 0o077 == 0
    assert json.loads((stack.tmp / "acc.json").read_text())["profile"][0]["email"] == \
        "audited@example.org"

    token = await stack.login("audited@example.org", PASSWORD)
    mine = json.loads((await stack.api.fetch("/v1/me/export", token))[1])
    entries = [(e["actor"], e["action"], e["reason"]) for e in mine["audit_log"]]
    assert entries[0] == (f"key:provisioning ({key_id})", "read_account",
                          "support ticket 4711")
    assert mine["audit_log"][0]["fields"] == "email display_name company datacenter currency"
    assert entries[1][0].startswith("cli:") and entries[1][1:] == ("export", "court order 12")
    assert len(entries) == 2  # the customer's own export is not an access by someone else


async def test_deletion_erases_personal_data_and_keeps_billing_records(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(GATEWAY_RETENTION__DELETION_GRACE_DAYS="0")
    email, name, company = "erase-me@example.org", "Erasable Pseudonym", "Erasable Company"
    account, invoice, txid = await paid_account(stack, email, display_name=name,
                                                company=company)
    await stack.receiver.wait_for("account.activated")
    old_ciphertext = await stack.scalar("SELECT email_ct FROM accounts WHERE id = :a",
                                        a=account["id"])
    token = await stack.login(email, PASSWORD)

    wrong = await stack.api.call("DELETE", "/v1/me", {"password": "not the password"}, token)
    assert wrong[0] == 422 and wrong[1]["errors"][0]["field"] == "password"
    status, doc, _ = await stack.api.call("DELETE", "/v1/me", {"password": PASSWORD}, token)
    assert status == 202 and doc["deletion_due_at"]
    assert (await stack.api.call("GET", "/v1/me", token=token))[0] == 401  # sessions ended

    # Logging in during the grace period and cancelling keeps the account.
    token = await stack.login(email, PASSWORD)
    assert (await stack.api.ok("GET", "/v1/me", token=token))["deletion_due_at"]
    assert (await stack.api.call("DELETE", "/v1/me/deletion", token=token))[0] == 204
    assert (await stack.api.call("DELETE", "/v1/me/deletion", token=token))[0] == 409
    scheduled = await stack.receiver.wait_for("account.deletion_scheduled")
    assert scheduled.doc["data"] == {"account_id": account["id"],
                                     "deletion_due_at": doc["deletion_due_at"]}
    await stack.receiver.wait_for("account.deletion_cancelled")
    # Retention as `gateway retention run` runs it; the command itself, last.
    async with gateway_of(stack.gateway.env) as gw:
        assert (await gw.services.retention.run())["account_deletions"] == 0
    assert (await stack.api.ok("GET", "/v1/me", token=token))["email"] == email

    await stack.api.ok("DELETE", "/v1/me", {"password": PASSWORD}, token)
    async with gateway_of(stack.gateway.env) as gw:
        assert (await gw.services.retention.run(dry_run=True))["account_deletions"] == 1
    done = run_cli(stack.gateway.env, "retention", "run")
    assert done.returncode == 0 and "account_deletions: removed 1" in done.stdout, done
    deleted = await stack.receiver.wait_for("account.deleted")
    assert json.loads(deleted.body)["data"] == {"account_id": account["id"]}

    # Login fails; the service sees no account; billing records remain.
    assert (await stack.api.call("POST", "/v1/sessions",
                                 {"email": email, "password": PASSWORD}))[0] == 401
    assert (await stack.api.call("GET", f"/v1/accounts/{account['id']}", token=stack.key,
                                 headers={"X-Access-Reason": "after deletion"}))[0] == 404
    kept_invoice = await stack.read(invoice["id"])
    assert kept_invoice["status"] == "settled" and kept_invoice["account_id"] == account["id"]
    assert [p["txid"] for p in kept_invoice["payments"]] == [txid]
    assert kept_invoice["amount_paid"] == invoice["amount_due"]

    # No trace of the email or the names anywhere in the database: not in the accounts
    # row, not in the outbox payloads, not in the delivery logs.
    everything = await dump_everything(stack)
    for trace in (email, name, company, "erase-me"):
        assert trace not in everything
    for table in ("sessions", "recovery_codes", "policy_notices"):
        assert await stack.scalar(f"SELECT count(*) FROM {table} WHERE account_id = :a",
                                  a=account["id"]) == 0
    assert await stack.scalar("SELECT count(*) FROM security_log WHERE account_id = :a",
                              a=account["id"]) == 0
    if stack.db_url.startswith("sqlite"):
        raw = stack.raw_database()
        for trace in (email.encode(), name.encode(), company.encode(), bytes(old_ciphertext)):
            assert trace not in raw, "an erased value is still in the database file"
    await asyncio.sleep(0.5)
    log = stack.gateway.log()
    for trace in (email, name, company):
        assert trace not in log


async def test_invoice_metadata_outside_the_schema_is_refused(
    make_stack: StackFactory,
) -> None:
    """Issue 16, item 10: metadata may hold only documented, non-personal keys."""
    stack = await make_stack()
    account = await stack.signup("meta@example.org", PASSWORD)
    body = {"account_id": account["id"], "coin": "LTC",
            "price": {"amount": "2.00", "currency": "EUR"}}
    status, doc, _ = await stack.api.call(
        "POST", "/v1/invoices", {**body, "metadata": {"customer_email": "x@example.org"}},
        token=stack.key)
    assert status == 422 and "metadata" in doc["detail"] and "reference" in doc["detail"]
    status, doc, _ = await stack.api.call(
        "POST", "/v1/invoices", {**body, "metadata": {"reference": "Jane Roe"}},
        token=stack.key)
    assert status == 422 and "identifier" in doc["detail"]
    made = await stack.api.ok("POST", "/v1/invoices",
                              {**body, "metadata": {"reference": "ORD-7", "quantity": 2}},
                              stack.key)
    assert made["metadata"] == {"reference": "ORD-7", "quantity": 2}
    assert await stack.count("invoices") == 1
