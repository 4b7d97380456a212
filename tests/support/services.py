"""A test's own handle on its gateway's services, on its own event loop, for setup that
only needs data: what `gateway apikey create`, `gateway staff create` or `gateway retention
run` do, without the second or so a CLI process costs. The CLI commands have tests of
their own (tests/e2e/test_api_keys.py, test_ops_cli.py, test_staff_console.py's
test_console_only_on_its_listener_and_totp_is_mandatory, ...)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.bootstrap import Gateway, build
from gateway.config import load


@asynccontextmanager
async def gateway_of(env: dict[str, str]) -> AsyncIterator[Gateway]:
    """The gateway `env` configures, built as a CLI command builds it (its background
    tasks not started), closed on the way out."""
    gw = build(load(None, env))
    try:
        yield gw
    finally:
        await gw.aclose()


async def create_api_key(env: dict[str, str], name: str, *scopes: str) -> str:
    async with gateway_of(env) as gw:
        key = (await gw.services.api_keys.create(name, list(scopes))).secret
    assert key.startswith("gk_")
    return key
