"""Issue 16, items 7 and 8, end to end through the real server, CLI and SMTP.

7: the register of legal requests. A held request (and even the audit entry of its
recording, or of an export made for it) is withheld from the customer's export and
/account until the operator lifts the hold; then both show it. Every step is audited.
Issue 28, item 4: once they may be told, the customers concerned are mailed, once per
request, through the durable mail queue the server's sender empties.

8: objection to optional processing, from the API and the /account form, honoured by
the notice sender: an optional notice skips the customer, a required one does not."""

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from email.message import Message

from gateway.services.legal import NOTICE_SUBJECT
from tests.e2e.conftest import Stack, StackFactory
from tests.support.inbox import Inbox, smtp_env
from tests.support.services import gateway_of
from tests.support.stack import run_cli

PASSWORD = "legal pw 1234"


async def page(stack: Stack, token: str) -> str:
    status, body, _ = await stack.api.fetch("/account",
                                            headers={"Cookie": f"__Host-session={token}"})
    assert status == 200
    return body.decode()


async def export(stack: Stack, token: str) -> dict[str, list[dict[str, str]]]:
    status, body, _ = await stack.api.fetch("/v1/me/export?format=json", token)
    assert status == 200
    doc: dict[str, list[dict[str, str]]] = json.loads(body)
    return doc


def notices(inbox: Inbox, address: str) -> list[Message]:
    return [m for m in inbox.to(address) if m["Subject"] == NOTICE_SUBJECT]


async def wait_for_notices(inbox: Inbox, address: str, count: int) -> list[Message]:
    deadline = time.monotonic() + 10
    while len(notices(inbox, address)) < count:
        assert time.monotonic() < deadline, f"no legal notice #{count} for {address}"
        await asyncio.sleep(0.1)
    return notices(inbox, address)


