"""Changing the account's email: proven by the password (and the second factor), applied
only once the new address opens the link mailed to it; the old address is told, with a
link that undoes the change for 7 days.

Neither address is stored while the change is pending or after it: the new one travels
sealed (AES-256-GCM under the data key) inside the confirmation link mailed to it, the old
one sealed inside the undo link mailed to it. So nothing personal waits in the database
for a retention task, and a decoded link shows no address."""

from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.domain.accounts import email_lookup_form, normalize_email
from gateway.domain.throttle import ThrottlePolicy
from gateway.domain.timestamps import rfc3339
from gateway.i18n import N_
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.errors import Conflict, Unauthorized
from gateway.services.ports import (
    Clock,
    EmailChangeUnit,
    PasswordHasher,
    Profile,
)
from gateway.services.recovery import Links, Mailer, RecoveryService, SealedTokens, fingerprint
from gateway.services.two_factor import TwoFactorService

# The mails, in the account's language (the recovery service's catalogs).
TAKEN_SUBJECT = N_("Someone tried to move an account to this address")
TAKEN_BODY = N_("Someone asked to move another Packetra account to this email address, which "
                "already belongs to an account. Nothing was changed, and your account is "
                "not affected.\n\nIf this was you, log in to that other account with its own "
                "address. Otherwise, ignore this mail.")
CONFIRM_SUBJECT = N_("Confirm your new email address")
CONFIRM_BODY = N_("Someone asked to move a Packetra account to this email address.\n\n"
                  "Open this link within %(hours)s hours to confirm it:\n\n%(link)s\n\n"
                  "Until then the account keeps its old address. If you did not ask for "
                  "this, ignore this mail.")
CHANGED_SUBJECT = N_("Your account email was changed")
CHANGED_BODY = N_("The email address of your Packetra account was just changed away from "
                  "this address.\n\nIf this was not you, open this link within %(days)s "
                  "days to undo it:\n\n%(link)s\n\nUndoing gives the account this address "
                  "back, ends every session and asks you for a new password (a reset link "
                  "follows by mail).")
UNDONE_SUBJECT = N_("Your account email was changed back")
UNDONE_BODY = N_("The email address of your Packetra account was changed back to the "
                 "previous one, through the link mailed to it, and every session has "
                 "ended.\n\nIf this was not you, contact support at once.")

# Not an argon2 hash: no password matches it. After an undo the password must be reset
# (whoever changed the address knew it).
RESET_REQUIRED = "!reset-required"


