"""Bad input answers 4xx application/problem+json with a clear detail and writes nothing."""

from typing import Any

import pytest

from tests.e2e.conftest import Stack, StackFactory
from tests.support.cli import run_gateway
from tests.support.stack import gateway_env, run_cli

COUNTED = ("accounts", "invoices", "events", "sessions", "api_keys", "webhook_endpoints")


async def counts(stack: Stack) -> dict[str, int]:
    return {t: await stack.count(t) for t in COUNTED}


async def expect_problem(stack: Stack, status: int, fragment: str, method: str, path: str,
                         body: Any = None, token: str | None = None, raw: bytes | None = None
                         ) -> None:
    before = await counts(stack)
    got, doc, headers = await stack.api.call(method, path, body, token, raw=raw)
    assert got == status, (method, path, body, got, doc)
    assert headers["Content-Type"].startswith("application/problem+json")
    assert doc["status"] == status and fragment in doc["detail"], doc
    assert await counts(stack) == before, f"{method} {path} wrote something"


async def test_bad_input_is_refused_clearly_and_writes_nothing(make_stack: StackFactory) -> None:
    stack = await make_stack()
    account = await stack.signup("taken@example.org")
    acc = account["id"]
    key = stack.key

    await expect_problem(stack, 400, "not valid JSON", "POST", "/v1/accounts", raw=b"{nope")
    await expect_problem(stack, 400, "JSON object", "POST", "/v1/accounts", raw=b"[1]")
    await expect_problem(stack, 422, "email: is required", "POST", "/v1/accounts",
                         {"password": "long enough pw"})
    await expect_problem(stack, 422, "email: is not a valid email", "POST", "/v1/accounts",
                         {"email": "not-an-email", "password": "long enough pw"})
    await expect_problem(stack, 422, "at least 10 characters", "POST", "/v1/accounts",
                         {"email": "short@example.org", "password": "short"})
    await expect_problem(stack, 422, "shoe_size: is not a known field", "POST", "/v1/accounts",
                         {"email": "x@example.org", "password": "long enough pw", "shoe_size": 9})
    await expect_problem(stack, 409, "already exists", "POST", "/v1/accounts",
                         {"email": "TAKEN@example.org", "password": "long enough pw"})
    await expect_problem(stack, 422, "datacenter: must be one of", "POST", "/v1/accounts",
                         {"email": "dc@example.org", "password": "long enough pw",
                          "datacenter": "mars-1"})

    def inv(**over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"account_id": acc, "price": {"amount": "9.99", "currency": "EUR"},
                                "coin": "LTC"}
        body.update(over)
        return body

    await expect_problem(stack, 422, "coin: 'DOGE' is not accepted", "POST", "/v1/invoices",
                         inv(coin="DOGE"), key)
    for amount, fragment in (("0", "greater than zero"), ("-5", "greater than zero"),
                             ("ten", "not a decimal"), ("9.999", "2 decimal places")):
        await expect_problem(stack, 422, fragment, "POST", "/v1/invoices",
                             inv(price={"amount": amount, "currency": "EUR"}), key)
    await expect_problem(stack, 422, "price.amount", "POST", "/v1/invoices",
                         inv(price={"amount": 9.99, "currency": "EUR"}), key)
    await expect_problem(stack, 422, "no account", "POST", "/v1/invoices",
                         inv(account_id="acc_doesnotexist"), key)
    await expect_problem(stack, 503, "rates unavailable", "POST", "/v1/invoices",
                         inv(price={"amount": "9.99", "currency": "USD"}), key)
    await expect_problem(stack, 401, "API key is required", "POST", "/v1/invoices", inv())
    await expect_problem(stack, 401, "not valid", "POST", "/v1/invoices", inv(),
                         "gk_wrongwrongwrongwrongwrongwrong")
    await expect_problem(stack, 404, "invoice not found", "GET", "/v1/invoices/inv_nope",
                         token=key)
    await expect_problem(stack, 404, "no route", "GET", "/v1/nothing-here")
    await expect_problem(stack, 405, "not allowed", "PUT", "/v1/accounts", {})
    await expect_problem(stack, 413, "larger than 1 MiB", "POST", "/v1/accounts",
                         raw=b'{"email": "' + b"x" * (1024 * 1024 + 10) + b'"}')
    await expect_problem(stack, 422, "non-public address", "POST", "/v1/webhook-endpoints",
                         {"url": "http://10.1.2.3/hooks"}, key)
    await expect_problem(stack, 422, "http(s) URL", "POST", "/v1/webhook-endpoints",
                         {"url": "ftp://example.org/x"}, key)
    # Filters, cursors and limits have the forms the OpenAPI document gives them.
    await expect_problem(stack, 422, "cursor: must be an id of the form inv_", "GET",
                         "/v1/invoices?cursor=abc", token=key)
    await expect_problem(stack, 422, "account_id: must be an id of the form acc_", "GET",
                         "/v1/invoices?account_id=nobody", token=key)
    await expect_problem(stack, 422, "cursor: must be an id of the form evt_", "GET",
                         f"/v1/events?cursor={acc}", token=key)
    await expect_problem(stack, 400, "limit must be an integer", "GET",
                         "/v1/events?limit=%2B5", token=key)
    await expect_problem(stack, 422, "digits and one point", "POST", "/v1/invoices",
                         inv(price={"amount": "1e2", "currency": "EUR"}), key)


