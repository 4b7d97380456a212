"""Token facts from the chain on every network (issue 33 item 3), on two real anvils at
different chain ids with a token at the same address on both: `gateway serve`, `gateway
config check` and `gateway doctor` each give one clear line naming the network's table
for a wrong `decimals` (or `symbol`), a contract with no code, and a node on another chain id, on
whichever network it is; with both right, doctor finds both networks' tokens."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from gateway.bootstrap import build, startup_problems
from gateway.config import load
from gateway.doctor import examine
from tests.support.databases import fresh_database
from tests.support.evm import DeployedToken, compile_tokens, deploy_on_each
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import Anvil
from tests.support.stack import run_cli


@pytest.fixture(scope="module")
def usdc(anvil: Anvil, anvil_b: Anvil) -> DeployedToken:
    return deploy_on_each([anvil, anvil_b], compile_tokens()["NoBoolToken"], "USDC", 6,
                          10**30)


def network_env(name: str, node: Anvil, contract: str, decimals: int = 6,
                chain_id: int | None = None) -> dict[str, str]:
    p = f"GATEWAY_NETWORKS__{name}__"
    return {f"{p}KIND": "evm", f"{p}NAME": f"Network {name}", f"{p}RPC_URL": node.rpc_url,
            f"{p}CHAIN_ID": str(chain_id or node.chain_id), f"{p}XPUB": random_xpub(),
            f"{p}TOKENS__USDC__CONTRACT": contract, f"{p}TOKENS__USDC__DECIMALS": str(decimals),
            f"{p}TOKENS__USDC__SYMBOL": "USDC"}


@contextmanager
def configured(tmp_path: Path, **b: object) -> Iterator[dict[str, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with fresh_database("sqlite", tmp_path) as url:
        yield {"GATEWAY_DATABASE__URL": url, **security_env(),
               "GATEWAY_STAFF__LISTEN": "", "GATEWAY_SERVER__METRICS_LISTEN": "",
               "GATEWAY_RATES__FIXED": '{"ETH-EUR": "3000", "USDC-EUR": "0.92"}', **b}


async def doctor(env: dict[str, str]) -> list[str]:
    gw = build(load(None, env))
    try:
        return [f.line() for f in await examine(gw)]
    finally:
        await gw.aclose()


async def test_both_networks_tokens_are_checked(anvil: Anvil, anvil_b: Anvil,
                                                usdc: DeployedToken, tmp_path: Path) -> None:
    env_b = network_env("B", anvil_b, usdc.address)
    with configured(tmp_path, **network_env("A", anvil, usdc.address), **env_b) as env:
        assert await startup_problems(load(None, env)) == ([], [])
        lines = await doctor(env)
    for name, node in (("A", anvil), ("B", anvil_b)):
        mine = [ln for ln in lines if f"ETH-{name}/USDC-{name} node" in ln]
        assert mine and all(ln.startswith("ok") for ln in mine), lines
        assert any(f"(chain id {node.chain_id})" in ln for ln in mine), mine
        assert any(f"USDC-{name}: contract {usdc.address} has code, symbol() 'USDC', "
                   "decimals() 6 as configured" in ln for ln in mine), mine


@pytest.mark.parametrize("wrong", ["decimals", "symbol", "no code", "chain id"])
async def test_one_line_for_what_is_wrong_on_the_second_network(
        anvil: Anvil, anvil_b: Anvil, usdc: DeployedToken, tmp_path: Path, wrong: str
) -> None:
    nowhere = "0x" + "5b" * 20
    env_b = {
        "decimals": network_env("B", anvil_b, usdc.address, decimals=18),
        "symbol": network_env("B", anvil_b, usdc.address)
        | {"GATEWAY_NETWORKS__B__TOKENS__USDC__SYMBOL": "USDT"},
        "no code": network_env("B", anvil_b, nowhere),
        "chain id": network_env("B", anvil_b, usdc.address, chain_id=1),
    }[wrong]
    line = "ETH-B/USDC-B node: " + {
        "decimals": f"USDC-B: contract {usdc.address} says decimals 6, the configuration "
                    "says 18: every invoice would be priced 10^12 off; set "
                    "networks.B.tokens.USDC.decimals = 6",
        "symbol": f"USDC-B: contract {usdc.address} says symbol 'USDC', the configuration "
                  "says 'USDT': another token at that address, or the wrong network",
        "no code": f"USDC-B: contract {to_checksum_address(nowhere)} has no code on "
                   f"chain id {anvil_b.chain_id}: wrong address or network, payments would "
                   "never be seen",
        "chain id": f"node serves chain id {anvil_b.chain_id}, configured "
                    "1: payments would never be seen",
    }[wrong]
    with configured(tmp_path, **network_env("A", anvil, usdc.address), **env_b) as env:
        assert await startup_problems(load(None, env)) == ([line], [])
        served, checked = await asyncio.gather(asyncio.to_thread(run_cli, env, "serve"),
                                               asyncio.to_thread(run_cli, env, "config",
                                                                 "check"))
        lines = await doctor(env)
    assert served.returncode == 1
    assert served.stderr.strip().splitlines() == [f"gateway: {line}"]
    assert checked.returncode == 2
    assert [ln for ln in checked.stderr.splitlines() if ln.startswith("problem:")] == [
        f"problem: {line}"], checked.stderr
    problems = [ln for ln in lines if ln.startswith("PROBLEM") and " node: " in ln]
    assert len(problems) == 1 and problems[0].endswith(line.partition(": ")[2]), lines
    assert "ETH-B/USDC-B node" in problems[0]
