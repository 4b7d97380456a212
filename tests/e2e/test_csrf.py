"""Cross-site requests: the session cookie authenticates a state-changing JSON request only
when it is JSON from our own origin; forms refuse `Origin: null`; a pre-login form token
works for the client it was issued to only."""

import json
import re
from typing import Any

from tests.e2e.conftest import Stack, StackFactory

PLANS = json.dumps({"vps-small": {"price": "8.00", "currency": "EUR"}})
FORGED = ("/v1/me/invoices", "/v1/me/totp", "/v1/me/policy-acknowledgement")


async def post(stack: Stack, path: str, data: bytes, headers: dict[str, str]
               ) -> tuple[int, dict[str, Any]]:
    async with stack.api.http.post(stack.gateway.base + path, data=data,
                                   headers=headers) as resp:
        text = await resp.text()
        doc = json.loads(text) if resp.content_type.endswith("json") and text else {}
        if resp.status == 403:
            assert resp.content_type == "application/problem+json", text
        return resp.status, doc


async def customer(stack: Stack) -> tuple[str, str]:
    account = await stack.signup("victim@example.org", "victim password 1")
    # An account that still has to accept the current policy, as after a policy change.
    await stack.rows("UPDATE accounts SET policy_version = 'old' WHERE id = :id",
                     id=account["id"])
    return account["id"], await stack.login("victim@example.org", "victim password 1")


async def nothing_recorded(stack: Stack, account_id: str) -> None:
    assert await stack.count("invoices") == 0
    assert await stack.scalar("SELECT totp_secret_ct FROM accounts WHERE id = :id",
                              id=account_id) is None
    assert await stack.scalar("SELECT policy_version FROM accounts WHERE id = :id",
                              id=account_id) == "old"


async def test_cookie_requests_must_be_json_from_our_own_origin(make_stack: StackFactory
                                                                ) -> None:
    stack = await make_stack(GATEWAY_PLANS=PLANS)
    account_id, token = await customer(stack)
    cookie = {"Cookie": f"__Host-session={token}"}
    own = {"Origin": stack.gateway.url}
    body = {"/v1/me/invoices": b'{"plan": "vps-small", "coin": "LTC"}',
            "/v1/me/totp": b'{"current_password": "victim password 1"}'}

    # What a same-site page can send without a preflight: a text/plain form-like body.
    for path in FORGED:
        status, doc = await post(stack, path, body.get(path, b"{}"),
                                 {**cookie, **own, "Content-Type": "text/plain"})
        assert status == 403 and "Content-Type: application/json" in doc["detail"], doc
    # JSON, but from another origin, from an opaque origin, or saying nothing.
    for origin in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {},
                   {"Origin": stack.gateway.url, "Sec-Fetch-Site": "same-site"}):
        for path in FORGED:
            status, doc = await post(stack, path, body.get(path, b"{}"),
                                     {**cookie, **origin, "Content-Type": "application/json"})
            assert status == 403 and "cross-site request refused" in doc["detail"], doc
    # A form that names no content type at all, and a DELETE.
    assert (await post(stack, "/v1/me/totp", b"", {**cookie, **own}))[0] == 403
    async with stack.api.http.delete(stack.gateway.base + "/v1/sessions/current",
                                     headers={**cookie, "Origin": "http://evil.example",
                                              "Content-Type": "application/json"}) as resp:
        assert resp.status == 403
    await nothing_recorded(stack, account_id)
    assert (await stack.api.call("GET", "/v1/me", token=token))[0] == 200  # still logged in

    # The same requests with the bearer token work, and so does JSON from our own pages.
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert (await post(stack, "/v1/me/invoices", body["/v1/me/invoices"], bearer))[0] == 201
    assert (await post(stack, "/v1/me/totp", body["/v1/me/totp"], bearer))[0] == 201
    assert (await post(stack, "/v1/me/policy-acknowledgement", b"{}",
                       {**cookie, **own, "Content-Type": "application/json"}))[0] == 204
    assert await stack.count("invoices") == 1
    assert await stack.scalar("SELECT policy_version FROM accounts WHERE id = :id",
                              id=account_id) != "old"
    # Reads with the cookie need neither.
    async with stack.api.http.get(stack.gateway.base + "/v1/me", headers=cookie) as resp:
        assert resp.status == 200


async def form_token(stack: Stack, page: str, headers: dict[str, str]) -> str:
    async with stack.api.http.get(f"{stack.gateway.base}/{page}", headers=headers) as resp:
        match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert match
    return match.group(1)


async def test_forms_refuse_a_null_origin_and_tokens_of_other_clients(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    http, base = stack.api.http, stack.gateway.base
    alice = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Firefox/128.0",
             "Accept-Language": "de-DE"}
    mallory = {"User-Agent": "curl/8.5.0", "Accept-Language": "en"}
    form = {"email": "form@example.org", "password": "form password 1"}
    stack.secrets.update(form.values())

    # A token fetched by one client (the attacker's) does not work for another (the victim).
    token = await form_token(stack, "signup", mallory)
    async with http.post(f"{base}/signup", data={**form, "csrf": token}, headers=alice,
                         allow_redirects=False) as resp:
        assert resp.status == 403 and "does not match" in await resp.text()
    # Nor does the victim's own token in a form posted from an opaque (null) origin.
    token = await form_token(stack, "signup", alice)
    async with http.post(f"{base}/signup", data={**form, "csrf": token},
                         headers={**alice, "Origin": "null"}, allow_redirects=False) as resp:
        assert resp.status == 403 and "null" in await resp.text()
    assert await stack.count("accounts") == 0
    # A token whose time is not ASCII digits ("²" passes str.isdigit, not int) is malformed,
    # not a server error.
    async with http.post(f"{base}/signup", data={**form, "csrf": "\u00b2.x"}, headers=alice,
                         allow_redirects=False) as resp:
        assert resp.status == 403 and "malformed" in await resp.text()
    # The login form alike.
    token = await form_token(stack, "login", mallory)
    async with http.post(f"{base}/login", data={**form, "csrf": token}, headers=alice,
                         allow_redirects=False) as resp:
        assert resp.status == 403
    # The client it was issued to, from our own origin, signs up.
    token = await form_token(stack, "signup", alice)
    async with http.post(f"{base}/signup", data={**form, "csrf": token},
                         headers={**alice, "Origin": stack.gateway.url},
                         allow_redirects=False) as resp:
        assert resp.status == 303
    assert await stack.count("accounts") == 1


async def test_a_pre_login_token_is_bound_to_the_clients_network(make_stack: StackFactory
                                                                 ) -> None:
    # Behind a trusted proxy, so the client address can be set per request.
    stack = await make_stack(GATEWAY_SERVER__TRUSTED_PROXIES='["127.0.0.1/32"]')
    http, base = stack.api.http, stack.gateway.base
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
               "Accept-Language": "en-US,en;q=0.5"}
    token = await form_token(stack, "login", {**browser, "X-Forwarded-For": "198.51.100.7"})
    form = {"email": "nobody@example.org", "password": "not a password", "csrf": token}
    # The attacker's server fetched it, with the victim's headers copied: refused.
    async with http.post(f"{base}/login", data=form, allow_redirects=False,
                         headers={**browser, "X-Forwarded-For": "203.0.113.9"}) as resp:
        assert resp.status == 403 and "does not match" in await resp.text()
    # The same network (an IPv4 /24) is the same client: the login itself is checked.
    async with http.post(f"{base}/login", data=form, allow_redirects=False,
                         headers={**browser, "X-Forwarded-For": "198.51.100.99"}) as resp:
        assert resp.status == 401
