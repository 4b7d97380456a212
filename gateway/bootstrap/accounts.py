"""Accounts: sign-up and sessions, second factor, recovery and email changes by mailed
link, API keys."""

from dataclasses import dataclass
from datetime import timedelta

from gateway.adapters.tokens import PurposeTokens, SessionTokens, hash_api_key, new_api_key
from gateway.bootstrap.core import Core, Credentials
from gateway.bootstrap.mail import MailArea
from gateway.services.accounts import AccountPolicy, AccountService, email_policy
from gateway.services.api_keys import ApiKeyService
from gateway.services.attempts import PasswordCheck
from gateway.services.email_change import EmailChangeService
from gateway.services.recovery import Links, RecoveryService
from gateway.services.two_factor import SecondFactor, TwoFactorService


@dataclass(frozen=True, kw_only=True)
class AccountsArea:
    accounts: AccountService
    two_factor: TwoFactorService
    recovery: RecoveryService
    email_changes: EmailChangeService
    api_keys: ApiKeyService
    links: Links  # the pages mailed links lead to


def page_links(core: Core) -> Links:
    pages = f"{core.settings.server.public_url}{core.settings.server.path_prefix}"
    return Links(f"{pages}/reset?token=", f"{pages}/verify-email?token=",
                 f"{pages}/email-change?token=", f"{pages}/email-change/undo?token=",
                 f"{pages}/login")


def build_two_factor(core: Core, creds: Credentials) -> TwoFactorService:
    uow = core.make_uow
    return TwoFactorService(
        uow, codes=creds.codes, hasher=creds.passwords,
        factor=SecondFactor(creds.codes, creds.passwords, core.clock), clock=core.clock,
        passwords=PasswordCheck(uow, creds.passwords, core.index, creds.attempts),
        attempts=creds.attempts, reader=core.reader)


def _tokens(core: Core, purpose: str, sealed: bool = False) -> PurposeTokens:
    return PurposeTokens(core.keys.session, core.settings.server.public_url, core.clock,
                         purpose, core.cipher if sealed else None)


def build_accounts(core: Core, creds: Credentials, mail: MailArea) -> AccountsArea:
    settings, uow, clock = core.settings, core.make_uow, core.clock
    sec = settings.security
    two_factor = build_two_factor(core, creds)
    links = page_links(core)
    recovery = RecoveryService(
        uow, mailer=mail.queued, tokens=_tokens(core, "password-reset"),
        passwords=creds.passwords, blind_index=core.index, two_factor=two_factor,
        clock=clock, links=links,
        ttl=timedelta(minutes=settings.accounts.password_reset_minutes),
        verifier=_tokens(core, "verify-email"),
        mails_per_recipient_per_hour=settings.mail.per_recipient_per_hour,
        common_passwords=creds.common, reader=core.reader, catalogs=core.catalogs)
    email_changes = EmailChangeService(
        uow, mailer=mail.queued, confirm=_tokens(core, "email-change", sealed=True),
        undo=_tokens(core, "email-change-undo", sealed=True), blind_index=core.index,
        passwords=creds.passwords, two_factor=two_factor, recovery=recovery, clock=clock,
        links=links, throttle=creds.throttle)
    policy = AccountPolicy(
        tuple(settings.accounts.datacenters), tuple(settings.accounts.currencies),
        settings.privacy.policy_version, timedelta(hours=sec.session_hours),
        timedelta(minutes=sec.session_idle_minutes),
        settings.accounts.require_email_verification)
    accounts = AccountService(
        uow, passwords=creds.passwords, blind_index=core.index,
        tokens=SessionTokens(core.keys.session, settings.server.public_url), clock=clock,
        policy=policy, two_factor=two_factor, throttle=creds.throttle, reader=core.reader,
        email_throttle=email_policy(creds.throttle, sec.login_failures_per_email_per_hour),
        common_passwords=creds.common)
    return AccountsArea(
        accounts=accounts, two_factor=two_factor, recovery=recovery,
        email_changes=email_changes, links=links,
        api_keys=ApiKeyService(uow, clock, new_api_key, hash_api_key, reader=core.reader,
                               cache=core.key_cache))