class EmailChangeService:
    def __init__(self, uow: Callable[[], EmailChangeUnit], *, mailer: Mailer, confirm: SealedTokens,
                 undo: SealedTokens, blind_index: Callable[[str], str],
                 passwords: PasswordHasher, two_factor: TwoFactorService,
                 recovery: RecoveryService, clock: Clock, links: Links,
                 throttle: ThrottlePolicy | None = None,
                 confirm_ttl: timedelta = timedelta(hours=24),
                 undo_ttl: timedelta = timedelta(days=7)) -> None:
        self._uow = uow
        self._mailer = mailer
        self._confirm = confirm
        self._undo = undo
        self._index = blind_index
        self._check = PasswordCheck(uow, passwords, blind_index,
                                    Attempts(throttle or ThrottlePolicy(), clock))
        self._two_factor = two_factor
        self._recovery = recovery
        self._clock = clock
        self._links = links
        self._confirm_ttl = confirm_ttl
        self._undo_ttl = undo_ttl

    async def is_change(self, account_id: str, raw: object) -> bool:
        """Whether `raw` (validated here) differs from the account's email."""
        email = normalize_email(raw)
        async with self._uow() as uow:
            return email != (await uow.accounts.profile(account_id)).email

    async def request(self, account_id: str, new_email: str, password: str | None,
                      code: str | None, ip: str | None = None,
                      session_id: str | None = None) -> None:
        """Mails a confirmation link to the new address, or, when another account has it,
        a notice to that account instead: the caller's answer is the same either way."""
        new = normalize_email(new_email)
        new_index = self._index(email_lookup_form(new))
        now = self._clock()
        checked = await self._check.verify(account_id, password)
        second = await self._two_factor.check(account_id, code)
        async with self._uow() as uow:
            await self._check.still(uow, checked)
            await self._two_factor.require_field(uow, account_id, second)
            await self._no_undo_pending(uow, account_id, now)
            profile = await uow.accounts.profile(account_id)
            index = self._index(email_lookup_form(profile.email))
            login = await uow.accounts.find_login(index)
            assert login is not None
            owner = await uow.accounts.find_login(new_index)
            taken = owner is not None and owner.account.id != account_id
            language = (owner.account if taken and owner else login.account).language
            await uow.security_log.add(account_id, "email_change_requested", ip, now)
            await uow.commit()
        if not await self._recovery.may_mail(new):
            return  # the same answer; the address has had enough mail from us this hour
        voice = self._recovery.voice(language)
        if taken:  # told in its owner's language
            await self._mailer.send(new, voice.gettext(TAKEN_SUBJECT), voice.gettext(TAKEN_BODY))
            return
        # The session that asked is the one that survives the change (see `confirm`).
        stamp = f"{fingerprint(login.password_hash, index)}.{new_index}.{session_id or ''}"
        token = self._confirm.issue(account_id, stamp, self._confirm_ttl, new)
        hours = int(self._confirm_ttl.total_seconds() // 3600)
        await self._mailer.send(
            new, voice.gettext(CONFIRM_SUBJECT),
            voice.gettext(CONFIRM_BODY, hours=hours, link=self._links.email_change + token))

    @staticmethod
    async def _no_undo_pending(uow: EmailChangeUnit, account_id: str, now: datetime) -> None:
        """A change while the previous one can still be undone would leave the undo link
        mailed to the previous address nothing to undo: whoever took the account could
        kill it with a second change. So one change per undo period."""
        until = await uow.accounts.email_undo_until(account_id)
        if until is not None and until > now:
            raise Conflict(
                "the email address was changed recently and the previous address can "
                f"still undo that until {rfc3339(until)}; change it again after that, "
                "or contact support")

    async def confirm(self, token: str, ip: str | None = None) -> None:
        """Applies the new address; the old one is told, with a link that undoes it."""
        account_id, stamp, new = self._confirm.open(token)
        now = self._clock()
        new_index = self._index(email_lookup_form(new))
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise Unauthorized(N_("this link is not valid"))
            old = await uow.accounts.profile(account_id)
            index = self._index(email_lookup_form(old.email))
            login = await uow.accounts.find_login(index)
            expected = (f"{fingerprint(login.password_hash, index)}.{new_index}."
                        if login is not None else None)
            if expected is None or not stamp.startswith(expected):
                raise Unauthorized(N_("this link was already used or is out of date"))
            keep = stamp[len(expected):] or None
            await self._no_undo_pending(uow, account_id, now)
            await uow.accounts.update_profile(  # Conflict: taken since the request
                account_id, Profile(new, old.display_name, old.company), new_index)
            await uow.accounts.mark_email_verified(account_id, now)
            await uow.accounts.set_email_undo_until(account_id, now + self._undo_ttl)
            # Sessions opened under the old address end; the one that asked stays.
            await uow.sessions.revoke_all(account_id, now, keep=keep)
            await uow.security_log.add(account_id, "email_changed", ip, now)
            await uow.commit()
        undo = self._undo.issue(account_id, new_index, self._undo_ttl, old.email)
        days = int(self._undo_ttl.total_seconds() // 86400)
        # To the old address: the one an attacker who took the account cannot read.
        voice = self._recovery.voice(account.language)
        await self._mailer.send(
            old.email, voice.gettext(CHANGED_SUBJECT),
            voice.gettext(CHANGED_BODY, days=days,
                          link=self._links.email_change_undo + undo))

    async def undo(self, token: str, code: str | None = None, ip: str | None = None) -> None:
        """Restores the previous address while the account still has the one the change
        set; ends every session and requires a new password (a reset link is mailed).
        With 2FA on it needs a code too: whoever holds only the old mailbox (which its
        owner may have left because it was lost) cannot take the account back with it.
        The address that loses the account is told."""
        account_id, changed_index, previous = self._undo.open(token)
        second = await self._two_factor.check(account_id, code)
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise Unauthorized(N_("this link is not valid"))
            current = await uow.accounts.profile(account_id)
            if self._index(email_lookup_form(current.email)) != changed_index:
                raise Unauthorized(N_("this link was already used or is out of date"))
            await self._two_factor.require(uow, account_id, second)
            try:
                await uow.accounts.update_profile(
                    account_id, Profile(previous, current.display_name, current.company),
                    self._index(email_lookup_form(previous)))
            except Conflict:
                raise Conflict(N_("another account has this address now; contact support")
                               ) from None
            await uow.accounts.set_password_hash(account_id, RESET_REQUIRED)
            await uow.accounts.set_email_undo_until(account_id, None)
            await uow.sessions.revoke_all(account_id, now)
            await uow.security_log.add(account_id, "email_change_undone", ip, now)
            await uow.commit()
        voice = self._recovery.voice(account.language)
        await self._mailer.send(current.email, voice.gettext(UNDONE_SUBJECT),
                                voice.gettext(UNDONE_BODY))
        await self._recovery.request_reset(previous)
