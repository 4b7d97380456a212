"""What the nodes say about the configuration (issue 27 items 21 and 23), on real nodes:

- an ERC-20 token's `decimals` has no default; a contract whose `decimals()` differs from
  the configuration (a 6-decimal token configured as 18 would price invoices 10^12 too
  low), or an address without code, stops `gateway serve` with one line, is a problem of
  `gateway config check` and a PROBLEM in `gateway doctor`, and keeps the follower from
  following (`/readyz` names it);
- `gateway doctor` checks an EVM node (chain id, each token's code, decimals and symbol)
  and a Monero node (network, the wallet being view-only and the configured address's)
  as deeply as a UTXO node."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from chains.base import NodeProblem
from chains.evm.adapter import EvmChain, Token
from gateway import families
from gateway.bootstrap import Gateway, build, startup_problems
from gateway.config import load
from gateway.doctor import examine
from tests.support.databases import fresh_database
from tests.support.evm import DeployedToken, compile_tokens, deploy
from tests.support.keys import random_xpub, security_env
from tests.support.monero_nodes import MoneroRegtest
from tests.support.nodes import Anvil
from tests.support.stack import run_cli


@pytest.fixture(scope="module")
def compiled() -> dict[str, str]:
    return compile_tokens()


@pytest.fixture(scope="module")
def t6(anvil: Anvil, compiled: dict[str, str]) -> DeployedToken:
    return deploy(anvil, compiled["NoBoolToken"], "T6", 6, supply=10**30)


def deploy_plain(anvil: Anvil, bytecode: str) -> str:
    txid = anvil.rpc("eth_sendTransaction", {"from": anvil.accounts[0],
                                             "data": "0x" + bytecode, "gas": hex(1_000_000)})
    anvil.mine(1)
    return str(anvil.rpc("eth_getTransactionReceipt", txid)["contractAddress"])


def evm_env(anvil: Anvil, token: str, decimals: str | None, chain_id: int | None = None
            ) -> dict[str, str]:
    env = {"GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__RPC_URL": anvil.rpc_url,
           "GATEWAY_COINS__ETH__CHAIN_ID": str(chain_id or anvil.chain_id),
           "GATEWAY_COINS__ETH__XPUB": random_xpub(),
           "GATEWAY_COINS__T6__KIND": "evm", "GATEWAY_COINS__T6__NODE": "ETH",
           "GATEWAY_COINS__T6__CONTRACT": token}
    if decimals is not None:
        env["GATEWAY_COINS__T6__DECIMALS"] = decimals
    return env


@contextmanager
def gateway_env(tmp_path: Path, coin: dict[str, str]) -> Iterator[dict[str, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with fresh_database("sqlite", tmp_path) as db_url:
        yield {"GATEWAY_DATABASE__URL": db_url, **security_env(), **coin,
               "GATEWAY_STAFF__LISTEN": "", "GATEWAY_SERVER__METRICS_LISTEN": ""}


@asynccontextmanager
async def gateway(env: dict[str, str]) -> AsyncIterator[Gateway]:
    gw = build(load(None, env))
    try:
        yield gw
    finally:
        await gw.aclose()


async def doctor_lines(env: dict[str, str], part: str) -> list[str]:
    async with gateway(env) as gw:
        return [f.line() for f in await examine(gw) if f.part == part]


def test_a_token_without_decimals_is_refused_with_one_line(tmp_path: Path) -> None:
    family = families.get("evm")
    with pytest.raises(ValueError, match="a token needs decimals"):
        family.settings.model_validate({"kind": "evm", "node": "ETH",
                                        "contract": "0x" + "11" * 20})
    env = {"GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", **security_env(),
           "GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__CHAIN_ID": "1",
           "GATEWAY_COINS__ETH__RPC_URL": "http://127.0.0.1:1",
           "GATEWAY_COINS__ETH__XPUB": random_xpub(),
           "GATEWAY_COINS__USDC__KIND": "evm", "GATEWAY_COINS__USDC__NODE": "ETH",
           "GATEWAY_COINS__USDC__CONTRACT": "0x" + "11" * 20}
    done = run_cli(env, "config", "check")
    assert done.returncode == 2, done.stdout + done.stderr
    problems = [ln for ln in (done.stdout + done.stderr).splitlines() if "decimals" in ln]
    assert len(problems) == 1 and "coins.USDC" in problems[0], done.stdout + done.stderr


async def test_serve_refuses_a_token_whose_contract_has_other_decimals(
        anvil: Anvil, t6: DeployedToken, tmp_path: Path) -> None:
    with gateway_env(tmp_path, evm_env(anvil, t6.address, "18")) as env:
        fatal, warnings = await startup_problems(load(None, env))
        assert warnings == []
        expected = (f"ETH/T6 node: T6: contract {t6.address} says decimals 6, the "
                    "configuration says 18: every invoice would be priced 10^12 off; set "
                    "coins.T6.decimals = 6")
        assert fatal == [expected]
        done = await asyncio.to_thread(run_cli, env, "serve")
        checked = await asyncio.to_thread(run_cli, env, "config", "check")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"gateway: {expected}"]
    assert checked.returncode == 2
    assert f"problem: {expected}" in checked.stderr.splitlines(), checked.stderr


async def test_the_follower_follows_nothing_while_decimals_disagree(
        anvil: Anvil, t6: DeployedToken, compiled: dict[str, str]) -> None:
    wrong = EvmChain("ETH", anvil.rpc_url, chain_id=anvil.chain_id, xpub=random_xpub(),
                     tokens=[Token("T6", t6.address, 18)], poll_interval=0.05)
    right = EvmChain("ETH", anvil.rpc_url, chain_id=anvil.chain_id, xpub=random_xpub(),
                     tokens=[Token("T6", t6.address, 6)], poll_interval=0.05)
    try:
        with pytest.raises(NodeProblem, match="says decimals 6, the configuration says 18"):
            await wrong.tip()
        with pytest.raises(NodeProblem, match="says decimals 6"):
            await anext(wrong.follow(await right.tip(), set()))
        await right.check_configuration()
        # A contract that is no token: it has code, and no decimals().
        forwarder = deploy_plain(anvil, compiled["Forwarder"])
        not_token = EvmChain("ETH", anvil.rpc_url, chain_id=anvil.chain_id,
                             xpub=random_xpub(), tokens=[Token("T6", forwarder, 6)])
        with pytest.raises(NodeProblem, match=r"does not answer decimals\(\): is it an "
                           "ERC-20 token"):
            await not_token.check_configuration()
        await not_token.aclose()
    finally:
        await wrong.aclose()
        await right.aclose()


async def test_serve_starts_and_warns_when_the_node_cannot_be_asked() -> None:
    env = {"GATEWAY_DATABASE__URL": "sqlite+aiosqlite:///unused.db", **security_env(),
           "GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__CHAIN_ID": "1",
           "GATEWAY_COINS__ETH__RPC_URL": "http://127.0.0.1:9",
           "GATEWAY_COINS__ETH__XPUB": random_xpub()}
    fatal, warnings = await startup_problems(load(None, env))
    assert fatal == [] and len(warnings) == 1
    assert warnings[0].startswith("ETH node: configuration not checked (unreachable")


async def test_doctor_checks_each_token_of_an_evm_node(
        anvil: Anvil, t6: DeployedToken, tmp_path: Path) -> None:
    with gateway_env(tmp_path, evm_env(anvil, t6.address, "6")) as env:
        good = await doctor_lines(env, "ETH/T6 node")
    assert all(line.startswith("ok") for line in good), good
    assert any(f"is on the configured network (chain id {anvil.chain_id})" in line
               for line in good), good
    assert any(f"T6: contract {t6.address} has code, symbol() 'T6', decimals() 6 as "
               "configured" in line for line in good), good
    assert any("the xpub's first address is 0x" in line for line in good), good
    assert not any("offers no network or address check" in line for line in good)

    with gateway_env(tmp_path / "wrong", evm_env(anvil, t6.address, "18")) as env:
        wrong = await doctor_lines(env, "ETH/T6 node")
    assert [ln for ln in wrong if ln.startswith("PROBLEM")] == [
        f"PROBLEM  ETH/T6 node: T6: contract {t6.address} says decimals 6, the configuration "
        "says 18: every invoice would be priced 10^12 off; set coins.T6.decimals = 6"]

    nowhere = "0x" + "5a" * 20
    with gateway_env(tmp_path / "nowhere", evm_env(anvil, nowhere, "6")) as env:
        empty = await doctor_lines(env, "ETH/T6 node")
    assert any(ln.startswith("PROBLEM") and "has no code on chain id" in ln
               for ln in empty), empty


async def test_doctor_checks_a_monero_wallet_and_network(
        monero: MoneroRegtest, tmp_path: Path) -> None:
    address, view, _spend = monero.new_keys()
    (tmp_path / "view").write_text(view)
    c = "GATEWAY_COINS__XMR__"
    coin = {f"{c}KIND": "monero", f"{c}DAEMON_URL": monero.daemon_url,
            f"{c}WALLET_RPC_URL": monero.merchant.url, f"{c}ADDRESS": address,
            f"{c}VIEW_KEY_FILE": str(tmp_path / "view"), f"{c}WALLET_PASSWORD": "pw",
            f"{c}WALLET_NAME": f"doctor-{address[:12]}",
            f"{c}RESTORE_HEIGHT": str(monero.height())}
    # The view-only wallet as a running gateway leaves it (created from the view key).
    monero.merchant.rpc("generate_from_keys", filename=f"doctor-{address[:12]}",
                        address=address, viewkey=view, password="pw",
                        restore_height=monero.height())
    try:
        with gateway_env(tmp_path, coin) as env:
            lines = await doctor_lines(env, "XMR node")
        assert all(line.startswith("ok") for line in lines), lines
        said = "\n".join(lines)
        assert "is on the configured network (fakechain)" in said
        assert "the open wallet is view-only (no spend key)" in said
        assert f"the open wallet's primary address is the configured one ({address[:12]}" \
            in said
        assert "offers no network or address check" not in said and view not in said
    finally:
        try:
            monero.merchant.rpc("close_wallet")
        except RuntimeError:
            pass

    stagenet = "5" + address[1:]  # a primary address of another network, by its prefix
    with gateway_env(tmp_path / "stagenet", {**coin, f"{c}ADDRESS": stagenet}) as env:
        lines = await doctor_lines(env, "XMR node")
    assert "PROBLEM  XMR node: is on 'fakechain' but the configuration says 'stagenet': " \
        "payments would never be seen" in lines, lines
