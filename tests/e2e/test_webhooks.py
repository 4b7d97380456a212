"""Webhooks the provisioning system can rely on: rotation, flapping receivers, 410,
redirects, a receiver down for the whole retry window, filters, private targets."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e.conftest import StackFactory
from tests.support.db_time import db_time
from tests.support.signals import decided_event
from tests.support.stack import Reply, eventually, run_cli


async def test_rotation_signs_with_both_secrets_then_only_the_new(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(event_types=["account.created"],
                             GATEWAY_WEBHOOKS__ROTATION_OVERLAP_HOURS="2")
    old = stack.endpoint["secret"]
    rotated_at = datetime.now(UTC)
    rotated = await stack.api.ok(
        "POST", f"/v1/webhook-endpoints/{stack.endpoint['id']}/rotate-secret", {}, stack.key)
    new = rotated["secret"]
    stack.secrets.add(new)
    assert new != old and new.startswith("whsec_")
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert abs(until - (rotated_at + timedelta(hours=2))) < timedelta(minutes=1), until

    await stack.signup("rotate-1@example.org")
    first = await stack.receiver.wait_for("account.created")
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(first.body, first.headers)
    Webhook(new).verify(first.body, first.headers)

    # The overlap's end moves into the past, rather than the test waiting two hours.
    await stack.rows("UPDATE webhook_endpoints SET previous_secret_expires_at = :t "
                     "WHERE id = :id", id=stack.endpoint["id"],
                     t=db_time(stack.db_url, datetime.now(UTC) - timedelta(seconds=1)))
    await stack.signup("rotate-2@example.org")
    await eventually(lambda: len(stack.receiver.deliveries) == 2, 20, "second delivery")
    second = stack.receiver.deliveries[1]
    Webhook(new).verify(second.body, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(second.body, second.headers)


async def test_flapping_receiver_is_retried_and_every_attempt_logged(
    make_stack: StackFactory,
) -> None:
    script = [Reply(500), Reply(200, delay=2.5), Reply(429, {"Retry-After": "2"}), Reply(200)]
    stack = await make_stack(script=script, event_types=["account.created"],
                             GATEWAY_WEBHOOKS__TIMEOUT_SECONDS="1")
    await stack.signup("flap@example.org")
    await eventually(lambda: len(stack.receiver.deliveries) >= 1 and
                     len(stack.receiver.attempts) == 4, 30, "delivered after flapping")
    ids = {a.headers["webhook-id"] for a in stack.receiver.attempts}
    assert len(ids) == 1
    times = stack.receiver.attempt_times
    assert times[3] - times[2] >= 1.9  # Retry-After: 2 was honoured (schedule says 0.5 s)
    [event_id] = ids
    await asyncio.sleep(0.5)
    doc = await stack.api.ok("GET", f"/v1/events/{event_id}", token=stack.key)
    [delivery] = doc["deliveries"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 4
    log = delivery["log"]
    assert [a["status_code"] for a in log] == [500, None, 429, 200]
    assert log[1]["error"] == "timeout"
    assert all("body" not in a for a in log)
    assert doc["payload"]["type"] == "account.created"


async def test_gone_disables_the_endpoint_and_a_redirect_is_not_followed(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(script=[Reply(302, {"Location": "/elsewhere"}), Reply(410)],
                             event_types=["account.created"],
                             GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[0.5]")
    await stack.signup("gone@example.org")
    await eventually(lambda: len(stack.receiver.attempts) == 2, 20, "two attempts")
    assert stack.receiver.redirected_hits == 0
    await asyncio.sleep(0.5)
    events = await stack.api.ok("GET", "/v1/events?type=account.created", token=stack.key)
    doc = await stack.api.ok("GET", f"/v1/events/{events['data'][0]['id']}", token=stack.key)
    [delivery] = doc["deliveries"]
    assert [a["status_code"] for a in delivery["log"]] == [302, 410]
    assert delivery["log"][0]["error"] == "redirect"
    assert delivery["status"] == "disabled"
    listed = await stack.api.ok("GET", "/v1/webhook-endpoints", token=stack.key)
    assert listed["data"][0]["enabled"] is False
    later = await stack.signup("gone-2@example.org")
    doc = await decided_event(stack.api, stack.key, "account.created", later["id"])
    assert all(d["attempts"] == 0 for d in doc.get("deliveries", [])), doc
    assert len(stack.receiver.attempts) == 2  # nothing more goes to a 410 endpoint
    enabled = run_cli(stack.gateway.env, "webhook", "enable", stack.endpoint["id"])
    assert enabled.returncode == 0, enabled.stderr


async def test_receiver_down_for_the_whole_window_then_redelivered(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(event_types=["account.created"],
                             GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[0.2, 0.2, 0.2]")
    started = datetime.now(UTC) - timedelta(seconds=1)
    await stack.receiver.stop()  # down: connection refused
    for i in range(3):
        await stack.signup(f"down-{i}@example.org")

    async def all_failed() -> bool:
        page = await stack.api.ok("GET", "/v1/events?type=account.created", token=stack.key)
        docs = [await stack.api.ok("GET", f"/v1/events/{e['id']}", token=stack.key)
                for e in page["data"]]
        return len(docs) == 3 and all(d["deliveries"][0]["status"] == "failed" for d in docs)

    deadline = time.monotonic() + 20
    while not await all_failed():
        assert time.monotonic() < deadline, "deliveries never ended as failed"
        await asyncio.sleep(0.3)
    page = await stack.api.ok("GET", "/v1/events?type=account.created", token=stack.key)
    event_ids = {e["id"] for e in page["data"]}
    doc = await stack.api.ok("GET", f"/v1/events/{page['data'][0]['id']}", token=stack.key)
    assert doc["deliveries"][0]["attempts"] == 4  # first try + three retries
    assert all(a["status_code"] is None for a in doc["deliveries"][0]["log"])

    await stack.receiver.start()  # recovered, same port
    result = run_cli(stack.gateway.env, "webhook", "redeliver", "--failed-since",
                     started.isoformat())
    assert result.returncode == 0 and "3 failed deliveries queued" in result.stdout
    await eventually(lambda: len(stack.receiver.deliveries) == 3, 20, "redelivered")
    assert {d.headers["webhook-id"] for d in stack.receiver.deliveries} == event_ids
    for d in stack.receiver.deliveries:
        Webhook(stack.endpoint["secret"]).verify(d.body, d.headers)
    # One event again, through the API.
    one = next(iter(event_ids))
    queued = await stack.api.ok("POST", f"/v1/events/{one}/redeliver", {}, stack.key)
    assert queued == {"queued": 1}
    await eventually(lambda: len(stack.receiver.deliveries) == 4, 20, "redelivered once more")
    assert stack.receiver.deliveries[-1].headers["webhook-id"] == one
    bad = run_cli(stack.gateway.env, "webhook", "redeliver", "--failed-since", "yesterday")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


async def test_event_filter_delivers_only_subscribed_types(make_stack: StackFactory) -> None:
    stack = await make_stack(event_types=["invoice.settled"])
    account = await stack.signup("filter@example.org")
    invoice = await stack.invoice(account["id"])
    stack.node.send(invoice["address"], invoice["amount_due"])
    # Seen unconfirmed first, so payment_received and processing come before settled.
    await stack.wait_status(invoice["id"], "processing")
    stack.node.mine(3)
    await stack.receiver.wait_for("invoice.settled")
    # One account's deliveries go out in the order of its events: any delivery of its
    # earlier events would have been attempted before invoice.settled. None was made.
    assert {d.type for d in stack.receiver.attempts} == {"invoice.settled"}
    assert len(stack.receiver.attempts) == 1
    page = await stack.api.ok("GET", "/v1/events", token=stack.key)
    others = [e for e in page["data"] if e["type"] != "invoice.settled"
              and account["id"] in json.dumps(e["payload"]["data"])]
    assert {e["type"] for e in others} >= {"account.created", "invoice.created",
                                           "invoice.payment_received"}, others
    for event in others:
        doc = await stack.api.ok("GET", f"/v1/events/{event['id']}", token=stack.key)
        assert "deliveries" not in doc, doc  # none was made


async def test_private_targets_are_refused_unless_allowed(make_stack: StackFactory) -> None:
    stack = await make_stack(register_endpoint=False,
                             GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS="[]")
    for url in ("http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://localhost/x",
                "http://[::1]/x", "http://169.254.169.254/latest",
                # IPv6 wrappings of loopback and metadata, CGNAT
                "http://[64:ff9b::7f00:1]/x", "http://[::ffff:169.254.169.254]/x",
                "http://[2002:a9fe:a9fe::1]/x", "http://100.64.0.1/x"):
        status, doc, _ = await stack.api.call("POST", "/v1/webhook-endpoints", {"url": url},
                                              stack.key)
        assert status == 422 and "non-public" in doc["detail"], (url, doc)
    refused = run_cli(stack.gateway.env, "webhook", "create", "--url", "http://10.0.0.7/h")
    assert refused.returncode == 2 and "allow_private_targets" in refused.stderr
    allowed = await make_stack(register_endpoint=False,
                               GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS='["10.0.0.0/8"]')
    # The old spelling (`add`) still works for one release and says what to type now.
    ok = run_cli(allowed.gateway.env, "webhook", "add", "--url", "http://10.0.0.7/h",
                 "--event-type", "invoice.settled")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "deprecated: use `gateway webhook create`\n"
    internal = await make_stack(register_endpoint=False,
                                GATEWAY_WEBHOOKS__ALLOW_PUBLIC_TARGETS="false")
    for url, fragment in (("http://example.org/hook", "only IP addresses"),
                          ("http://10.1.1.1/hook", "outside")):
        status, doc, _ = await internal.api.call("POST", "/v1/webhook-endpoints",
                                                 {"url": url}, internal.key)
        assert status == 422 and fragment in doc["detail"], doc
    assert (await internal.api.call("POST", "/v1/webhook-endpoints",
                                    {"url": "http://127.0.0.1:9/h"}, internal.key))[0] == 201
    listed = run_cli(allowed.gateway.env, "webhook", "list")
    assert "10.0.0.7" in listed.stdout and "invoice.settled" in listed.stdout
    secret_line = ok.stdout.splitlines()[1]
    allowed.secrets.add(secret_line.split(": ", 1)[1])
    assert json.dumps(listed.stdout).count("whsec_") == 0
