"""Assets on networks (issue 33 item 1): one `[networks.NAME]` table per EVM network stands
for the coins `<ASSET>-<NAME>`, beside the single-network `[coins.*]` form of before;
`config check` and start-up refuse a token contract configured twice on one chain and a
coin whose network has no node."""

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from chains.evm.family import EvmSettings
from gateway.bootstrap.chains import build_chains
from gateway.config import ConfigError, Settings, load
from gateway.config_check import check, effective_toml
from gateway.services.rates import AssetRates
from tests.support.keys import random_xpub, security_env

USDC_MAINNET = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


def network(name: str, chain_id: int, xpub: str, tokens: str = "", extra: str = "") -> str:
    return (f'[networks.{name}]\nkind = "evm"\nname = "{name.title()}"\n'
            f'chain_id = {chain_id}\nrpc_url = "http://127.0.0.1:1"\nxpub = "{xpub}"\n'
            f"{extra}{tokens}")


def token(network: str, asset: str, contract: str, decimals: int = 6) -> str:
    return (f"[networks.{network}.tokens.{asset}]\ncontract = \"{contract}\"\n"
            f"decimals = {decimals}\nsymbol = \"{asset}\"\n")


LEGACY = (f'[coins.ETH]\nkind = "evm"\nrpc_url = "http://127.0.0.1:2"\nchain_id = 1\n'
          f'xpub = "{random_xpub()}"\n[coins.USDC]\nkind = "evm"\nnode = "ETH"\n'
          f'contract = "{USDC_MAINNET}"\ndecimals = 6\n')


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/g.db"\n'
                    '[rates]\nfixed = { "ETH-EUR" = "3000", "USDC-EUR" = "0.92" }\n' + text)
    return path