async def test_scopes_are_enforced(make_stack: StackFactory) -> None:
    stack = await make_stack()
    created = run_cli(stack.gateway.env, "apikey", "create", "--name", "reader",
                      "--scope", "invoices:read")
    reader = created.stdout.strip()
    stack.secrets.add(reader)
    account = await stack.signup("scoped@example.org")
    status, doc, _ = await stack.api.call("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "1.00", "currency": "EUR"},
        "coin": "LTC"}, reader)
    assert status == 403 and "invoices:write" in doc["detail"]
    status, _, _ = await stack.api.call("GET", f"/v1/accounts/{account['id']}", token=reader)
    assert status == 403
    bad = run_cli(stack.gateway.env, "apikey", "create", "--name", "x", "--scope", "root")
    assert bad.returncode == 2 and "unknown scope" in bad.stderr and bad.stdout == ""


def test_serve_refuses_an_unmigrated_database(tmp_path: Any, litecoin: Any) -> None:
    from tests.support.nodes import free_port

    env = gateway_env(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", litecoin, free_port())
    result = run_gateway(["serve"], {**__import__("os").environ, **env})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gateway db upgrade" in lines[0]


@pytest.mark.parametrize(("override", "key"), [
    ({"GATEWAY_SECURITY__DATA_KEYS": "[]"}, "security.data_keys"),
    ({"GATEWAY_COINS__LTC__XPUB": "xpub-nonsense"}, "coins.LTC.xpub"),
])
def test_bad_configuration_exits_2_with_one_line(tmp_path: Any, litecoin: Any,
                                                 override: dict[str, str], key: str) -> None:
    from tests.support.nodes import free_port

    env = gateway_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", litecoin, free_port(),
                      **override)
    result = run_cli(env, "serve")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], result.stderr


async def test_deeply_nested_json_is_a_clear_400_without_a_traceback(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    account = await stack.signup("nested@example.org")
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    await expect_problem(stack, 400, "nests too deeply", "POST", "/v1/accounts", raw=deep)
    # Deep enough to parse, far deeper than any body of ours: refused before anything
    # else walks it.
    metadata = b'{"x": ' + b"[" * 500 + b"]" * 500 + b"}"
    body = (b'{"account_id": "' + account["id"].encode() + b'", "coin": "LTC", '
            b'"price": {"amount": "9.99", "currency": "EUR"}, "metadata": ' + metadata + b"}")
    await expect_problem(stack, 400, "nests too deeply", "POST", "/v1/invoices",
                         raw=body, token=stack.key)
    log = stack.gateway.log()
    assert "RecursionError" not in log and "Traceback" not in log


async def test_a_nul_in_a_header_is_a_400_and_one_info_line(make_stack: StackFactory) -> None:
    """aiohttp's parser refuses the request; its ERROR with a traceback becomes one INFO
    line that names neither the client nor the header's value."""
    import asyncio
    from urllib.parse import urlsplit

    stack = await make_stack()
    url = urlsplit(stack.gateway.base)
    secret = "gk_" + "s3cr3t" * 4
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + secret.encode() + b"\x00x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]

    async def logged() -> str:
        for _ in range(50):
            if "malformed request" in stack.gateway.log():
                break
            await asyncio.sleep(0.1)
        return stack.gateway.log()

    log = await logged()
    lines = [line for line in log.splitlines() if "malformed request" in line]
    assert len(lines) == 1, log[-3000:]
    assert " INFO aiohttp.server: malformed request refused with 400: " in lines[0]
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert "s3cr3t" not in log and "127.0.0.1" not in lines[0]
