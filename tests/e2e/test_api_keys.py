"""API keys are listed and revoked from the CLI; a revoked key stops working at once on
the running server (the threat model in OPERATIONS.md relies on it)."""

from tests.e2e.conftest import StackFactory
from tests.support.stack import run_cli


async def test_a_revoked_key_stops_working_at_once(make_stack: StackFactory) -> None:
    stack = await make_stack()
    env = stack.gateway.env
    created = run_cli(env, "apikey", "create", "--name", "reporting",
                      "--scope", "invoices:read")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    stack.secrets.add(secret)
    assert (await stack.api.call("GET", "/v1/invoices", token=secret))[0] == 200

    listed = run_cli(env, "apikey", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [li for li in listed.stdout.splitlines() if "reporting" in li]
    key_id = line.split()[0]
    assert key_id.startswith("key_") and line.endswith("live") and secret not in listed.stdout

    revoked = run_cli(env, "apikey", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout, revoked.stderr
    status, doc, _ = await stack.api.call("GET", "/v1/invoices", token=secret)
    assert status == 401 and "not valid" in doc["detail"]
    assert "revoked" in run_cli(env, "apikey", "list").stdout
    again = run_cli(env, "apikey", "revoke", key_id)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    # The stack's own key is untouched.
    assert (await stack.api.call("GET", "/v1/invoices", token=stack.key))[0] == 200
