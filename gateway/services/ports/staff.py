"""The staff console: members, their sessions and their log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.services.ports.privacy import AuditEntry


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    role: str
    created_at: datetime
    totp_enabled_at: datetime | None


@dataclass(frozen=True)
class StaffSession:
    id: str
    member: StaffMember
    enrolled: bool  # False: the member has yet to enrol TOTP; nothing else is open
    expires_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StaffLogEntry:
    staff: str
    action: str
    subject: str | None
    ip: str | None
    at: datetime


class StaffRepository(Protocol):
    async def add(self, member: StaffMember, password_hash: str) -> None:
        """`Conflict` when the name is taken."""

    async def remove(self, name: str) -> bool: ...

    async def all(self) -> list[StaffMember]: ...

    async def by_name(self, name: str) -> tuple[StaffMember, str] | None:
        """The member and their password hash."""

    async def totp(self, staff_id: str) -> tuple[str | None, int | None]:
        """The TOTP secret (pending or enabled) and the last step accepted."""

    async def set_totp_secret(self, staff_id: str, secret: str) -> None: ...

    async def enable_totp(self, staff_id: str, now: datetime) -> None: ...

    async def advance_totp_step(self, staff_id: str, step: int) -> bool:
        """False when `step` is not past the last one accepted (a replayed code)."""

    async def add_session(self, session_id: str, token_hash: str, staff_id: str,
                          enrolled: bool, now: datetime, expires_at: datetime) -> None: ...

    async def session(self, token_hash: str) -> StaffSession | None: ...

    async def touch(self, session_id: str, now: datetime) -> None: ...

    async def revoke(self, session_id: str, now: datetime) -> None: ...

    async def log(self, entry: StaffLogEntry) -> None: ...

    async def recent_log(self, limit: int) -> list[StaffLogEntry]: ...

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        """The latest access-audit entries for the admin page: without their reasons,
        and none of a legal request still under a hold."""

    async def account_event_ids(self, account_id: str) -> list[str]:
        """The account's webhook events, oldest first."""

    async def invoice_by_address(self, address: str) -> str | None: ...
