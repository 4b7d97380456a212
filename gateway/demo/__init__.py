"""`gateway demo`: the whole flow on a local node (Litecoin regtest, anvil for
`--coin ETH` / `--coin USDC`, or monerod regtest with a view-only wallet for `--coin XMR`),
SQLite and a webhook receiver, all started here and stopped
on exit. Nothing is written outside a temporary
directory; every key is generated for this run only."""

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway.demo.node import LitecoinRegtest, NodeMissing, free_port
from webhooks import signing

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

COINS = ("LTC", "ETH", "USDC", "XMR")
MINE_EVERY_SECONDS = 2.0  # after the walkthrough: blocks while a payment waits
PLANS = {
    "vps-small": {"price": "9.99", "currency": "EUR", "description": "1 vCPU, 1 GB RAM",
                  "prices": {"USD": "10.99"}, "period": "1 month"},
    "vps-large": {"price": "29.99", "currency": "EUR", "description": "4 vCPU, 8 GB RAM",
                  "prices": {"USD": "32.99"}, "period": "1 month"},
}


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def merchant_xpub(workdir: Path) -> str:
    """A throwaway BIP84 account key for this run; only its xpub reaches the gateway."""
    os.environ.setdefault("BCL_DATA_DIR", str(workdir / "bitcoinlib"))
    from bitcoinlib.keys import HDKey

    account = HDKey(witness_type="segwit", network="litecoin").key_for_path("m/84'/2'/0'")
    return str(account.wif_public())


def demo_environ(workdir: Path, chain: "DemoChain", port: int, metrics_port: int
                 ) -> dict[str, str]:
    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return {
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GATEWAY_SERVER__METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "GATEWAY_STAFF__LISTEN": "",  # no staff console in the demo
        # No mail server in the demo, so no confirmation link: signup logs in at once.
        "GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION": "false",
        "GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'gateway.db'}",
        "GATEWAY_SECURITY__SESSION_KEY": key(),
        "GATEWAY_SECURITY__INDEX_KEY": key(),
        "GATEWAY_SECURITY__DATA_KEYS": json.dumps([f"demo1:{key()}"]),
        **chain.environ(workdir),
        "GATEWAY_PLANS": json.dumps(PLANS),
        "GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": json.dumps(["127.0.0.0/8"]),
    }


def write_cli_config(node: LitecoinRegtest) -> str:
    """A litecoin.conf beside the node's data, so that `litecoin-cli -datadir=...` pays from
    the demo wallet without a password on the command line; returns that command."""
    (node.datadir / "litecoin.conf").write_text(
        f"[regtest]\nrpcuser={node.user}\nrpcpassword={node.password}\n"
        f"rpcport={node.rpc_port}\n")
    (node.datadir / "litecoin.conf").chmod(0o600)
    return f"litecoin-cli -regtest -datadir={node.datadir} -rpcwallet=customer sendtoaddress"


class LitecoinChain:
    coin, confirmations = "LTC", 6
    pool_visible = True  # a payment shows in the mempool before its block

    def __init__(self, workdir: Path) -> None:
        self.node = LitecoinRegtest(workdir / "litecoin")

    def start(self) -> None:
        self.node.start()
        self.node.create_wallet("customer")
        self.node.mine(101)
        say(f"Litecoin regtest node on 127.0.0.1:{self.node.rpc_port}, 101 blocks mined")

    def environ(self, workdir: Path) -> dict[str, str]:
        return {"GATEWAY_COINS__LTC__KIND": "utxo",
                "GATEWAY_COINS__LTC__NETWORK": "litecoin-regtest",
                "GATEWAY_COINS__LTC__RPC_URL": self.node.rpc_url,
                "GATEWAY_COINS__LTC__XPUB": merchant_xpub(workdir),
                "GATEWAY_COINS__LTC__CONFIRMATIONS": str(self.confirmations),
                "GATEWAY_RATES__FIXED": json.dumps({"LTC-EUR": "80.00", "LTC-USD": "86.00"})}

    def pay(self, invoice: dict[str, Any]) -> str:
        return self.node.send(invoice["address"], str(Decimal(invoice["amount_due"])))

    def mine(self, blocks: int = 1) -> None:
        self.node.mine(blocks)

    def pending(self) -> int:
        return int(self.node.rpc("getmempoolinfo")["size"])

    def pay_hint(self) -> str:
        return f"pay from the demo wallet: {write_cli_config(self.node)} <address> <amount>"

    def stop(self) -> None:
        self.node.stop()


