"""Chains: one follower per node, built by the family each coin's `kind` names (or
injected by a test), behind one directory; the address spaces' wallet service."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from chains.base import (
    Auditable,
    CoinSettings,
    Follower,
    HasAssets,
    NodeProblem,
    StartupCheckable,
    describe_failure,
)
from gateway import families
from gateway.adapters.chain_directory import ChainDirectory
from gateway.bootstrap.core import Core, Overrides
from gateway.bootstrap.resources import Resource
from gateway.config import Settings
from gateway.services.wallet import WalletService


def build_chains(settings: Settings) -> list[Follower]:
    """One follower per node, built by the family each coin's `kind` names."""
    by_kind: dict[str, dict[str, CoinSettings]] = {}
    for code, coin in settings.coins.items():
        by_kind.setdefault(coin.kind, {})[code] = coin
    followers: list[Follower] = []
    for kind, coins in sorted(by_kind.items()):
        followers.extend(families.get(kind).build(coins))
    return followers


STARTUP_CHECK_SECONDS = 15.0


async def startup_problems(settings: Settings) -> tuple[list[str], list[str]]:
    """What the nodes say about the configuration before `gateway serve` starts: lines
    that must stop the start (a token whose contract says other decimals), and lines that
    only warn (a node that cannot be asked now: its follower checks again when it
    answers, and follows nothing until then). Uses followers of its own, closed after."""
    fatal: list[str] = []
    warnings: list[str] = []
    for follower in build_chains(settings):
        try:
            if isinstance(follower, StartupCheckable):
                part = f"{'/'.join(follower.coins)} node"
                try:
                    await asyncio.wait_for(follower.check_configuration(),
                                           STARTUP_CHECK_SECONDS)
                except NodeProblem as exc:
                    fatal.append(f"{part}: {exc}")
                except Exception as exc:  # down, slow: not a reason to refuse to start
                    warnings.append(f"{part}: configuration not checked ("
                                    f"{describe_failure(exc)}); checked when it answers")
        finally:
            await follower.aclose()
    return fatal, warnings


@dataclass(frozen=True, kw_only=True)
class ChainsArea:
    directory: ChainDirectory
    wallet: WalletService

    def assets(self) -> dict[str, str]:
        """coin -> token contract, for the followers whose coins are tokens."""
        return {coin: follower.asset(coin) for follower in self.directory.followers()
                if isinstance(follower, HasAssets) for coin in follower.coins}

    def auditable(self) -> dict[str, Auditable]:
        """The followers that can answer a reconciliation's questions, by coin."""
        found: dict[str, Auditable] = {}
        for follower in self.directory.followers():
            if isinstance(follower, Auditable):
                for coin in follower.coins:
                    found[coin] = follower
        return found

    def resources(self) -> list[Resource]:
        return [Resource("chain followers", self.directory.aclose)]


def build_chains_area(core: Core, overrides: Overrides) -> ChainsArea:
    nodes: Sequence[Follower] = (list(overrides.chains) if overrides.chains is not None
                                 else build_chains(core.settings))
    directory = ChainDirectory(nodes)
    unconfigured = sorted(set(directory.coins()) - set(core.settings.coins))
    if unconfigured:  # an injected follower serving a coin the configuration lacks
        raise ValueError(f"followers serve coins without a [coins.*] table: {unconfigured}")
    wallet = WalletService(core.make_uow,
                           {c: directory.address_space(c) for c in directory.coins()},
                           reader=core.reader)
    return ChainsArea(directory=directory, wallet=wallet)
