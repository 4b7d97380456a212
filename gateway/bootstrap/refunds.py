"""Refunds: the service, the chains' part behind its port, the customer's proof (password
and second factor, throttled like every password check)."""

from gateway.adapters.refund_chains import FollowerRefunds
from gateway.bootstrap.accounts import AccountsArea
from gateway.bootstrap.billing import BillingArea, build_rates
from gateway.bootstrap.chains import ChainsArea
from gateway.bootstrap.core import Core, Credentials
from gateway.services.attempts import PasswordCheck
from gateway.services.ports.refunds import RefundPolicy
from gateway.services.refunds import PasswordAndCode, ProvenRefunds, RefundService


def refund_policy(core: Core, chains: ChainsArea) -> RefundPolicy:
    """`[credit]`: the least refund per coin (base units) and the two-approver threshold
    (minor units of the account's currency)."""
    cfg = core.settings.credit
    return RefundPolicy({coin: cfg.refund_minimum_for(coin)
                         for coin in chains.directory.coins()}, cfg.second_approval_above)


def build_refunds(core: Core, creds: Credentials, accounts: AccountsArea,
                  chains: ChainsArea, billing: BillingArea) -> RefundService:
    uow = core.make_uow
    proof = PasswordAndCode(
        uow, PasswordCheck(uow, creds.passwords, core.index, creds.attempts),
        accounts.two_factor)
    return RefundService(
        uow, chains=_chains(core, chains), directory=chains.directory,
        rates=build_rates(core.settings, core.clock, billing.rates_http), proof=proof,
        policy=refund_policy(core, chains), clock=core.clock, catalogs=core.catalogs)


def build_proven_refunds(core: Core, chains: ChainsArea) -> ProvenRefunds:
    return ProvenRefunds(core.make_uow, _chains(core, chains), core.clock)


def _chains(core: Core, chains: ChainsArea) -> FollowerRefunds:
    return FollowerRefunds(chains.directory, {
        coin: core.settings.confirmations(coin) for coin in chains.directory.coins()})