class EvmChain:
    """ETH on anvil, or (with a token) a demo stand-in for USDC deployed on it: 6
    decimals, a `transfer` that returns bool, watched by its contract address. With a
    `network` name, the same as a `[networks.<NAME>]` table on an anvil at another chain
    id (NETWORK_CHAIN_ID), its coins ETH-<NAME> and USDC-<NAME>."""

    confirmations = 3

    def __init__(self, workdir: Path, token: bool, network: str | None = None) -> None:
        from gateway.demo.evm import CHAIN_ID, NETWORK_CHAIN_ID, Anvil

        asset = "USDC" if token else "ETH"
        self.coin = f"{asset}-{network}" if network else asset
        self.network = network
        self.pool_visible = not token
        self.node = Anvil(workdir / "anvil", NETWORK_CHAIN_ID if network else CHAIN_ID)
        self.contract: str | None = None
        self._token = token

    def start(self) -> None:
        from gateway.demo.evm import compile_tokens

        self.node.start()
        say(f"anvil (Ethereum dev node) on 127.0.0.1:{self.node.port}, automine off")
        if self._token:
            code = compile_tokens()["BoolToken"]
            self.contract = self.node.deploy_token(code, "USDC", 6, 10**18)
            say(f"demo USDC (6 decimals) compiled with solcjs and deployed at {self.contract}")

    def _network_environ(self) -> dict[str, str]:
        from gateway.demo.evm import throwaway_xpub

        n = f"GATEWAY_NETWORKS__{self.network}__"
        env = {f"{n}KIND": "evm", f"{n}NAME": f"Demo network {self.network}",
               f"{n}RPC_URL": self.node.rpc_url, f"{n}CHAIN_ID": str(self.node.chain_id),
               f"{n}XPUB": throwaway_xpub(), f"{n}CONFIRMATIONS": str(self.confirmations),
               f"{n}POLL_INTERVAL_SECONDS": "0.5"}
        if self.contract is not None:
            env |= {f"{n}TOKENS__USDC__CONTRACT": self.contract,
                    f"{n}TOKENS__USDC__DECIMALS": "6", f"{n}TOKENS__USDC__SYMBOL": "USDC"}
        return env

    def environ(self, workdir: Path) -> dict[str, str]:
        from gateway.demo.evm import CHAIN_ID, throwaway_xpub

        if self.network is not None:  # priced as their assets: ETH, USDC
            return self._network_environ() | {"GATEWAY_RATES__FIXED": json.dumps({
                "ETH-EUR": "2000.00", "ETH-USD": "2150.00",
                "USDC-EUR": "0.92", "USDC-USD": "1.00"})}
        env = {"GATEWAY_COINS__ETH__KIND": "evm",
               "GATEWAY_COINS__ETH__RPC_URL": self.node.rpc_url,
               "GATEWAY_COINS__ETH__CHAIN_ID": str(CHAIN_ID),
               "GATEWAY_COINS__ETH__XPUB": throwaway_xpub(),
               "GATEWAY_COINS__ETH__CONFIRMATIONS": str(self.confirmations),
               "GATEWAY_COINS__ETH__POLL_INTERVAL_SECONDS": "0.5",
               "GATEWAY_RATES__FIXED": json.dumps({
                   "ETH-EUR": "2000.00", "ETH-USD": "2150.00",
                   "USDC-EUR": "0.92", "USDC-USD": "1.00"})}
        if self.contract is not None:
            env |= {"GATEWAY_COINS__USDC__KIND": "evm", "GATEWAY_COINS__USDC__NODE": "ETH",
                    "GATEWAY_COINS__USDC__CONTRACT": self.contract,
                    "GATEWAY_COINS__USDC__DECIMALS": "6",
                    "GATEWAY_COINS__USDC__CONFIRMATIONS": str(self.confirmations)}
        return env

    def pay(self, invoice: dict[str, Any]) -> str:
        amount = int(invoice["amount_due_base_units"])
        if self.contract is not None:
            return self.node.send_token(self.contract, invoice["address"], amount)
        return self.node.send(invoice["address"], amount)

    def mine(self, blocks: int = 1) -> None:
        self.node.mine(blocks)

    def pending(self) -> int:
        return self.node.pending()

    def pay_hint(self) -> str:
        return (f"pay from anvil's first account (cast send, or any wallet on "
                f"{self.node.rpc_url}, chain id {self.node.chain_id}; the key is anvil's "
                "public test key)")

    def stop(self) -> None:
        self.node.stop()


