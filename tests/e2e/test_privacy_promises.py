"""Issue 28, item 10: the tests of two promises assert the promise itself.

- Browser information is used "for website functionality only" (the CSRF binding) and
  never stored: after a customer's whole visit with a distinctive User-Agent (portal
  signup and login, the API, the checkout page, failed logins, the staff console's
  login), the database's bytes (SQLite: the file and its write-ahead log; PostgreSQL:
  every row of every table as text, byte columns in hex) hold no trace of it, while the
  same search finds a value that is stored in clear.
- Nothing is loaded from another origin: the Content-Security-Policy of every page type
  (customer pages, checkout page, staff console, error pages; and of the API) is parsed,
  allows no source but the gateway's own ('self', 'none', data: images), and is exactly
  the one docs/privacy.md states."""

import re
from pathlib import Path

import aiohttp

from tests.e2e.conftest import StackFactory
from tests.support.db_bytes import database_bytes, holds
from tests.support.nodes import free_port

DOC = Path(__file__).parents[2] / "docs" / "privacy.md"
USER_AGENT = "Mozilla/5.0 (X11; UA-Probe-7f3a9c) ZebraBrowser/91.7 Gecko/20100101"
REFERENCE = "order-ref-probe-4417"
ALLOWED_SOURCES = {"'self'", "'none'", "data:"}


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the form has no CSRF token"
    return found.group(1)


def _parse_csp(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            assert words[0].lower() not in directives, f"{words[0]} twice in {value!r}"
            directives[words[0].lower()] = words[1:]
    return directives


def _documented(kind: str) -> dict[str, list[str]]:
    """The policy docs/privacy.md states for `kind` ("HTML pages" or "Everything else")."""
    found = re.search(rf"^- {kind}[^`\n]*`([^`]+)`", DOC.read_text(), re.MULTILINE)
    assert found, f"docs/privacy.md states no Content-Security-Policy for {kind}"
    return _parse_csp(found.group(1))


async def test_the_user_agent_is_never_stored(make_stack: StackFactory) -> None:
    # On SQLite, and on PostgreSQL in make test's second e2e run (GATEWAY_TEST_DATABASE).
    stack = await make_stack(register_endpoint=False,
                             GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    staff = f"http://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff"
    email, password = "ua-probe@example.org", "ua probe password 1"
    stack.secrets.update({email, password})
    base = stack.gateway.base
    headers = {"User-Agent": USER_AGENT}
    async with aiohttp.ClientSession(headers=headers) as http:
        # The portal binds its CSRF token to the User-Agent: signup and login by form.
        async with http.get(f"{base}/signup") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/signup", allow_redirects=False, data={
                "email": email, "password": password, "csrf": token}) as resp:
            assert resp.status == 303, await resp.text()
        async with http.get(f"{base}/login") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/login", allow_redirects=False, data={
                "email": email, "password": "a wrong password 9", "csrf": token}) as resp:
            assert resp.status in (200, 401, 403), resp.status
        async with http.post(f"{base}/v1/sessions", json={
                "email": email, "password": password}) as resp:
            assert resp.status == 201
            stack.secrets.add((await resp.json())["token"])
        account_id = await stack.scalar("SELECT id FROM accounts")
        invoice = await stack.invoice(account_id, metadata={"reference": REFERENCE})
        async with http.get(f"{stack.gateway.url}/pay/{invoice['id']}") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/forgot") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{base}/forgot", allow_redirects=False, data={
                "email": email, "csrf": token}) as resp:
            assert resp.status == 202, resp.status
        # The staff console binds its form tokens to the browser too.
        async with http.get(f"{staff}/login") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{staff}/login", data={
                "name": "nobody", "password": "not the password 1", "csrf": token}) as resp:
            assert resp.status == 401
    raw = await database_bytes(stack.db_url)
    assert holds(raw, REFERENCE), "the search does not see what is stored in clear"
    for trace in (USER_AGENT, "UA-Probe-7f3a9c", "ZebraBrowser"):
        assert not holds(raw, trace), f"the database holds the User-Agent ({trace!r})"


async def test_every_page_type_loads_nothing_from_another_origin(
        make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_STAFF__LISTEN=f"127.0.0.1:{free_port()}")
    account = await stack.signup("csp@example.org")
    invoice = await stack.invoice(account["id"])
    base = stack.gateway.base
    staff = f"http://{stack.gateway.env['GATEWAY_STAFF__LISTEN']}/staff"
    pages = {  # what each page type answers: (URL, expected status)
        "customer signup": (f"{base}/signup", 200),
        "customer login": (f"{base}/login", 200),
        "customer password reset request": (f"{base}/forgot", 200),
        "checkout": (f"{stack.gateway.url}/pay/{invoice['id']}", 200),
        "staff console login": (f"{staff}/login", 200),
        "customer error page (dead reset link)": (f"{base}/reset?token=nope", 400),
    }
    others = {
        "API": (f"{base}/v1/invoices/{invoice['id']}", 401),
        "API error (problem+json)": (f"{stack.gateway.url}/pay/inv_nope", 404),
        "staff console, unknown path": (f"{staff}/nope", 404),
    }
    page_policy, other_policy = _documented("HTML pages"), _documented("Everything else")
    for policy in (page_policy, other_policy):
        assert "default-src" in policy, "without default-src, unlisted kinds load anything"
    async with aiohttp.ClientSession() as http:
        for kinds, expected in ((pages, page_policy), (others, other_policy)):
            for kind, (url, status) in kinds.items():
                async with http.get(url, allow_redirects=False) as resp:
                    assert resp.status == status, (kind, resp.status)
                    html = resp.content_type == "text/html"
                    assert html == (kinds is pages), (kind, resp.content_type)
                    policy = _parse_csp(resp.headers["Content-Security-Policy"])
                    body = await resp.text()
                for directive, sources in policy.items():
                    if directive.endswith("-src") or directive in ("base-uri", "form-action",
                                                                   "frame-ancestors"):
                        assert set(sources) <= ALLOWED_SOURCES, (kind, directive, sources)
                assert policy == expected, (kind, policy, "differs from docs/privacy.md")
                if html:
                    assert not re.search(r"(?i)(src|href|action)=\"(https?:)?//", body), kind
        # The staff console's error page: a failed login.
        async with http.get(f"{staff}/login") as resp:
            token = _form_token(await resp.text())
        async with http.post(f"{staff}/login", data={
                "name": "nobody", "password": "not the password 1", "csrf": token}) as resp:
            assert resp.status == 401 and resp.content_type == "text/html", resp.status
            assert _parse_csp(resp.headers["Content-Security-Policy"]) == page_policy
