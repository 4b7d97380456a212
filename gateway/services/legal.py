"""The register of legal requests for customers' data. The policy: "When legally
permitted, we notify affected customers of legal requests for their data." Each entry
names the accounts concerned, when it was received, and whether they may be told now;
a held entry is withheld from them (export, /account, even the audit entry of its
recording) until the operator lifts the hold. Every change is audited per account.

Customers who never log in would never learn of a request, so once they may be told
(recorded with notification allowed, or the hold lifted) each account concerned is
mailed, once per request: the mail goes into the durable mail queue in the same
transaction as the change that allows it, and the request records when
(`notice_queued_at`), so a retried lift or a second run mails nobody twice, and a lift
that fails mails nobody."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.domain.errors import InvalidInput
from gateway.i18n import ENGLISH, N_, Catalogs
from gateway.services.errors import NotFound
from gateway.services.ids import new_id
from gateway.services.ports import (
    AuditEntry,
    Clock,
    LegalRequest,
    LegalUnit,
)

# Plain text, nothing remote. The summary stays on the account page, behind the login: a
# mail crosses servers the operator does not control.
# Written in each account's language (`LegalNotices.catalogs`).
NOTICE_SUBJECT = N_("A legal request concerning your account")
NOTICE_BODY = N_("""Hello,

On %(received)s we received a legal request concerning the data of your account. We tell
you as soon as the law allows us to.

What was asked, and when, is shown on your account page (log in first):
%(account_url)s

It is also part of the export of your data you can download there.
""")


@dataclass(frozen=True)
class LegalNotices:
    """Where the notification mail points; without it (no [smtp]) nothing is mailed and
    the requests stay pending (`gateway legal notify-pending`)."""

    account_url: str
    catalogs: Catalogs = ENGLISH


def legal_mark(request_id: str) -> str:
    """How an audit entry names the legal request it belongs to (in its fields), so the
    entry is withheld from the customer while the request is held."""
    return f"legal_request:{request_id}"


class LegalRegisterService:
    def __init__(self, uow: Callable[[], LegalUnit], clock: Clock,
                 reader: Callable[[], LegalUnit] | None = None,
                 notices: LegalNotices | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._clock = clock
        self._notices = notices

    async def record(self, actor: str, account_ids: list[str], received_at: datetime,
                     summary: str, notify_allowed: bool) -> LegalRequest:
        if not account_ids:
            raise InvalidInput("account", "name at least one account")
        if not summary.strip():
            raise InvalidInput("summary", "must not be empty")
        now = self._clock()
        if received_at > now:
            raise InvalidInput("received", "is in the future")
        request = LegalRequest(new_id("lr_"), received_at, summary.strip(), notify_allowed,
                               None, actor, now, tuple(sorted(set(account_ids))))
        async with self._uow() as uow:
            for account_id in request.account_ids:
                if await uow.accounts.get(account_id) is None:
                    raise NotFound(f"account {account_id}")
            await uow.legal.add(request)
            for account_id in request.account_ids:
                await uow.audit.add(AuditEntry(now, actor, account_id, "legal_request",
                                               (legal_mark(request.id),), None))
            queued = await self._notify(uow, request, now)
            await uow.commit()
        return replace(request, notice_queued_at=now) if queued else request

    async def lift_hold(self, actor: str, request_id: str) -> LegalRequest:
        now = self._clock()
        async with self._uow() as uow:
            request = await uow.legal.get(request_id)
            if request is None:
                raise NotFound("legal request")
            if not await uow.legal.lift_hold(request_id, now):
                raise InvalidInput("id", "notification is already allowed for this request")
            for account_id in request.account_ids:
                await uow.audit.add(AuditEntry(now, actor, account_id, "legal_hold_lifted",
                                               (legal_mark(request_id),), None))
            await self._notify(uow, request, now)
            lifted = await uow.legal.get(request_id)
            await uow.commit()
        assert lifted is not None
        return lifted

    async def notify_pending(self) -> list[LegalRequest]:
        """Mails the customers of every request they may be told of but were never mailed
        about (recorded before notification mail existed, or while no [smtp] was
        configured). One transaction per request; returns those now queued."""
        if self._notices is None:
            raise InvalidInput("smtp", "no [smtp] section is configured: nothing can be mailed")
        async with self._reader() as uow:
            pending = await uow.legal.notice_pending()
        done: list[LegalRequest] = []
        for request in pending:
            now = self._clock()
            async with self._uow() as uow:
                if await self._notify(uow, request, now):
                    done.append(replace(request, notice_queued_at=now))
                await uow.commit()
        return done

    async def notify_again(self, request_id: str) -> LegalRequest:
        """Queues the request's mail once more: for the operator, after the mail was
        dropped undelivered (`gateway_mail_attempts_total{outcome="dropped"}`: the SMTP
        server refused it for longer than `[mail] max_age_hours`)."""
        if self._notices is None:
            raise InvalidInput("smtp", "no [smtp] section is configured: nothing can be mailed")
        now = self._clock()
        async with self._uow() as uow:
            request = await uow.legal.get(request_id)
            if request is None:
                raise NotFound("legal request")
            if not await self._notify(uow, request, now, again=True):
                raise InvalidInput("id", "the request is held: lift the hold first")
            await uow.commit()
        return replace(request, notice_queued_at=now)

    async def _notify(self, uow: LegalUnit, request: LegalRequest, now: datetime,
                      again: bool = False) -> bool:
        """Queues the request's notification mail to each account concerned that still
        exists, in the caller's transaction; False when it was queued before (or cannot
        be: no [smtp], or still held). An erased account gets nothing: its address is
        gone, and its customer asked for nothing more from us."""
        if self._notices is None or not await uow.legal.mark_notice_queued(
                request.id, now, again):
            return False
        for account_id in request.account_ids:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                continue
            try:
                email = (await uow.accounts.profile(account_id)).email
            except NotFound:
                continue
            voice = self._notices.catalogs.voice(account.language)
            body = voice.gettext(NOTICE_BODY, received=voice.day(request.received_at),
                                 account_url=self._notices.account_url)
            await uow.mail.queue(email, voice.gettext(NOTICE_SUBJECT), body, now)
        return True

    async def all(self) -> list[LegalRequest]:
        async with self._reader() as uow:
            return await uow.legal.all()