class MoneroChain:
    """XMR on a monerod regtest: a miner wallet pays, and the gateway watches through a
    view-only wallet in its own monero-wallet-rpc, made from keys generated for this run
    (the spend key is dropped at once; the gateway never sees it)."""

    coin, confirmations, pool_visible = "XMR", 10, True

    def __init__(self, workdir: Path) -> None:
        from gateway.demo.monero import MoneroRegtest

        self.node = MoneroRegtest(workdir / "monero")
        self.secrets = workdir / "monero-secrets"
        self.address, self.restore_height = "", 0

    def start(self) -> None:
        self.node.start_all()
        say(f"monerod regtest on 127.0.0.1:{self.node.rpc_port}, 100 blocks mined; "
            f"the gateway's wallet-rpc on 127.0.0.1:{self.node.merchant.port}")
        self.address, view_key, _spend_key = self.node.new_keys()
        self.restore_height = self.node.height()
        self.secrets.mkdir(mode=0o700)
        for name, value in (("view_key", view_key),
                            ("wallet_password", secrets.token_urlsafe(16))):
            path = self.secrets / name
            path.write_text(value + "\n")
            path.chmod(0o600)

    def environ(self, workdir: Path) -> dict[str, str]:
        c = "GATEWAY_COINS__XMR__"
        return {f"{c}KIND": "monero", f"{c}DAEMON_URL": self.node.daemon_url,
                f"{c}WALLET_RPC_URL": self.node.merchant.url, f"{c}ADDRESS": self.address,
                f"{c}VIEW_KEY_FILE": str(self.secrets / "view_key"),
                f"{c}WALLET_PASSWORD_FILE": str(self.secrets / "wallet_password"),
                f"{c}RESTORE_HEIGHT": str(self.restore_height),
                f"{c}POLL_INTERVAL_SECONDS": "0.5",
                f"{c}CONFIRMATIONS": str(self.confirmations),
                "GATEWAY_RATES__FIXED": json.dumps({"XMR-EUR": "150.00",
                                                    "XMR-USD": "160.00"})}

    def pay(self, invoice: dict[str, Any]) -> str:
        return self.node.pay([(invoice["address"], int(invoice["amount_due_base_units"]))])

    def mine(self, blocks: int = 1) -> None:
        self.node.mine(blocks)

    def pending(self) -> int:
        return len(self.node.pool())

    def pay_hint(self) -> str:
        return (f"pay from the demo's miner wallet (monero-wallet-rpc on "
                f"{self.node.miner.url}, method transfer)")

    def stop(self) -> None:
        self.node.stop_all()


DemoChain = LitecoinChain | EvmChain | MoneroChain


def demo_chain(coin: str, workdir: Path) -> DemoChain:
    if coin == "LTC":
        return LitecoinChain(workdir)
    asset, _, network = coin.partition("-")
    if asset in ("ETH", "USDC"):  # USDC-<NAME>: a [networks.<NAME>] of the EVM family
        return EvmChain(workdir, token=asset == "USDC", network=network or None)
    if coin == "XMR":
        return MoneroChain(workdir)
    raise RuntimeError(f"--coin must be one of {', '.join(COINS)}, or ETH-<NETWORK> / "
                       "USDC-<NETWORK>")


async def mine_while_paying(chain: DemoChain) -> None:
    """Stands in for the network's miners after the walkthrough: when a transaction waits
    in the mempool, mine a block every few seconds until it has its confirmations, so an
    invoice paid from the browser's checkout page settles."""
    pending = 0
    while True:
        await asyncio.sleep(MINE_EVERY_SECONDS)
        try:
            if await asyncio.to_thread(chain.pending) > 0:
                pending = chain.confirmations
            if pending > 0:
                await asyncio.to_thread(chain.mine, 1)
                pending -= 1
        except (OSError, RuntimeError) as exc:  # the node is stopping with us
            say(f"miner paused: {type(exc).__name__}")


