"""The portal behind a TLS-terminating reverse proxy: the scheme and host it reports are
believed from `[server] trusted_proxies` only."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from tests.e2e.conftest import StackFactory
from tests.support.nodes import free_port

PROXY_SOURCE = "127.0.0.2"  # the proxy talks to the gateway from this address
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
       "content-encoding", "upgrade"}


@asynccontextmanager
async def tls_terminating_proxy(upstream: str) -> AsyncIterator[str]:
    """What nginx does after TLS: forwards to the gateway over plain HTTP, saying which
    scheme, host and client the request came with."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(PROXY_SOURCE, 0)),
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": request.host,
                        "X-Forwarded-For": request.remote or ""})
        async with session.request(request.method, upstream + request.path_qs,
                                   headers=headers, data=await request.read(),
                                   allow_redirects=False) as resp:
            body = await resp.read()
            out = web.Response(status=resp.status, body=body)
            for name, value in resp.headers.items():
                if name.lower() not in HOP:
                    out.headers.add(name, value)
            return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_portal_login_behind_a_tls_terminating_proxy(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_SERVER__TRUSTED_PROXIES=f'["{PROXY_SOURCE}/32"]')
    await stack.signup("proxied@example.org", "proxied password 1")
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        async with tls_terminating_proxy(stack.gateway.url) as proxy:
            public = "https://" + proxy.removeprefix("http://")  # what the browser sees
            async with browser.get(f"{proxy}/login") as resp:
                assert resp.status == 200
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                token = csrf_of(await resp.text())
            form = {"csrf": token, "email": "proxied@example.org",
                    "password": "proxied password 1"}
            async with browser.post(f"{proxy}/login", data=form, allow_redirects=False,
                                    headers={"Origin": public}) as resp:
                assert resp.status == 303, await resp.text()
                assert resp.headers["Location"].endswith("account")
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                session = resp.cookies["__Host-session"].value
            stack.secrets.add(session)
            async with browser.get(f"{proxy}/account", allow_redirects=False,
                                   headers={"Cookie": f"__Host-session={session}"}) as resp:
                assert resp.status == 200
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                assert "proxied@example.org" in await resp.text()
            # Another site's form through the same proxy is still refused.
            async with browser.post(f"{proxy}/login", data=form, allow_redirects=False,
                                    headers={"Origin": "https://evil.example"}) as resp:
                assert resp.status == 403

        # Straight from a peer that is not a trusted proxy, the same headers mean nothing.
        direct = stack.gateway.url
        forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pay.example"}
        async with browser.get(f"{direct}/login", headers=forged) as resp:
            assert resp.status == 200
            assert "Strict-Transport-Security" not in resp.headers
            token = csrf_of(await resp.text())
        form["csrf"] = token
        async with browser.post(f"{direct}/login", data=form, allow_redirects=False,
                                headers={**forged, "Origin": "https://pay.example"}) as resp:
            assert resp.status == 403
            assert "Strict-Transport-Security" not in resp.headers
    finally:
        await browser.close()
