"""`gateway demo --once` is what `make demo` runs: it must end with a verified activation."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import small_rsa

# Starts nodes of its own (not the session's): not part of the fast gate.
pytestmark = pytest.mark.node


def test_demo_once_ends_with_verified_activation(tmp_path: Path) -> None:
    env = {**os.environ, "BCL_DATA_DIR": str(tmp_path / "bcl"), "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--once", "--timeout", "120"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "webhook verified: invoice.settled" in out
    assert "webhook verified: account.activated" in out
    assert "done: the account was activated" in out
    # Prepaid time: the plan's month starts with the payment.
    assert re.search(r"account acc_\w+ is paid until \d{4}-\d\d-\d\dT[\d:.]+Z", out), out
    assert "@" not in out  # the demo's customer email is printed nowhere
    # Everything it started is stopped and its temporary directory removed.
    assert not list(tmp_path.glob("gateway-demo-*"))


@pytest.mark.parametrize("coin", ["ETH", "USDC", "USDC-L2"])
def test_demo_on_anvil_ends_with_verified_activation(tmp_path: Path, coin: str) -> None:
    """ETH, and a demo USDC token compiled with solcjs and deployed on the demo's anvil;
    USDC-L2: the same on a second network ([networks.L2], another chain id)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--once", "--timeout", "120",
         "--coin", coin], env=env, capture_output=True, text=True, timeout=180, check=False)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"{coin} to 0x" in out and "payment URI: ethereum:" in out
    chain_id = 31338 if "-" in coin else 31337
    assert f"@{chain_id}" in out.partition("payment URI: ")[2].splitlines()[0]
    assert "webhook verified: invoice.settled" in out
    assert "webhook verified: account.activated" in out
    assert "example.invalid" not in out  # the customer's email is printed nowhere
    assert not list(tmp_path.glob("gateway-demo-*"))


def test_demo_on_monero_ends_with_verified_activation(tmp_path: Path) -> None:
    """XMR: monerod regtest, a miner wallet, and the gateway's view-only wallet made from
    keys generated for the run (the spend key never reaches the gateway)."""
    # The demo's wallet-rpcs (and so everything it starts) load the suite's small-RSA
    # library (tests/support/small_rsa.c): it changes only the size of throwaway keys.
    env = {**os.environ, "TMPDIR": str(tmp_path), **small_rsa.environment()}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--once", "--timeout", "150",
         "--coin", "XMR"], env=env, capture_output=True, text=True, timeout=240, check=False)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "XMR to 8" in out and "payment URI: monero:8" in out  # a subaddress
    assert "invoice is processing (0/10 confirmations)" in out  # seen in the pool
    assert "webhook verified: invoice.settled" in out
    assert "webhook verified: account.activated" in out
    assert "example.invalid" not in out
    assert not list(tmp_path.glob("gateway-demo-*"))