class Receiver:
    """A provisioning system stand-in: verifies every delivery before believing it."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.secret is None:
            return web.Response(status=503)
        try:
            signing.verify(self.secret, dict(request.headers), body, int(time.time()))
        except signing.SignatureError as exc:
            say(f"webhook REJECTED: {exc}")
            return web.Response(status=400)
        doc = json.loads(body)
        doc["_id"] = request.headers["webhook-id"]
        await self.events.put(doc)
        return web.Response(status=204)


async def _flow(once: bool, timeout: float, coin: str = "LTC") -> int:  # noqa: ASYNC109
    from gateway import logs

    logs.configure("WARNING")
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:
        workdir = Path(tmp)
        chain = demo_chain(coin, workdir)
        try:
            chain.start()
        except NodeMissing as exc:
            say(f"cannot start the {coin} node: {exc}")
            chain.stop()
            return 1
        runners: list[web.AppRunner] = []
        try:
            base, gw = await _serve_gateway(workdir, chain, runners)
            receiver, hook_port = await _serve_receiver(runners)
            created = await gw.services.api_keys.create(
                "demo-provisioning",
                ["invoices:write", "invoices:read", "webhooks:manage"],
            )
            auth = {"Authorization": f"Bearer {created.secret}"}
            say(f"API key {created.record.id} created (printed nowhere; only its hash is stored)")
            result, invoice_id = await asyncio.wait_for(
                _walkthrough(base, auth, receiver, chain, hook_port, once), timeout
            )
            if not once:
                await _keep_serving(base, chain, invoice_id)
            return result
        except TimeoutError:
            say(f"timed out after {timeout:.0f}s before account.activated was received")
            return 1
        finally:
            for r in reversed(runners):
                await r.cleanup()
            chain.stop()


async def _serve_gateway(workdir: Path, chain: DemoChain,
                         runners: list[web.AppRunner]) -> "tuple[str, Gateway]":
    """A migrated SQLite database in `workdir` and the gateway serving it on loopback."""
    from alembic import command

    from gateway.adapters.db.engine import alembic_config
    from gateway.bootstrap import build, build_app
    from gateway.config import load

    port, metrics_port = free_port(), free_port()
    settings = load(None, {**os.environ, **demo_environ(workdir, chain, port, metrics_port)})
    await asyncio.to_thread(command.upgrade, alembic_config(settings.database.url), "head")
    gw = build(settings)
    runner = web.AppRunner(build_app(gw), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runners.append(runner)
    base = f"http://127.0.0.1:{port}"
    say(f"gateway on {base} (SQLite in a temporary directory); /metrics and /readyz "
        f"on http://127.0.0.1:{metrics_port}")
    return base, gw


async def _serve_receiver(runners: list[web.AppRunner]) -> tuple[Receiver, int]:
    receiver = Receiver()
    hook_app = web.Application()
    hook_app.router.add_post("/hooks", receiver.handle)
    hook_runner = web.AppRunner(hook_app, access_log=None)
    await hook_runner.setup()
    hook_port = free_port()
    await web.TCPSite(hook_runner, "127.0.0.1", hook_port).start()
    runners.append(hook_runner)
    say(f"webhook receiver on http://127.0.0.1:{hook_port}/hooks")
    return receiver, hook_port


async def _keep_serving(base: str, chain: DemoChain, invoice_id: str) -> None:
    """After the walkthrough: serve (mining while payments wait) until interrupted."""
    pay_hint = chain.pay_hint()
    miner = asyncio.create_task(mine_while_paying(chain))
    say(f"the gateway keeps running at {base}; press Ctrl-C to stop")
    say(f"portal: {base}/signup (sign up, choose a plan and a coin, pay)")
    say(f"log in: {base}/login")
    say(f"checkout page of the demo invoice: {base}/pay/{invoice_id}")
    say(pay_hint)
    say(f"blocks are mined every {MINE_EVERY_SECONDS:.0f} s while a payment waits "
        f"({chain.confirmations} confirmations settle an invoice)")
    try:
        await _until_interrupted()
    finally:
        miner.cancel()
        await asyncio.gather(miner, return_exceptions=True)


async def _walkthrough(
    base: str, auth: dict[str, str], receiver: Receiver, chain: DemoChain,
    hook_port: int, once: bool,
) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        account, invoice = await _sign_up_and_invoice(http, base, auth, receiver, chain,
                                                      hook_port)
        txid = chain.pay(invoice)
        say(f"paid from the node's wallet: txid {txid}")
        await _follow_until_activated(http, base, auth, receiver, chain, account, invoice)
        say("done: the account was activated by a verified, signed webhook")
        return 0, str(invoice["id"])


async def _sign_up_and_invoice(
    http: aiohttp.ClientSession, base: str, auth: dict[str, str], receiver: Receiver,
    chain: DemoChain, hook_port: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The integrator's side: a webhook endpoint, a customer's signup, an invoice."""
    async with http.post(f"{base}/v1/webhook-endpoints", headers=auth, json={
        "url": f"http://127.0.0.1:{hook_port}/hooks", "description": "demo receiver",
    }) as resp:
        endpoint = await _ok(resp)
    receiver.secret = endpoint["secret"]
    say(f"webhook endpoint {endpoint['id']} registered")

    email = f"demo-{secrets.token_hex(4)}@example.invalid"
    async with http.post(f"{base}/v1/accounts", json={
        "email": email, "password": secrets.token_urlsafe(16), "datacenter": "is-rey",
    }) as resp:
        account = await _ok(resp)
    say(f"account {account['id']} signed up with an email and a password only")

    async with http.post(f"{base}/v1/invoices", headers=auth, json={
        "account_id": account["id"], "price": {"amount": "9.99", "currency": "EUR"},
        "coin": chain.coin, "metadata": {"plan": "vps-small"},
    }) as resp:
        invoice = await _ok(resp)
    say(f"invoice {invoice['id']}: pay {invoice['amount_due']} {chain.coin} "
        f"to {invoice['address']}")
    say(f"payment URI: {invoice['payment_uri']}")
    return account, invoice