async def test_held_legal_requests_are_withheld_until_the_hold_is_lifted(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(register_endpoint=False, **smtp_env(inbox))
    env = stack.gateway.env
    target = await stack.signup("target@example.org", PASSWORD)
    other = await stack.signup("other@example.org", PASSWORD)
    token = await stack.login("target@example.org", PASSWORD)

    added = run_cli(env, "legal", "create", "--account", target["id"], "--account", other["id"],
                    "--received", "2026-11-20T09:00:00Z", "--notify", "held",
                    "--summary", "Production order 2026/77, district court")
    assert added.returncode == 0, added.stderr
    request_id = re.search(r"lr_\w+", added.stdout).group(0)  # type: ignore[union-attr]
    assert "HELD" in added.stdout and "lift-hold" in added.stdout
    assert "mailed" not in added.stdout
    # A second one, not held, recorded as `gateway legal create --notify allowed` does: its
    # mail is queued by this process and sent by the server's.
    async with gateway_of(env) as gw:
        await gw.services.legal.record("cli:test", [target["id"]],
                                       datetime(2026, 11, 21, 9, tzinfo=UTC),
                                       "Preservation request 12", True)
    [mail] = await wait_for_notices(inbox, "target@example.org", 1)
    assert "Nov 21, 2026" in str(mail.get_payload()) and "/account" in str(mail.get_payload())
    assert notices(inbox, "other@example.org") == []  # held: not told
    # The export made for the held request is marked with it.
    out = stack.tmp / "for-court.json"
    exported = run_cli(env, "account", "export", "--id", target["id"], "--reason",
                       "court order", "--legal-request", request_id, "--out", str(out))
    assert exported.returncode == 0, exported.stderr

    # Summaries are stored encrypted.
    for row in await stack.rows("SELECT * FROM legal_requests"):
        assert "Production order" not in repr(tuple(row))

    doc = await export(stack, token)
    assert [r["summary"] for r in doc["legal_requests"]] == ["Preservation request 12"]
    assert request_id not in json.dumps(doc)  # nor in the audit entries
    assert "court order" not in json.dumps(doc)
    html = await page(stack, token)
    assert "Preservation request 12" in html and "Production order" not in html

    listed = run_cli(env, "legal", "list")
    assert request_id in listed.stdout and "HELD" in listed.stdout
    lifted = run_cli(env, "legal", "lift-hold", request_id)
    assert lifted.returncode == 0 and "hold lifted" in lifted.stdout, lifted.stderr
    assert "mailed 20" in lifted.stdout
    await wait_for_notices(inbox, "other@example.org", 1)
    await wait_for_notices(inbox, "target@example.org", 2)
    again = run_cli(env, "legal", "lift-hold", request_id)
    assert again.returncode != 0 and "already allowed" in again.stderr
    pending = run_cli(env, "legal", "notify-pending")
    assert pending.returncode == 0 and "0 request(s) mailed" in pending.stdout, pending.stderr
    # Nothing more was queued: each customer was mailed once per request.
    assert await stack.scalar("SELECT count(*) FROM mail_queue") == 0
    assert len(notices(inbox, "target@example.org")) == 2
    assert len(notices(inbox, "other@example.org")) == 1

    doc = await export(stack, token)
    assert sorted(r["summary"] for r in doc["legal_requests"]) == [
        "Preservation request 12", "Production order 2026/77, district court"]
    actions = [(e["action"], e["reason"]) for e in doc["audit_log"]]
    assert ("legal_request", None) in actions and ("legal_hold_lifted", None) in actions
    assert ("export", "court order") in actions
    assert "Production order 2026/77" in await page(stack, token)
    assert "mailed to you" in await page(stack, token)
    assert all(r["mailed_at"] for r in doc["legal_requests"])
    # Audited like other staff access: who recorded and lifted it, for each account.
    assert await stack.scalar(
        "SELECT count(*) FROM audit_log WHERE account_id = :a AND actor LIKE 'cli:%' "
        "AND action IN ('legal_request', 'legal_hold_lifted')", a=other["id"]) == 2

    unknown = run_cli(env, "legal", "create", "--account", "acc_nobody", "--received",
                      "2026-11-20T09:00:00Z", "--notify", "held", "--summary", "x")
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1


async def test_objection_to_optional_processing_is_honoured_by_the_notice_sender(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(register_endpoint=False, **smtp_env(inbox))
    await stack.signup("objects@example.org", PASSWORD)
    await stack.signup("fine@example.org", PASSWORD)
    await stack.signup("form@example.org", PASSWORD)
    objects = await stack.login("objects@example.org", PASSWORD)

    assert await stack.api.ok("GET", "/v1/me/optional-processing", token=objects) == {
        "objected": False, "since": None}
    doc = await stack.api.ok("PUT", "/v1/me/optional-processing", {"objected": True},
                             objects)
    assert doc["objected"] is True and doc["since"]
    for loose in ("maybe", 0, "false"):  # only a JSON boolean, as the document says
        bad = await stack.api.call("PUT", "/v1/me/optional-processing", {"objected": loose},
                                   token=objects)
        assert bad[0] == 422, loose
    assert (await export(stack, objects))["optional_processing"][0]["objected"] is True
    assert "Withdraw my objection" in await page(stack, objects)

    # The same through the /account form.
    form_token = await stack.login("form@example.org", PASSWORD)
    html = await page(stack, form_token)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    async with stack.api.http.post(
            f"{stack.gateway.base}/account/optional-processing",
            data={"csrf": csrf, "objected": "yes"}, allow_redirects=False,
            headers={"Cookie": f"__Host-session={form_token}",
                     "Origin": stack.gateway.url}) as resp:
        assert resp.status == 303, await resp.text()
    assert (await stack.api.ok("GET", "/v1/me/optional-processing",
                               token=form_token))["objected"] is True

    await stack.gateway.stop()
    stack.gateway.env["GATEWAY_PRIVACY__POLICY_VERSION"] = "2026-12-01"
    await stack.gateway.start()
    summary = stack.tmp / "summary.txt"
    summary.write_text("A newsletter-like optional notice.\n")
    env = stack.gateway.env
    optional = run_cli(env, "notify", "policy-change", "--version", "2026-12-01",
                       "--summary", str(summary), "--optional")
    assert optional.returncode == 0, optional.stderr
    assert "1 notices sent" in optional.stdout
    assert [m["X-Rcpt"] for m in inbox.messages] == ["fine@example.org"]
    required = run_cli(env, "notify", "policy-change", "--version", "2026-12-01",
                       "--summary", str(summary))
    assert required.returncode == 0 and "2 notices sent" in required.stdout
    assert sorted(m["X-Rcpt"] for m in inbox.messages) == [
        "fine@example.org", "form@example.org", "objects@example.org"]

    # Withdrawn: optional notices reach the customer again.
    withdrawn = await stack.api.ok("PUT", "/v1/me/optional-processing", {"objected": False},
                                   objects)
    assert withdrawn == {"objected": False, "since": None}
