"""Refunds: the service, the chains' part behind its port, the customer's proof (password
and second factor, throttled like every password check)."""

from decimal import Decimal

from gateway.adapters.refund_chains import FollowerRefunds
from gateway.bootstrap.accounts import AccountsArea
from gateway.bootstrap.billing import BillingArea, build_rates
from gateway.bootstrap.chains import ChainsArea
from gateway.bootstrap.core import Core, Credentials
from gateway.services.attempts import PasswordCheck
from gateway.services.ports.refunds import RefundPolicy
from gateway.services.refunds import PasswordAndCode, RefundService


def refund_policy(core: Core, chains: ChainsArea) -> RefundPolicy:
    cfg, directory = core.settings.refunds, chains.directory
    minimums = {coin: int((amount * (Decimal(10) ** directory.decimals(coin))).to_integral_value())
                for coin, amount in cfg.minimum.items() if coin in directory.coins()}
    return RefundPolicy(minimums, cfg.second_approval_above)


def build_refunds(core: Core, creds: Credentials, accounts: AccountsArea,
                  chains: ChainsArea, billing: BillingArea) -> RefundService:
    uow = core.make_uow
    proof = PasswordAndCode(
        uow, PasswordCheck(uow, creds.passwords, core.index, creds.attempts),
        accounts.two_factor)
    return RefundService(
        uow, chains=FollowerRefunds(chains.directory), directory=chains.directory,
        rates=build_rates(core.settings, core.clock, billing.rates_http), proof=proof,
        policy=refund_policy(core, chains), clock=core.clock)
