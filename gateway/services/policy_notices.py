"""Telling every active customer that the privacy policy changed, once each."""

from collections.abc import Callable

from gateway.domain.errors import InvalidInput
from gateway.i18n import ENGLISH, N_, Catalogs
from gateway.services.errors import NotFound
from gateway.services.ports import Clock, PolicyNoticesUnit
from gateway.services.recovery import Mailer

NOTICE_SUBJECT = N_("Privacy policy update (%(version)s)")
NOTICE_BODY = N_("Our privacy policy has changed (version %(version)s).\n\n%(summary)s\n\n"
                 "Please read the summary and acknowledge it on your account page:\n"
                 "%(account_url)s\n")


class PolicyNoticeService:
    def __init__(self, uow: Callable[[], PolicyNoticesUnit], mailer: Mailer, clock: Clock,
                 current_version: str, account_url: str, catalogs: Catalogs = ENGLISH
                 ) -> None:
        self._uow = uow
        self._catalogs = catalogs
        self._mailer = mailer
        self._clock = clock
        self._current = current_version
        self._account_url = account_url

    def check_version(self, version: str) -> None:
        """Announce only the version the gateway enforces, or /account would never show
        the notice the mail points to."""
        if version != self._current:
            raise InvalidInput("version", f"the configured [privacy] policy_version is "
                                          f"{self._current!r}; set it to {version!r} first")

    async def recipients(self, version: str, optional: bool = False) -> list[str]:
        """Accounts still to be told: a resumed run skips those already mailed. An
        `optional` notice (one the law does not require) skips every customer who objects
        to optional processing."""
        self.check_version(version)
        async with self._uow() as uow:
            found = await uow.accounts.notice_recipients(version)
            if optional:
                found = [a for a in found if await uow.accounts.objection(a) is None]
            return found

    async def send(self, account_id: str, version: str, summary: str,
                   optional: bool = False) -> bool:
        """Mail one account and record it; False when the mail could not go out (it is
        retried by the next run). Recorded after sending: if the process dies between the
        two, that customer gets the notice twice rather than never."""
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                return False
            if optional and await uow.accounts.objection(account_id) is not None:
                return False  # objected since the list was read
            try:
                email = (await uow.accounts.profile(account_id)).email
            except NotFound:
                return False
        # The operator's summary as written; the words around it in the account's language.
        voice = self._catalogs.voice(account.language)
        body = voice.gettext(NOTICE_BODY, version=version, summary=summary.strip(),
                             account_url=self._account_url)
        if not await self._mailer.send(email, voice.gettext(NOTICE_SUBJECT, version=version),
                                       body):
            return False
        async with self._uow() as uow:
            await uow.accounts.record_notice(account_id, version, self._clock())
            await uow.commit()
        return True
