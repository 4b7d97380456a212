"""README "Running it for real", step by step, on real parts: PostgreSQL, litecoind, the
SMTP inbox, the shipped nginx site (TLS 1.3, self-signed certificate for
pay.example.org), the example webhook receiver from docs/examples, and `gateway serve`.
Steps 1 (installing packages), 6 (systemd as PID 1) and the certificate request of step 7
cannot run here; docs/deployment.md says so."""

import asyncio
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.cli import run_gateway
from tests.support.databases import fresh_database
from tests.support.deployment import (
    CONFIG,
    HOSTNAME,
    ROOT,
    Nginx,
    StaticResolver,
    readme_toml,
    substitute,
)
from tests.support.inbox import Inbox
from tests.support.keys import random_xpub
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import GatewayProcess, eventually

EXAMPLE_RECEIVER = ROOT / "docs" / "examples" / "webhook_receiver.py"


def metric_names(exposition: str) -> set[str]:
    """Every series name the exposition can hold: its families by `# TYPE`, with the
    suffixes Prometheus gives counters and histograms."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split()
        names.add(name)
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
    return names


def named_metrics() -> dict[str, set[str]]:
    """Each gateway_* metric named by an alert rule or a dashboard query."""
    rules = yaml.safe_load((CONFIG / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((CONFIG / "grafana" / "gateway-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {"alerts.yml": {n for e in exprs for n in re.findall(r"\bgateway_\w+", e)},
            "gateway-dashboard.json": {n for q in queries
                                       for n in re.findall(r"\bgateway_\w+", q)}}


class ExampleReceiver:
    """docs/examples/webhook_receiver.py as its own process."""

    def __init__(self, tmp: Path, secret: str, port: int) -> None:
        self.port = port
        self.db = tmp / "receiver.sqlite"
        self.log = tmp / "receiver.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(EXAMPLE_RECEIVER), "--port", str(self.port),
                 "--db", str(self.db)], env={**os.environ, "WEBHOOK_SECRET": secret},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def ready(self) -> None:
        def listening() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return "listening" in self.log.read_text() and self.db.exists()
        await eventually(listening, 15, "example receiver up")
        await asyncio.sleep(0.2)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as db:
            return list(db.execute(sql))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_gateway(list(args), {**clean, **env})


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    # The README's machine has PostgreSQL: this test uses it whatever the suite's database.
    with fresh_database("postgresql", tmp_path, migrate=False) as url:
        yield url


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


async def test_running_it_for_real_behind_nginx(
    tmp_path: Path, litecoin: LitecoinRegtest, inbox: Inbox, postgres_url: str,
) -> None:
    etc, var = tmp_path / "etc", tmp_path / "var"
    var.mkdir()
    gateway_port, metrics_port = free_port(), free_port()
    nginx = Nginx(tmp_path / "nginx", gateway_port, free_port(), free_port(), free_port())
    public = f"https://{HOSTNAME}:{nginx.https_port}"

    # Step 2: the database URL and the node's RPC URL in files.
    etc.mkdir(mode=0o700)
    (etc / "database.url").write_text(postgres_url + "\n")
    (etc / "ltc-rpc.url").write_text(litecoin.rpc_url + "\n")
    # Step 3.
    generated = cli({}, "keys", "generate", "--out", str(etc))
    assert generated.returncode == 0, generated.stderr
    # Step 4: the README's TOML. What differs on a test machine: folders, ports, the
    # regtest network, an xpub, a fixed rate instead of exchanges (no internet), the
    # SMTP inbox's port and the receiver on loopback.
    toml = substitute(readme_toml(), {
        "/etc/gateway": str(etc), "/var/lib/gateway": str(var),
        "port = 8080": f"port = {gateway_port}",
        '"127.0.0.1:9464"': f'"127.0.0.1:{metrics_port}"',
        '"https://pay.example.org"': f'"{public}"',
        'network = "litecoin"': 'network = "litecoin-regtest"',
        '"zpub_OF_YOUR_WALLET"': f'"{random_xpub()}"',
        'sources = ["kraken", "bitstamp", "coinbase"]': 'fixed = { LTC-EUR = "80.00" }',
        "port = 25": f"port = {inbox.port}",
        '["10.0.0.0/8"]': '["127.0.0.0/8"]',
    })
    settings = tomllib.loads(toml)
    assert settings["coins"]["LTC"]["kind"] == "utxo" and "vps-small" in settings["plans"]
    config = etc / "gateway.toml"
    config.write_text(toml)
    env = {"GATEWAY_CONFIG": str(config),
           # Only what the test itself needs (README: the default of 1 s, 6 confirmations).
           "GATEWAY_COINS__LTC__POLL_INTERVAL_SECONDS": "0.2",
           "GATEWAY_COINS__LTC__CONFIRMATIONS": "2",
           "GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS": "[0.5]"}

    # Step 5.
    checked = cli(env, "config", "check")
    assert checked.returncode == 0, checked.stderr
    for secret_file in ("session.key", "index.key", "data.keys", "backup.key",
                        "database.url", "ltc-rpc.url"):
        assert f"<file {etc / secret_file}" in checked.stdout, secret_file
        assert (etc / secret_file).read_text().strip() not in checked.stdout
    upgraded = cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr

    # Step 6, without systemd: the same command its ExecStart runs.
    gateway = GatewayProcess({**env, "GATEWAY_SERVER__PORT": str(gateway_port),
                              "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{metrics_port}"},
                             tmp_path / "gateway.log")
    try:
        await gateway.start()
        # Step 7: nginx -t, then nginx (foreground, on loopback ports).
        tested = nginx.check()
        assert tested.returncode == 0, tested.stderr
        nginx.start()
        # Step 8.
        created = cli(env, "apikey", "create", "--name", "provisioning", "--scope",
                      "invoices:write", "--scope", "invoices:read", "--scope",
                      "webhooks:manage", "--scope", "events:read")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        await through_nginx(tmp_path, public, key, nginx, litecoin, env, gateway, inbox)
    finally:
        nginx.stop()
        await gateway.stop()
    log = gateway.log()
    assert key not in log and "Traceback" not in log


async def through_nginx(tmp_path: Path, public: str, key: str, nginx: Nginx,
                        node: LitecoinRegtest, env: dict[str, str],
                        gateway: GatewayProcess, inbox: Inbox) -> None:
    context = ssl.create_default_context(cafile=str(nginx.cert))
    connector = aiohttp.TCPConnector(resolver=StaticResolver(), ssl=context)
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        # The example receiver, with the secret the gateway gave for its endpoint.
        receiver, endpoint = await register_receiver(http, public, auth, tmp_path)
        try:
            # Step 9.
            doctor = cli(env, "doctor")
            assert doctor.returncode == 0, doctor.stdout + doctor.stderr
            said = doctor.stdout
            for part in ("database: answers (postgresql)", "LTC node: answers at height",
                         "LTC node: is on the configured network (regtest)",
                         "accepts the first address of the xpub", "SMTP: 127.0.0.1:",
                         f"webhook {endpoint['id']}"):
                assert part in said, said
            assert "PROBLEM" not in said and said.rstrip().endswith("0 problem(s)")

            await customer_journey(http, public, auth, node, receiver, inbox)
            await proxy_promises(http, public, nginx, context)
            await metrics_exist(http, gateway)
        finally:
            receiver.stop()


async def register_receiver(http: aiohttp.ClientSession, public: str, auth: dict[str, str],
                            tmp_path: Path) -> tuple[ExampleReceiver, dict[str, Any]]:
    # The endpoint is registered first (the secret comes with it), then the receiver
    # starts on the port the URL names; the gateway retries until it answers.
    port = free_port()
    async with http.post(f"{public}/v1/webhook-endpoints", headers=auth, json={
            "url": f"http://127.0.0.1:{port}/hooks",
            "event_types": ["account.activated", "invoice.settled"]}) as resp:
        assert resp.status == 201, await resp.text()
        endpoint = await resp.json()
    receiver = ExampleReceiver(tmp_path, endpoint["secret"], port)
    try:
        await receiver.ready()
    except BaseException:
        receiver.stop()
        raise
    return receiver, endpoint


async def customer_journey(http: aiohttp.ClientSession, public: str, auth: dict[str, str],
                           node: LitecoinRegtest, receiver: ExampleReceiver,
                           inbox: Inbox) -> None:
    origin = {"Origin": public}
    # The portal: sign up, confirm the address with the mailed link (the default with
    # [smtp]), log in, then buy the README's plan.
    async with http.get(f"{public}/signup") as resp:
        assert resp.status == 200
        token = csrf_of(await resp.text())
    email, password = "operator-test@example.org", "a long enough password"
    form = {"csrf": token, "email": email, "password": password, "datacenter": "nl-ams",
            "currency": "EUR"}
    async with http.post(f"{public}/signup", data=form, headers=origin,
                         allow_redirects=False) as resp:
        assert resp.status == 201 and "Check your inbox" in await resp.text()
    [mail] = await inbox.wait(email, 1)
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    link = re.search(r"(https://\S+/verify-email\?token=\S+)", body)
    assert link and link.group(1).startswith(f"{public}/"), body
    async with http.get(link.group(1)) as resp:
        page = await resp.text()
        assert resp.status == 200, page
    confirm = {"csrf": csrf_of(page),
               "token": re.search(r'name="token" value="([^"]+)"', page).group(1)}  # type: ignore[union-attr]
    async with http.post(f"{public}/verify-email", data=confirm, headers=origin) as resp:
        assert resp.status == 200 and "Email address confirmed" in await resp.text()
    async with http.get(f"{public}/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(f"{public}/login", headers=origin, allow_redirects=False, data={
            "csrf": token, "email": email, "password": password}) as resp:
        assert resp.status == 303, await resp.text()
        session = resp.cookies["__Host-session"].value
    cookie = {"Cookie": f"__Host-session={session}"}
    async with http.get(f"{public}/account", headers=cookie) as resp:
        assert resp.status == 200
        page = await resp.text()
        assert "operator-test@example.org" in page
    async with http.post(f"{public}/account/buy", headers={**cookie, **origin},
                         allow_redirects=False, data={"csrf": csrf_of(page),
                                                      "plan": "vps-small", "coin": "LTC"}
                         ) as resp:
        assert resp.status == 303, await resp.text()
        pay_path = resp.headers["Location"]
    invoice_id = pay_path.rsplit("/", 1)[-1]
    assert invoice_id.startswith("inv_")

    # The checkout page and its event stream, through nginx.
    async with http.get(f"{public}/pay/{invoice_id}") as resp:
        assert resp.status == 200
        checkout = await resp.text()
    async with http.get(f"{public}/v1/invoices/{invoice_id}", headers=auth) as resp:
        invoice = await resp.json()
    assert invoice["address"] in checkout and invoice["amount_due"] in checkout
    started = time.monotonic()
    async with http.get(f"{public}/pay/{invoice_id}/events") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(stream.content.readline(), 5)
        assert first.startswith(b"event: status"), first
        assert time.monotonic() - started < 5  # not held back by a proxy buffer
        node.send(invoice["address"], str(Decimal(invoice["amount_due"])))
        node.mine(2)
        seen = b""
        deadline = time.monotonic() + 30
        while b'"settled"' not in seen:
            assert time.monotonic() < deadline, seen[-500:]
            seen += await asyncio.wait_for(stream.content.readline(), 30)

    # The example receiver handled the activation once...
    await eventually(lambda: len(receiver.rows("SELECT * FROM servers")) == 1, 20,
                     "the receiver provisioned the server")
    [(account_id, datacenter, paid_invoice)] = receiver.rows("SELECT * FROM servers")
    assert (datacenter, paid_invoice) == ("nl-ams", invoice_id)
    await eventually(lambda: len(receiver.rows("SELECT * FROM handled")) == 2, 20,
                     "account.activated and invoice.settled recorded")
    handled = dict(receiver.rows("SELECT type, webhook_id FROM handled"))
    event_id = handled["account.activated"]
    # ...and a redelivery of the same event (same webhook-id) changes nothing.
    async with http.post(f"{public}/v1/events/{event_id}/redeliver", headers=auth) as resp:
        assert resp.status == 202, await resp.text()

    async def redelivered() -> bool:
        async with http.get(f"{public}/v1/events/{event_id}", headers=auth) as resp:
            doc = await resp.json()
        # Requeued: the same delivery, its attempt count from 0 again, its log kept.
        [delivery] = doc["deliveries"]
        return delivery["status"] == "succeeded" and len(delivery["log"]) == 2

    deadline = time.monotonic() + 20
    while not await redelivered():
        assert time.monotonic() < deadline, "the redelivery was not answered 2xx"
        await asyncio.sleep(0.2)
    assert len(receiver.rows("SELECT * FROM handled")) == 2
    assert receiver.rows("SELECT account_id FROM servers") == [(account_id,)]


async def proxy_promises(http: aiohttp.ClientSession, public: str, nginx: Nginx,
                         context: ssl.SSLContext) -> None:
    # One HSTS header (nginx's), also on nginx's own answers.
    async with http.get(f"{public}/healthz") as resp:
        assert resp.status == 200
        assert resp.headers.getall("Strict-Transport-Security") == [
            "max-age=63072000; includeSubDomains"]
    async with http.post(f"{public}/v1/accounts", data=b"x" * (1024 * 1024 + 1),
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413  # stopped by nginx before the gateway
        assert resp.headers.getall("Strict-Transport-Security")
    # Metrics and readiness are not public, through nginx either.
    async with http.get(f"{public}/metrics") as resp:
        assert resp.status == 404
    # TLS 1.2 is refused.
    old = ssl.create_default_context(cafile=str(nginx.cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                resolver=StaticResolver(), ssl=old)) as legacy, legacy.get(f"{public}/healthz"):
            pass
    # Plain HTTP only redirects.
    async with http.get(f"http://{HOSTNAME}:{nginx.http_port}/signup",
                        allow_redirects=False) as resp:
        assert resp.status == 301
        assert resp.headers["Location"].startswith(f"https://{HOSTNAME}")
    # The host the gateway believes is nginx's configured name, not the client's Host
    # header: a made-up port in it does not make a matching Origin acceptable.
    async with http.get(f"{public}/login") as resp:
        token = csrf_of(await resp.text())
    forged = f"{HOSTNAME}:666"
    async with http.post(f"{public}/login", headers={"Host": forged,
                                                     "Origin": f"https://{forged}"},
                         data={"csrf": token, "email": "nobody@example.org",
                               "password": "wrong password here"},
                         allow_redirects=False) as resp:
        assert resp.status == 403, await resp.text()
        assert resp.headers["Server"] == "nginx"  # no versions named (server_tokens off)
    # The onion listener: plain HTTP, the .onion host believed, no HSTS.
    onion = "a" * 56 + ".onion"
    async with http.get(f"http://127.0.0.1:{nginx.onion_port}/signup",
                        headers={"Host": onion}) as resp:
        assert resp.status == 200
        assert "Strict-Transport-Security" not in resp.headers
        token = csrf_of(await resp.text())
    async with http.post(f"http://127.0.0.1:{nginx.onion_port}/login",
                         headers={"Host": onion, "Origin": f"http://{onion}"},
                         data={"csrf": token, "email": "nobody@example.org",
                               "password": "wrong password here"},
                         allow_redirects=False) as resp:
        # The Origin check passed (a foreign Origin is 403): the login itself fails.
        assert resp.status != 403, await resp.text()


WRITTEN_ELSEWHERE = {
    "gateway_offsite_last_success_timestamp_seconds":
        "config/systemd/gateway-backup-offsite.service",
}


async def metrics_exist(http: aiohttp.ClientSession, gateway: GatewayProcess) -> None:
    """The live /metrics of this gateway holds every metric the alert rules and the
    dashboard name."""
    async with http.get(f"{gateway.ops_url}/metrics") as resp:
        assert resp.status == 200
        exposition = await resp.text()
    exported = metric_names(exposition)
    # Written by the shipped off-site copy for node_exporter's textfile collector, not by
    # the gateway: each must really be written by the file named.
    for name, writer in WRITTEN_ELSEWHERE.items():
        assert name in (ROOT / writer).read_text(), f"{writer} does not write {name}"
    for where, names in named_metrics().items():
        missing = sorted(names - exported - WRITTEN_ELSEWHERE.keys())
        assert not missing, f"{where} names metrics the gateway does not export: {missing}"
    assert 'gateway_chain_node_up{coin="LTC"} 1.0' in exposition
    assert "gateway_outbox_oldest_pending_age_seconds 0.0" in exposition
    rates = re.search(r"^gateway_rates_last_success_timestamp_seconds (\S+)$", exposition,
                      flags=re.M)
    assert rates and float(rates.group(1)) > 0  # an invoice was priced
