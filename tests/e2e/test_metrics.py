import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import StackFactory
from tests.support.nodes import free_port
from tests.support.stack import Reply, eventually


async def scrape(stack: object) -> dict[str, float]:
    async with stack.api.http.get(f"{stack.gateway.ops_url}/metrics") as resp:  # type: ignore[attr-defined]
        assert resp.status == 200
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))
            samples[key] = s.value
    return samples


async def test_metrics_cover_outbox_deliveries_watcher_and_http(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(script=[Reply(500)] * 50, event_types=["account.created"],
                             GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[30]")
    await stack.signup("metrics@example.org")
    await eventually(lambda: len(stack.receiver.attempts) == 1, 20, "first attempt")
    await asyncio.sleep(0.5)
    m = await scrape(stack)
    assert m["gateway_outbox_pending_deliveries"] == 1  # waiting for its retry
    assert m["gateway_webhook_failing_endpoints"] == 1
    assert m["gateway_webhook_delivery_attempts_total|outcome=retry"] == 1
    assert m["gateway_webhook_delivery_duration_seconds_count"] == 1
    key = ("gateway_http_request_duration_seconds_count"
           "|method=POST|route=/v1/accounts|status=201")
    assert m[key] == 1
    height = int(stack.node.rpc("getblockcount"))
    for _ in range(50):
        m = await scrape(stack)
        if m.get("gateway_watcher_processed_height|coin=LTC") == height:
            break
        await asyncio.sleep(0.2)
    assert m["gateway_watcher_processed_height|coin=LTC"] == height
    assert m["gateway_watcher_lag_blocks|coin=LTC"] == 0
    assert "metrics@example.org" not in str(m)


async def test_metrics_and_readiness_only_on_the_operations_listener(
    make_stack: StackFactory,
) -> None:
    """They show logins and signups as they happen: the public listener answers 404 for
    them, the operations listener (loopback, [server] metrics_listen) serves them."""
    stack = await make_stack()
    http = stack.api.http
    for path in ("/metrics", "/readyz"):
        async with http.get(f"{stack.gateway.base}{path}") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"].startswith("application/problem+json")
    async with http.get(f"{stack.gateway.base}/healthz") as resp:
        assert resp.status == 200  # load balancers keep their health check
    async with http.get(f"{stack.gateway.ops_url}/metrics") as resp:
        assert resp.status == 200 and "gateway_http_request_duration_seconds" in await resp.text()
    async with http.get(f"{stack.gateway.ops_url}/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["database"] == "ok"
    async with http.get(f"{stack.gateway.ops_url}/v1/openapi.json") as resp:
        assert resp.status == 404  # the operations listener serves nothing else
    # Turned off: neither listener has them.
    off = await make_stack(register_endpoint=False, GATEWAY_SERVER__METRICS_LISTEN="")
    async with http.get(f"{off.gateway.base}/metrics") as resp:
        assert resp.status == 404


async def test_a_client_that_drops_its_connection_is_no_server_error(
    make_stack: StackFactory,
) -> None:
    """Headers and part of a JSON body, then the client goes away: logged as a client
    that left (no traceback), never counted as a 500."""
    stack = await make_stack(register_endpoint=False)
    host, port = stack.gateway.base.removeprefix("http://").rsplit(":", 1)
    for path in ("/v1/accounts", "/v1/sessions"):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
                      '{"email": "gone@exa').encode())
        await writer.drain()
        await asyncio.sleep(0.3)  # the handler is now reading the body
        writer.close()
        await writer.wait_closed()
    await eventually(lambda: stack.gateway.log().count("client closed the connection") >= 2,
                     10, "both drops logged")
    log = stack.gateway.log()
    assert "Traceback" not in log and "ConnectionResetError" not in log
    assert "unhandled" not in log
    m = await scrape(stack)
    assert not [k for k in m if "status=500" in k], [k for k in m if "status=500" in k]
    assert m["gateway_http_request_duration_seconds_count"
             "|method=POST|route=/v1/accounts|status=499"] == 1


async def test_metrics_the_alert_rules_need(make_stack: StackFactory) -> None:
    """config/prometheus/alerts.yml alerts on these: the oldest delivery waiting, invoices
    refused for want of a rate, and a node that does not answer."""
    stack = await make_stack(script=[Reply(500)] * 50, event_types=["account.created"],
                             GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[30]")
    m = await scrape(stack)
    assert m["gateway_outbox_oldest_pending_age_seconds"] == 0
    assert m["gateway_chain_node_up|coin=LTC"] == 1
    assert m["gateway_rates_unavailable_total"] == 0
    assert m["gateway_rates_last_success_timestamp_seconds"] == 0
    account = await stack.signup("oldest@example.org")
    await eventually(lambda: len(stack.receiver.attempts) == 1, 20, "first attempt")
    # The oldest delivery waits for its retry (30 s away): its age grows past a second.
    deadline = time.monotonic() + 10
    while (m := await scrape(stack))["gateway_outbox_oldest_pending_age_seconds"] < 1:
        assert time.monotonic() < deadline, \
            f"timed out waiting for the oldest pending age to reach 1 s: {m}"
        await asyncio.sleep(0.2)
    assert 1 <= m["gateway_outbox_oldest_pending_age_seconds"] < 30
    # LTC-EUR is the only rate this stack has.
    status, doc, _ = await stack.api.call("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "5.00", "currency": "USD"},
        "coin": "LTC"}, stack.key)
    assert status == 503, doc
    await stack.invoice(account["id"])
    m = await scrape(stack)
    assert m["gateway_rates_unavailable_total"] == 1
    assert m["gateway_rates_last_success_timestamp_seconds"] > 1.7e9

    down = await make_stack(register_endpoint=False,
                            GATEWAY_COINS__LTC__RPC_URL=f"http://u:p@127.0.0.1:{free_port()}")
    m = await scrape(down)
    assert m["gateway_chain_node_up|coin=LTC"] == 0
