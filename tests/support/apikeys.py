"""API keys for a test's gateway, made through the service as `gateway apikey create`
makes them, without the second or so a CLI process costs (the CLI has tests of its own:
tests/e2e/test_api_keys.py, tests/e2e/test_ops_cli.py)."""

from gateway.bootstrap import build
from gateway.config import load


async def create_api_key(env: dict[str, str], name: str, *scopes: str) -> str:
    gw = build(load(None, env))
    try:
        key = (await gw.services.api_keys.create(name, list(scopes))).secret
    finally:
        await gw.aclose()
    assert key.startswith("gk_")
    return key
