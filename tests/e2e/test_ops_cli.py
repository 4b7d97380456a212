"""`gateway config check` and `gateway doctor` against real parts: every problem on a line
of its own, in words an operator understands, and a non-zero exit. (The healthy path is
README "Running it for real", in test_deployment.py.)"""

import asyncio
import json
import os
import ssl
import subprocess
import tomllib
from pathlib import Path

from aiohttp import web

from tests.e2e.conftest import StackFactory
from tests.support.cli import run_gateway
from tests.support.databases import fresh_database
from tests.support.deployment import self_signed
from tests.support.inbox import Inbox, smtp_env
from tests.support.keys import b64key, random_xpub
from tests.support.nodes import LitecoinRegtest, free_port


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_gateway(list(args), {**clean, **env})


def test_config_check_names_every_problem_and_no_secret(tmp_path: Path) -> None:
    session = tmp_path / "session.key"
    session.write_text(b64key())
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[server]
public_url = "https://pay.example.org"
port = 70000

[database]
url = "postgresql+asyncpg://gateway:hunter22@127.0.0.1/gateway"

[security]
session_key_file = "{session}"
index_key_file = "{tmp_path}/missing.key"
data_keys = ["k1:not base64"]

[coins.LTC]
kind = "utxo"
network = "litecoin-regtest"
rpc_url = "http://u:rpcsecret@127.0.0.1:1"
xpub = "{random_xpub()}"

[coins.DOGE]
kind = "dogecoin"
""")
    result = cli({"GATEWAY_CONFIG": str(config)}, "config", "check")
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    said = "\n".join(problems)
    assert f"security.index_key_file: cannot read {tmp_path}/missing.key" in said
    assert "coins.DOGE.kind: 'dogecoin' is not a known chain family" in said
    assert "server.port:" in said and "security.data_keys:" in said
    # The missing file is said once, not again as "index_key: is required".
    assert "security.index_key: is required" not in said
    assert len(problems) == 4, said
    assert "hunter22" not in result.stdout + result.stderr
    assert "rpcsecret" not in result.stdout + result.stderr

    # Fixed, with secrets from files and the environment: the effective configuration,
    # each secret shown as where it comes from, and what works badly together.
    index = tmp_path / "index.key"
    index.write_text(b64key())
    data_key = json.dumps([f"k1:{b64key()}"])
    config.write_text(config.read_text()
                      .replace("port = 70000", "port = 8080")
                      .replace(f"{tmp_path}/missing.key", str(index))
                      .replace('data_keys = ["k1:not base64"]', "")
                      .replace('[coins.DOGE]\nkind = "dogecoin"\n', ""))
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_SECURITY__DATA_KEYS": data_key,
           # No [smtp] here: verification (the default) would be a third problem.
           "GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION": "false"}
    result = cli(env, "config", "check")
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    # https without TLS or a trusted proxy; an LTC coin without any rate.
    assert len(problems) == 2 and result.returncode == 2, result.stderr
    assert "server.trusted_proxies: public_url is https" in problems[0]
    assert "rates: no source and no fixed rate for LTC" in problems[1]

    env["GATEWAY_SERVER__TRUSTED_PROXIES"] = '["127.0.0.1/32"]'
    env["GATEWAY_RATES__FIXED"] = '{"LTC-EUR": "80"}'
    result = cli(env, "config", "check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    tomllib.loads(out)  # the effective configuration is TOML
    assert f'session_key = "<file {session}>"' in out
    assert f'index_key = "<file {index}>"' in out
    assert 'data_keys = "<env GATEWAY_SECURITY__DATA_KEYS>"' in out
    assert 'trusted_proxies = ["127.0.0.1/32"]' in out
    assert "<password written in the file>" in out
    for secret in ("hunter22", "rpcsecret", session.read_text(), index.read_text(),
                   data_key, json.loads(data_key)[0]):
        assert secret not in out + result.stderr
    # Secrets written in the file itself are warned about, not hidden from the operator.
    assert "warning: coins.LTC.rpc_url: the secret is written in" in result.stderr
    assert 'rpc_url = "<in ' in out


async def accept(_request: web.Request) -> web.Response:
    return web.Response()


async def test_doctor_says_what_is_wrong_with_each_part(
    make_stack: StackFactory, litecoin: LitecoinRegtest, inbox: Inbox, tmp_path: Path,
) -> None:
    stack = await make_stack()
    # The stack has a backup key: without a deletion ledger doctor names that a problem.
    env = {**stack.gateway.env,
           "GATEWAY_BACKUP__DELETION_LEDGER": str(tmp_path / "deletion-ledger.txt")}
    # In a thread: the receiver (and the SMTP inbox) answer from this test's event loop.
    healthy = await asyncio.to_thread(cli, {**env, **smtp_env(inbox)}, "doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "ok       LTC node: is on the configured network (regtest)" in healthy.stdout
    assert f"webhook {stack.endpoint['id']}" in healthy.stdout

    # The wrong network for this node, SMTP down, the receiver gone, and an HTTPS
    # receiver whose certificate no one vouches for.
    await stack.receiver.stop()
    cert, key = self_signed(tmp_path, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/hooks", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=context).start()
    https_endpoint = await stack.api.ok("POST", "/v1/webhook-endpoints", {
        "url": f"https://127.0.0.1:{tls_port}/hooks", "event_types": ["invoice.settled"]},
        stack.key)
    closed = free_port()
    result = await asyncio.to_thread(
        cli, {**env, **smtp_env(inbox, GATEWAY_SMTP__PORT=str(closed)),
              "GATEWAY_COINS__LTC__NETWORK": "litecoin"}, "doctor")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    problems = [line for line in lines if line.startswith("PROBLEM")]
    said = "\n".join(problems)
    assert "LTC node: is on 'regtest' but the configuration says 'main'" in said
    assert "LTC node: rejects the first address the xpub derives (ltc1" in said
    assert f"SMTP: 127.0.0.1:{closed}:" in said
    assert f"webhook {stack.endpoint['id']} ({stack.receiver.url}): unreachable" in said
    assert f"webhook {https_endpoint['id']} (https://127.0.0.1:{tls_port}/hooks): its TLS " \
        "certificate is not valid" in said
    assert lines[-1] == f"{len(problems)} problem(s)" and len(problems) == 5, result.stdout
    await runner.cleanup()
    assert any(line.startswith("ok       database: answers") for line in lines)

    # The node unreachable, and a database nobody migrated.
    with fresh_database("sqlite", tmp_path, migrate=False) as empty:
        result = cli({**env, "GATEWAY_DATABASE__URL": empty,
                      "GATEWAY_COINS__LTC__RPC_URL": f"http://u:p@127.0.0.1:{closed}"},
                     "doctor")
    assert result.returncode == 1
    said = result.stdout
    assert "PROBLEM  database: database schema is at nothing" in said
    assert "run `gateway db upgrade`" in said
    assert "PROBLEM  LTC node: unreachable (" in said and "check rpc_url" in said
    assert "PROBLEM  webhook endpoints: not checked" in said
    assert "u:p@" not in said
