"""Retention, the access audit, legal requests, the personal-data export and the mail outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class RetentionRepository(Protocol):
    async def sessions(self, now: datetime, dry_run: bool) -> int: ...

    async def idempotency_keys(self, before: datetime, dry_run: bool) -> int: ...

    async def delivery_logs(self, before: datetime, dry_run: bool) -> int: ...

    async def audit_log(self, erased_before: datetime, dry_run: bool) -> int: ...

    async def login_throttle(self, before: datetime, now: datetime, dry_run: bool) -> int: ...

    async def disabled_endpoint_events(self, before: datetime, dry_run: bool) -> int: ...

    async def mail_queue(self, before: datetime, dry_run: bool) -> int:
        """Queued mail older than `before` (the sender drops it too; this is the backstop
        while no sender runs). An inactivity notice dropped un-warns its account."""

    async def owe(self, work: str, now: datetime) -> None:
        """Work a run owes until done (`flush`), kept across restarts; since the first
        time it was owed."""

    async def owed(self, work: str) -> datetime | None: ...

    async def paid(self, work: str) -> None: ...


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # an API key id, or cli:<operator>
    account_id: str
    action: str
    fields: tuple[str, ...]
    reason: str | None = None


class AuditLog(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def for_account(self, account_id: str) -> list[AuditEntry]: ...

    async def encrypt_legacy(self) -> int:
        """Encrypts reasons of rows written before they were encrypted."""
        ...


class DeletionLedger(Protocol):
    """Erasures recorded outside the restorable data."""

    def record(self, account_id: str, at: datetime) -> None: ...

    def entries(self) -> dict[str, datetime]: ...

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        """Drops (dry run: counts) the accounts erased before `before`."""
        ...


@dataclass(frozen=True)
class LegalRequest:
    id: str
    received_at: datetime
    summary: str
    notify_allowed: bool  # may the customers concerned be told now
    hold_lifted_at: datetime | None
    recorded_by: str
    created_at: datetime
    account_ids: tuple[str, ...]
    # When the mail telling the customers concerned was queued; None: not (yet).
    notice_queued_at: datetime | None = None

    @property
    def visible(self) -> bool:
        """Whether the customers concerned see it (export, /account)."""
        return self.notify_allowed or self.hold_lifted_at is not None


class LegalRegister(Protocol):
    async def add(self, request: LegalRequest) -> None: ...

    async def all(self) -> list[LegalRequest]: ...

    async def get(self, request_id: str) -> LegalRequest | None: ...

    async def prune(self, closed_before: datetime, dry_run: bool) -> int:
        """Requests the customers may be told of, recorded, (if held) lifted and mailed
        before `closed_before`: removed (dry run: counted). Held ones, and ones never
        mailed to a live account, stay."""
        ...

    async def for_account(self, account_id: str) -> list[LegalRequest]: ...

    async def notifiable(self, account_id: str) -> list[LegalRequest]: ...

    async def lift_hold(self, request_id: str, now: datetime) -> bool: ...

    async def mark_notice_queued(self, request_id: str, now: datetime,
                                 again: bool = False) -> bool:
        """Claims the request's one notification mail: False when it was claimed already
        (by an earlier call, or a concurrent transaction that committed; unless `again`),
        or when the customers may not be told yet."""

    async def notice_pending(self) -> list[LegalRequest]:
        """Requests the customers may be told of whose mail was never queued."""


class MailOutbox(Protocol):
    async def queue(self, to: str, subject: str, body: str, now: datetime) -> None:
        """Into the durable mail queue, committed with the transaction (the sender is
        woken at commit)."""


class PersonalRecords(Protocol):
    """What the personal-data export reads besides the other repositories."""

    async def sessions(self, account_id: str) -> list[dict[str, Any]]: ...

    async def recovery_codes(self, account_id: str) -> list[dict[str, Any]]: ...

    async def policy_notices(self, account_id: str) -> list[dict[str, Any]]: ...

    async def webhook_events(self, account_id: str) -> list[dict[str, Any]]: ...

    async def login_throttle(self, keys: dict[str, str]) -> list[dict[str, Any]]: ...

    async def account_activity(self, account_id: str) -> dict[str, Any]: ...

    async def paid_periods(self, account_id: str) -> list[dict[str, Any]]: ...

    async def renewals(self, account_id: str) -> list[dict[str, Any]]: ...
