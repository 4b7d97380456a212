"""A privacy policy change reaches every active account once, through real SMTP, and
/account shows a notice until the customer acknowledges it."""

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

from tests.e2e.conftest import Stack, StackFactory
from tests.support.inbox import Inbox, smtp_env
from tests.support.services import gateway_of
from tests.support.stack import run_cli

NEW = "2026-12-01"


async def account_page(stack: Stack, token: str) -> str:
    status, body, _ = await stack.api.fetch("/account",
                                            headers={"Cookie": f"__Host-session={token}"})
    assert status == 200
    return body.decode()


async def test_policy_change_reaches_everyone_once_even_when_interrupted(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    emails = [f"policy{i}@example.org" for i in range(6)]
    for email in emails:
        await stack.signup(email, "policy pw 123")
    deleted = await stack.signup("policy-gone@example.org", "policy pw 123")
    token = await stack.login("policy-gone@example.org", "policy pw 123")
    await stack.api.ok("DELETE", "/v1/me", {"password": "policy pw 123"}, token)
    await stack.rows("UPDATE accounts SET deletion_due_at = created_at WHERE id = :a",
                     a=deleted["id"])
    async with gateway_of(stack.gateway.env) as gw:  # as `gateway retention run` does
        await gw.services.retention.run()

    # The operator publishes the new version, then announces it.
    await stack.gateway.stop()
    stack.gateway.env["GATEWAY_PRIVACY__POLICY_VERSION"] = NEW
    await stack.gateway.start()
    summary = stack.tmp / "summary.txt"
    summary.write_text("We now keep security logs for 14 days instead of 30.\n")
    env = stack.gateway.env

    wrong = run_cli(env, "notify", "policy-change", "--version", "2027-01-01",
                    "--summary", str(summary))
    assert wrong.returncode == 2 and "set it to '2027-01-01' first" in wrong.stderr

    command = [sys.executable, "-m", "gateway.cli", "notify", "policy-change", "--version",
               NEW, "--summary", str(summary), "--per-minute", "120"]
    first = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while len(inbox.messages) < 2:
        assert first.poll() is None, first.communicate()
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGINT)
    out, err = await asyncio.to_thread(first.communicate, timeout=30)
    assert first.returncode == 130, (out, err)
    assert "run the same command again" in err
    interrupted_at = len(inbox.messages)
    assert 2 <= interrupted_at < len(emails)

    resumed = run_cli(env, "notify", "policy-change", "--version", NEW, "--summary",
                      str(summary), "--per-minute", "120")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(emails) - interrupted_at} notices sent" in resumed.stdout

    received = Counter(m["X-Rcpt"] for m in inbox.messages)
    assert received == Counter(emails)  # everyone once; the deleted account not at all
    assert all("14 days instead of 30" in m.get_payload() for m in inbox.messages)  # type: ignore[operator]
    gaps = [b - a for a, b in zip(inbox.arrived, inbox.arrived[1:], strict=False)]
    assert min(gaps[interrupted_at:] or [1.0]) > 0.3  # rate-limited to 2 a second

    nothing = run_cli(env, "notify", "policy-change", "--version", NEW, "--summary",
                      str(summary))
    assert nothing.returncode == 0 and "0 notices sent" in nothing.stdout

    # /account shows the notice until it is acknowledged; a new customer accepted it.
    token = await stack.login(emails[0], "policy pw 123")
    assert 'id="policy-notice"' in await account_page(stack, token)
    assert (await stack.api.call("POST", "/v1/me/policy-acknowledgement", token=token))[0] \
        == 204
    assert 'id="policy-notice"' not in await account_page(stack, token)
    assert (await stack.api.ok("GET", "/v1/me", token=token))["policy_version_accepted"] == NEW
    await stack.signup("policy-new@example.org", "policy pw 123")
    fresh = await stack.login("policy-new@example.org", "policy pw 123")
    assert 'id="policy-notice"' not in await account_page(stack, fresh)
