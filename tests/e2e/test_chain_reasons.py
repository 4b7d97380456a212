"""Issue 25 item 4: where a node answers and says why it cannot be used as configured (a
wallet holding a spend key, another network, another chain id), /readyz, the watcher's
log line and `gateway doctor` name that reason, in the same words, instead of
"unreachable (ChainError)". Each on its real node: litecoind, anvil, monerod with
monero-wallet-rpc."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from gateway.adapters.db.chain_state import SqlWatchlist
from gateway.bootstrap import Gateway, build
from gateway.config import load
from gateway.watcher import ChainWatcher
from tests.contract.drivers.evm import EvmDriver
from tests.contract.drivers.litecoin import LitecoinDriver
from tests.e2e.conftest import DEFAULT_DB
from tests.support.databases import fresh_database
from tests.support.keys import security_env
from tests.support.monero_nodes import MoneroRegtest
from tests.support.nodes import Anvil, LitecoinRegtest
from tests.support.stack import run_cli


@contextmanager
def gateway_env(tmp_path: Path, coin: dict[str, str]) -> Iterator[dict[str, str]]:
    with fresh_database(DEFAULT_DB, tmp_path) as db_url:
        yield {"GATEWAY_DATABASE__URL": db_url, **security_env(), **coin,
               "GATEWAY_STAFF__LISTEN": ""}


@asynccontextmanager
async def gateway(env: dict[str, str]) -> AsyncIterator[Gateway]:
    gw = build(load(None, env))
    try:
        yield gw
    finally:
        await gw.aclose()


async def says(gw: Gateway, coin: str, caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """What /readyz says of the coin, and the watcher's log line about it."""
    ready, detail = await gw.ops.readiness.readiness()
    assert not ready
    [follower] = gw.chains.followers()
    watcher = ChainWatcher(follower, gw.services.tracker,
                           SqlWatchlist(gw.engine, follower.address_space), retry_delay=0.1)
    caplog.set_level(logging.WARNING, logger="gateway.watcher")
    task = asyncio.create_task(watcher.run())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not [r for r in caplog.records if r.name == "gateway.watcher"]:
            assert asyncio.get_running_loop().time() < deadline, "no watcher log line"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    line = next(r.getMessage() for r in caplog.records if r.name == "gateway.watcher")
    return str(detail["chains"][coin]["status"]), line


async def test_a_node_on_another_network_is_named_by_readyz_the_log_and_doctor(
        litecoin: LitecoinRegtest, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    driver = LitecoinDriver(litecoin)
    await driver.follower.aclose()
    coin = {**driver.coin_env(confirmations=1), "GATEWAY_COINS__LTC__NETWORK": "litecoin"}
    reason = "node is on 'regtest' but the configuration says 'main': payments would never " \
        "be seen"
    with gateway_env(tmp_path, coin) as env:
        async with gateway(env) as gw:
            status, line = await says(gw, "LTC", caplog)
        assert status == reason
        assert line.startswith(f"LTC: {reason}; retrying in")
        done = await asyncio.to_thread(run_cli, env, "doctor")
    assert f"PROBLEM  LTC node: {reason.removeprefix('node ')}" in done.stdout


async def test_a_node_on_another_chain_id_is_named_by_readyz_the_log_and_doctor(
        anvil: Anvil, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    driver = EvmDriver(anvil)
    await driver.follower.aclose()
    coin = {**driver.coin_env(confirmations=1), "GATEWAY_COINS__ETH__CHAIN_ID": "1"}
    reason = (f"node serves chain id {anvil.chain_id}, configured 1: payments would never "
              "be seen")
    with gateway_env(tmp_path, coin) as env:
        async with gateway(env) as gw:
            status, line = await says(gw, "ETH", caplog)
        assert status == reason
        assert line.startswith(f"ETH: {reason}; retrying in")
        done = await asyncio.to_thread(run_cli, env, "doctor")
    assert f"PROBLEM  ETH node: {reason}" in done.stdout


async def test_a_wallet_holding_a_spend_key_is_named_by_readyz_the_log_and_doctor(
        monero: MoneroRegtest, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    address, view, spend = monero.new_keys()
    name = f"full-{address[:12]}"
    # A wallet that can spend, under the name the gateway is configured to open.
    monero.merchant.rpc("generate_from_keys", filename=name, address=address, viewkey=view,
                        spendkey=spend, password="pw", restore_height=monero.height())
    (tmp_path / "view").write_text(view)
    c = "GATEWAY_COINS__XMR__"
    coin = {f"{c}KIND": "monero", f"{c}DAEMON_URL": monero.daemon_url,
            f"{c}WALLET_RPC_URL": monero.merchant.url, f"{c}ADDRESS": address,
            f"{c}VIEW_KEY_FILE": str(tmp_path / "view"), f"{c}WALLET_PASSWORD": "pw",
            f"{c}WALLET_NAME": name, f"{c}RESTORE_HEIGHT": str(monero.height())}
    reason = f"wallet {name!r} holds a spend key: refused (the gateway uses view-only wallets)"
    try:
        with gateway_env(tmp_path, coin) as env:
            async with gateway(env) as gw:
                status, line = await says(gw, "XMR", caplog)
            assert status == reason
            assert line.startswith(f"XMR: {reason}; retrying in")
            done = await asyncio.to_thread(run_cli, env, "doctor")
        assert f"PROBLEM  XMR node: {reason}" in done.stdout
        assert spend not in done.stdout + line and view not in done.stdout + line
    finally:
        try:  # the gateway closed it on finding the spend key; never leave it open
            monero.merchant.rpc("close_wallet")
        except RuntimeError:
            pass
