"""Password reset by mail, and the notices a customer must get about their account."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from gateway.domain.accounts import Account, check_password, email_lookup_form, normalize_email
from gateway.domain.errors import InvalidInput
from gateway.domain.throttle import ThrottlePolicy, after_failure
from gateway.i18n import ENGLISH, N_, Catalogs, Voice
from gateway.services.attempts import network_key, password_key
from gateway.services.errors import Unauthorized
from gateway.services.ports import (
    Clock,
    PasswordHasher,
    Profile,
    RecoveryUnit,
)
from gateway.services.two_factor import TwoFactorService


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        """`notice_for`: the account an inactivity notice warns. A queue that gives the
        mail up undelivered clears the account's notice mark with it."""
        ...


class ResetTokens(Protocol):
    def issue(self, account_id: str, fingerprint: str, ttl: timedelta) -> str: ...

    def read(self, token: str) -> tuple[str, str]:
        """(account id, password fingerprint); raises `Unauthorized` when invalid/expired."""


class SealedTokens(Protocol):
    """Purpose tokens that also carry one value, encrypted (the pending or previous email
    of an email change: readable by nobody but us, not even by decoding the JWT)."""

    def issue(self, account_id: str, fingerprint: str, ttl: timedelta,
              sealed: str | None = None) -> str: ...

    def open(self, token: str) -> tuple[str, str, str]:
        """(account id, fingerprint, sealed value); `Unauthorized` when invalid/expired."""