def loaded(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    return load(write(tmp_path, text), security_env() | (env or {}))


def test_a_network_table_stands_for_its_coins_beside_the_old_form(tmp_path: Path) -> None:
    xpub = random_xpub()
    s = loaded(tmp_path, LEGACY + network("BASE", 8453, xpub, token("BASE", "USDC", USDC_BASE),
                                          'finality = "safe"\nblock_seconds = 2\n'))
    assert sorted(s.coins) == ["ETH", "ETH-BASE", "USDC", "USDC-BASE"]
    usdc = s.coins["USDC-BASE"]
    assert isinstance(usdc, EvmSettings)
    assert (usdc.node, usdc.contract, usdc.decimals, usdc.symbol, usdc.asset) == (
        "ETH-BASE", USDC_BASE, 6, "USDC", "USDC")
    native = s.coins["ETH-BASE"]
    assert isinstance(native, EvmSettings)
    assert (native.chain_id, native.network_name, native.finality, native.block_seconds) == (
        8453, "Base", "safe", 2)
    # The old form's coins are as they were: bare codes, their own asset.
    assert s.coins["USDC"].asset is None and s.confirmations("USDC") == 12
    # With a finality tag a block is connected once final: one confirmation settles.
    assert s.confirmations("ETH-BASE") == s.confirmations("USDC-BASE") == 1
    followers = {f.feed: f for f in build_chains(s)}
    assert sorted(followers) == ["ETH", "ETH-BASE"]
    assert followers["ETH-BASE"].coins == ("ETH-BASE", "USDC-BASE")
    assert followers["ETH-BASE"].network_facts("USDC-BASE").name == "Base"  # type: ignore[attr-defined]
    assert followers["ETH"].network_facts("USDC").name == "Ethereum"  # type: ignore[attr-defined]


def test_networks_on_one_key_share_one_address_space(tmp_path: Path) -> None:
    """An EVM address is the same on every chain: index 0 handed out for a Base invoice
    must not be handed out again for an Arbitrum one."""
    xpub, other = random_xpub(), random_xpub()
    s = loaded(tmp_path, network("BASE", 8453, xpub) + network("ARB1", 42161, xpub)
               + network("OP", 10, other))
    spaces = {f.feed: f.address_space for f in build_chains(s)}
    assert spaces["ETH-BASE"] == spaces["ETH-ARB1"] != spaces["ETH-OP"]
    assert spaces["ETH-BASE"].startswith("evm-")
    # Beside the old form on the same key, the old space (named ETH) is the shared one.
    s = loaded(tmp_path, LEGACY.replace('xpub = "', f'xpub = "{xpub}" #', 1)
               + network("BASE", 8453, xpub))
    assert {f.feed: f.address_space for f in build_chains(s)} == {"ETH": "ETH",
                                                                 "ETH-BASE": "ETH"}
    # Two coins of the old form on one key keep the spaces they always drew from.
    twice = LEGACY.replace('xpub = "', f'xpub = "{xpub}" #', 1)
    twice += twice.split("[coins.USDC]")[0].replace("[coins.ETH]", "[coins.ETH2]").replace(
        "chain_id = 1", "chain_id = 5")
    s = loaded(tmp_path, twice + network("BASE", 8453, xpub))
    assert {f.feed: f.address_space for f in build_chains(s)} == {
        "ETH": "ETH", "ETH2": "ETH2", "ETH-BASE": "ETH"}


def test_a_coin_is_priced_as_its_asset(tmp_path: Path) -> None:
    from gateway.adapters.rates import FixedRates

    s = loaded(tmp_path, network("BASE", 8453, random_xpub(), token("BASE", "USDC", USDC_BASE)))
    rates = AssetRates(FixedRates(s.rates.fixed), {c: k.asset for c, k in s.coins.items()
                                                   if k.asset is not None})
    assert asyncio.run(rates.rate("USDC-BASE", "EUR"))[0] == Decimal("0.92")
    assert asyncio.run(rates.rate("ETH-BASE", "EUR"))[0] == Decimal("3000")


def test_a_network_is_set_from_the_environment(tmp_path: Path) -> None:
    s = loaded(tmp_path, network("BASE", 8453, random_xpub(), token("BASE", "USDC", USDC_BASE)),
               {"GATEWAY_NETWORKS__BASE__RPC_URL": "http://127.0.0.1:9999",
                "GATEWAY_NETWORKS__BASE__TOKENS__USDC__DECIMALS": "6"})
    native = s.coins["ETH-BASE"]
    assert isinstance(native, EvmSettings) and native.rpc_url is not None
    assert native.rpc_url.get_secret_value() == "http://127.0.0.1:9999"


@pytest.mark.parametrize(("text", "line"), [
    # The same contract twice on one chain: a payment to it would count for both coins.
    (network("BASE", 8453, random_xpub(), token("BASE", "USDC", USDC_BASE)
             + token("BASE", "USDCX", USDC_BASE.lower())),
     f"coins.USDCX-BASE.contract: {USDC_BASE.lower()} on chain id 8453 is already the "
     "coin USDC-BASE: one token contract on one chain is one coin"),
    (LEGACY + f'[coins.USDC2]\nkind = "evm"\nnode = "ETH"\ncontract = "{USDC_MAINNET}"\n'
              "decimals = 6\n",
     f"coins.USDC2.contract: {USDC_MAINNET} on chain id 1 is already the coin USDC: one "
     "token contract on one chain is one coin"),
    # A coin whose network has no node.
    (LEGACY.replace('node = "ETH"', 'node = "ETC"'),
     "coins.USDC.node: 'ETC' is not an evm native coin: USDC's network has no node"),
    (network("BASE", 8453, random_xpub()).replace('rpc_url = "http://127.0.0.1:1"\n', ""),
     "networks.BASE.rpc_url: is required (each network is followed on its own node, with "
     "its chain id, key and the name customers read)"),
    (network("base", 8453, random_xpub()),
     "networks.base: a network's name is upper-case letters and digits (BASE, ARB1): it "
     "ends its coins' codes (USDC-BASE)"),
    (network("BASE", 8453, random_xpub(), token("BASE", "USDC", USDC_BASE, 99)),
     "networks.BASE.tokens.USDC.decimals: Input should be less than or equal to 77"),
    (network("BASE", 8453, random_xpub(), extra='finality = "soon"\n'),
     "networks.BASE.finality: Input should be 'depth', 'safe' or 'finalized'"),
    (network("BASE", 8453, random_xpub(), extra='finality = "safe"\nconfirmations = 3\n'),
     'networks.BASE.confirmations: counts blocks for finality = "depth"; with finality = '
     "'safe' a payment is final once that block tag reaches its block (remove one of the "
     "two)"),
    (LEGACY.replace("chain_id = 1\n", 'chain_id = 1\nfinality = "safe"\n'),
     "coins.ETH: finality by block tag is for a [networks.*] table; this form counts "
     "confirmations"),
    (network("ARBITRUM", 42161, random_xpub(), token("ARBITRUM", "USDC", USDC_BASE)),
     "networks.ARBITRUM: the coin code ETH-ARBITRUM has 12 characters, at most 10 fit the "
     "database's coin columns: choose a shorter network name (ARB1 rather than ARBITRUM)"),
    (network("BASE", 8453, random_xpub(), extra="blocks = 2\n"),
     "networks.BASE.blocks: is not a known key"),
], ids=[  # the texts hold random keys: ids that are the same in every xdist worker
    "same-contract-network", "same-contract-legacy", "token-without-node", "no-rpc-url",
    "lower-case-name", "decimals-range", "unknown-finality", "finality-and-confirmations",
    "finality-in-legacy", "code-too-long", "unknown-key"])
def test_start_up_and_config_check_refuse_with_one_line(tmp_path: Path, text: str,
                                                        line: str) -> None:
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, text)
    assert str(info.value) == line
    report = check(str(write(tmp_path, text)), security_env())
    assert line in report.problems


def test_the_same_contract_on_two_chains_is_two_coins(tmp_path: Path) -> None:
    """The acceptance's anvils: one token address on two chains, told apart by chain id."""
    text = (network("A", 31337, random_xpub(), token("A", "USDC", USDC_BASE))
            + network("B", 31338, random_xpub(), token("B", "USDC", USDC_BASE)))
    assert {"USDC-A", "USDC-B"} <= set(loaded(tmp_path, text).coins)
    report = check(str(write(tmp_path, text)), security_env())
    assert report.problems == []
    shown = effective_toml(report)
    assert "[coins.USDC-B]" in shown and "http://127.0.0.1:1" not in shown
    assert 'rpc_url = "<in ' in shown  # the secret's source: the network's table
