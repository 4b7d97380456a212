"""The register of legal requests for customers' data. The policy: "When legally
permitted, we notify affected customers of legal requests for their data." Each entry
names the accounts concerned, when it was received, and whether they may be told now;
a held entry is withheld from them (export, /account, even the audit entry of its
recording) until the operator lifts the hold. Every change is audited per account."""

from datetime import datetime

from gateway.domain.errors import InvalidInput
from gateway.services.errors import NotFound
from gateway.services.ids import new_id
from gateway.services.ports import AuditEntry, Clock, LegalRequest, UnitOfWorkFactory


def legal_mark(request_id: str) -> str:
    """How an audit entry names the legal request it belongs to (in its fields), so the
    entry is withheld from the customer while the request is held."""
    return f"legal_request:{request_id}"


class LegalRegisterService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 reader: UnitOfWorkFactory | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._clock = clock

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
            await uow.commit()
        return request

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
            lifted = await uow.legal.get(request_id)
            await uow.commit()
        assert lifted is not None
        return lifted

    async def all(self) -> list[LegalRequest]:
        async with self._reader() as uow:
            return await uow.legal.all()