def fingerprint(password_hash: str, email_index: str) -> str:
    # Bound into reset and email-change links: once the password or the email changes,
    # every earlier link is dead.
    return hashlib.sha256(f"{password_hash}\n{email_index}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Links:
    reset: str  # absolute URLs of the pages; the token is appended
    verify: str = ""
    email_change: str = ""
    email_change_undo: str = ""
    login: str = ""


# Every mail is written in the language the account last chose (`Account.language`),
# through the catalogs the service is given; messages are marked with N_ here and
# translated when the mail is written.
NOTICES = {
    "password_changed": (N_("Your password was changed"),
                         N_("The password of your Packetra account was just changed.\n\n"
                            "If this was not you, reset your password at once and contact "
                            "support.")),
    "totp_disabled": (N_("Two-factor authentication was turned off"),
                      N_("Two-factor authentication was just turned off for your Packetra "
                         "account.\n\nIf this was not you, reset your password at once.")),
}
RESET_SUBJECT = N_("Reset your Packetra password")
RESET_BODY = N_("Someone asked to reset the password of your Packetra account.\n\n"
                "Open this link within %(minutes)s minutes to choose a new one:\n\n"
                "%(link)s\n\n"
                "The link works once. If you did not ask for this, ignore this mail.")
VERIFY_SUBJECT = N_("Confirm your email address")
VERIFY_BODY = N_("Open this link within 24 hours and press its button to confirm the email "
                 "address of your new Packetra account:\n\n%(link)s\n\n"
                 "If you did not sign up, ignore this mail.")
TAKEN_SUBJECT = N_("Someone tried to sign up with your address")
TAKEN_BODY = N_("Someone tried to create a Packetra account with this email address, which "
                "already has one. Nothing was changed.\n\n"
                "If it was you: log in at %(login)s. If you forgot your password, ask for a "
                "reset link there (\"Forgot your password\") or with "
                "POST /v1/password-resets.\n\nIf it was not you, ignore this mail.")


class RecoveryService:
    def __init__(self, uow: Callable[[], RecoveryUnit], *, mailer: Mailer, tokens: ResetTokens,
                 passwords: PasswordHasher, blind_index: "BlindIndexFn",
                 two_factor: TwoFactorService, clock: Clock, links: Links,
                 ttl: timedelta = timedelta(minutes=30),
                 verifier: ResetTokens | None = None,
                 mails_per_recipient_per_hour: int = 5,
                 common_passwords: Callable[[str], bool] | None = None,
                 reader: Callable[[], RecoveryUnit] | None = None,
                 catalogs: Catalogs = ENGLISH) -> None:
        self._uow = uow
        self._catalogs = catalogs
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._mailer = mailer
        self._tokens = tokens
        self._passwords = passwords
        self._index = blind_index
        self._two_factor = two_factor
        self._clock = clock
        self._links = links
        self._ttl = ttl
        self._verifier = verifier or tokens
        self._common = common_passwords
        self._mails_per_hour = mails_per_recipient_per_hour
        self._mail_policy = ThrottlePolicy(free_failures=mails_per_recipient_per_hour,
                                           max_failures_per_window=mails_per_recipient_per_hour)

    def voice(self, language: str | None) -> Voice:
        """The catalog and formats a mail to an account in `language` is written with."""
        return self._catalogs.voice(language)

    async def may_mail(self, email: str) -> bool:
        """Whether one more of the mails anyone can cause (reset and confirmation links,
        sign-up and email-change notices) may go to this address this hour. Counted in
        the login-throttle table under a blind index, like failed logins; past the limit
        the mail is silently not sent, so the answer stays the same."""
        key = self._index("mail:" + email_lookup_form(email))
        now = self._clock()
        async with self._uow() as uow:
            state = await uow.throttle.get(key)
            await uow.throttle.put(key, after_failure(state, now, self._mail_policy))
            # Judged on the count read back after ours is in (the row is ours until
            # commit): requests racing on an address's first mail all found no row, and
            # judging on what they read let every one of them through (PostgreSQL).
            counted = await uow.throttle.get(key)
            await uow.commit()
        return counted is not None and counted.failures <= self._mails_per_hour

    async def request_reset(self, email: str) -> None:
        """The same answer and (nearly) the same work whether or not the email is known."""
        try:
            lookup = self._index(email_lookup_form(normalize_email(email)))
        except InvalidInput:
            return
        async with self._uow() as uow:
            login = await uow.accounts.find_login(lookup)
            if login is None:
                return
            profile = await uow.accounts.profile(login.account.id)
        if not await self.may_mail(profile.email):
            return
        token = self._tokens.issue(login.account.id, fingerprint(login.password_hash, lookup),
                                   self._ttl)
        minutes = int(self._ttl.total_seconds() // 60)
        voice = self._catalogs.voice(login.account.language)
        await self._mailer.send(
            profile.email, voice.gettext(RESET_SUBJECT),
            voice.gettext(RESET_BODY, minutes=minutes, link=self._links.reset + token))

    async def reset_needs_code(self, token: str) -> bool:
        """Whether the page a reset link opens must ask for a second factor. Refuses a link
        that is invalid, expired or already used, so the page can say so before the form."""
        async with self._reader() as uow:
            account, _ = await self._live_reset(uow, token, lock=False)
            return (await uow.accounts.totp(account.id)).enabled

    async def _live_reset(self, uow: RecoveryUnit, token: str, lock: bool = True
                          ) -> tuple[Account, Profile]:
        """The account a reset link is for, while the link still works: its password and
        email are those it was issued for (so it works once, and dies with an email
        change). Locks the account for the transaction (`lock`)."""
        account_id, fp = self._tokens.read(token)
        account = await uow.accounts.get(account_id, for_update=lock)
        if account is None:
            raise Unauthorized(N_("this reset link is not valid"))
        profile = await uow.accounts.profile(account_id)
        lookup = self._index(email_lookup_form(profile.email))
        login = await uow.accounts.find_login(lookup)
        if login is None or fingerprint(login.password_hash, lookup) != fp:
            raise Unauthorized(N_("this reset link was already used or is out of date"))
        return account, profile

    async def confirm_reset(self, token: str, new_password: str, second: str | None,
                            ip: str | None = None) -> None:
        # An invalid link is refused before the password is judged, and a used or outdated
        # one before any hash: replaying an old link must cost the server no argon2 run.
        linked, _ = self._tokens.read(token)
        async with self._reader() as uow:
            await self._live_reset(uow, token, lock=False)
        new_password = check_password(new_password, "new_password", self._common)
        new_hash = await self._passwords.hash(new_password)  # before the transaction
        checked = await self._two_factor.check(linked, second)  # so is a recovery code
        now = self._clock()
        async with self._uow() as uow:
            account, profile = await self._live_reset(uow, token)
            account_id = account.id
            await self._two_factor.require(uow, account_id, checked)
            await uow.accounts.set_password_hash(account_id, new_hash)
            await uow.sessions.revoke_all(account_id, now)
            # Whoever opened the mailed link owns the address: whatever failures others
            # piled up on it no longer keep them out.
            lookup = self._index(email_lookup_form(profile.email))
            for key in (lookup, network_key(self._index, lookup, ip),
                        password_key(account_id)):
                await uow.throttle.clear(key)
            await uow.security_log.add(account_id, "password_reset", ip, now)
            await uow.commit()
        await self.notify_email(profile.email, "password_changed", account.language)

    async def send_verification(self, account_id: str) -> None:
        """A link that confirms the address; bound to it, so it cannot confirm another."""
        async with self._uow() as uow:
            profile = await uow.accounts.profile(account_id)
            account = await uow.accounts.get(account_id)
        if not await self.may_mail(profile.email):
            return
        token = self._verifier.issue(account_id, self._index(email_lookup_form(profile.email)),
                                     timedelta(hours=24))
        voice = self._catalogs.voice(account.language if account else None)
        await self._mailer.send(
            profile.email, voice.gettext(VERIFY_SUBJECT),
            voice.gettext(VERIFY_BODY, link=self._links.verify + token))

    async def verify_email(self, token: str) -> None:
        account_id, fp = self._verifier.read(token)
        async with self._uow() as uow:
            if await uow.accounts.get(account_id) is None:
                raise Unauthorized(N_("this link is not valid"))
            profile = await uow.accounts.profile(account_id)
            if self._index(email_lookup_form(profile.email)) != fp:
                raise Unauthorized(N_("this link is for an address the account no longer has"))
            await uow.accounts.mark_email_verified(account_id, self._clock())
            await uow.commit()

    async def notify_signup_attempt(self, email: str) -> None:
        """Signup with a taken address, when verification is required: the answer is the
        one a free address gets; the mail goes to the address' owner instead."""
        if not await self.may_mail(email):
            return
        async with self._reader() as uow:  # the owner's language
            owner = await uow.accounts.find_login(self._index(email_lookup_form(email)))
        voice = self._catalogs.voice(owner.account.language if owner else None)
        await self._mailer.send(email, voice.gettext(TAKEN_SUBJECT),
                                voice.gettext(TAKEN_BODY, login=self._links.login))

    async def notify(self, account_id: str, kind: str) -> None:
        async with self._uow() as uow:
            profile = await uow.accounts.profile(account_id)
            account = await uow.accounts.get(account_id)
        await self.notify_email(profile.email, kind, account.language if account else None)

    async def notify_email(self, email: str, kind: str, language: str | None = None) -> None:
        """One of the NOTICES, in `language` (the account's)."""
        subject, body = NOTICES[kind]
        voice = self._catalogs.voice(language)
        await self._mailer.send(email, voice.gettext(subject), voice.gettext(body))


class BlindIndexFn(Protocol):
    def __call__(self, value: str) -> str: ...