async def _follow_until_activated(
    http: aiohttp.ClientSession, base: str, auth: dict[str, str], receiver: Receiver,
    chain: DemoChain, account: dict[str, Any], invoice: dict[str, Any],
) -> None:
    """Say every change of the invoice and every verified webhook, mining while the
    payment waits for confirmations, until `account.activated` arrives."""
    status = invoice["status"]
    confirmations = -1
    activated = False
    while not activated:
        async with http.get(f"{base}/v1/invoices/{invoice['id']}", headers=auth) as resp:
            current = await _ok(resp)
        conf = max((p["confirmations"] for p in current["payments"]), default=0)
        if current["status"] != status or conf != confirmations:
            status, confirmations = current["status"], conf
            say(f"invoice is {status} ({conf}/{current['confirmations_required']} "
                "confirmations)")
        activated = _say_webhooks(receiver, account)
        # A token transfer is only seen in a block (no pool matching for logs).
        waiting = status == "processing" or (status == "new" and not chain.pool_visible)
        if waiting or (status == "settled" and not activated):
            if waiting:
                chain.mine(1)
            await asyncio.sleep(1.0)
        else:
            await asyncio.sleep(0.3)


def _say_webhooks(receiver: Receiver, account: dict[str, Any]) -> bool:
    """Say the webhooks verified since the last look; True once the account is active."""
    activated = False
    while not receiver.events.empty():
        event = receiver.events.get_nowait()
        say(f"webhook verified: {event['type']} ({event['_id']})")
        if event["type"] == "account.activated":
            say(f"  data: {json.dumps(event['data'])}")
            say(f"account {account['id']} is paid until "
                f"{event['data'].get('paid_until')} (plan "
                f"{event['data'].get('plan')}, prepaid by the month; the renewal "
                "invoice comes 7 days before)")
            activated = True
    return activated


async def _ok(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    doc: dict[str, Any] = await resp.json(content_type=None)
    if resp.status >= 400:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} {doc.get('detail')}")
    return doc


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    say("stopping")


def run_demo(once: bool = False, timeout: float = 180.0, coin: str = "LTC") -> int:
    try:
        return asyncio.run(_flow(once, timeout, coin))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"gateway demo: {exc}", file=sys.stderr)
        return 1
