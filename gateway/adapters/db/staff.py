"""The staff console's storage: members, sessions, the staff log, and the few lookups
the console needs that no other repository has."""

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import STAFF_LOG_IP, STAFF_TOTP
from gateway.adapters.db.tables import audit_log, events, invoices, legal_requests
from gateway.adapters.db.tables import staff_log as log_t
from gateway.adapters.db.tables import staff_members as members
from gateway.adapters.db.tables import staff_sessions as sessions
from gateway.adapters.fields import FieldCipher
from gateway.services.errors import Conflict
from gateway.services.legal import legal_mark
from gateway.services.ports import AuditEntry, StaffLogEntry, StaffMember, StaffSession


def _member(r: Any) -> StaffMember:
    return StaffMember(r.id, r.name, r.role, r.created_at, r.totp_enabled_at)


class SqlStaff:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(self, member: StaffMember, password_hash: str) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(insert(members).values(
                    id=member.id, name=member.name, role=member.role,
                    password_hash=password_hash, created_at=member.created_at))
        except IntegrityError:
            raise Conflict(f"a staff member named {member.name!r} exists already") from None

    async def remove(self, name: str) -> bool:
        found = (await self._conn.execute(
            select(members.c.id).where(members.c.name == name))).scalar_one_or_none()
        if found is None:
            return False
        await self._conn.execute(delete(sessions).where(sessions.c.staff_id == found))
        await self._conn.execute(delete(members).where(members.c.id == found))
        return True

    async def all(self) -> list[StaffMember]:
        rows = await self._conn.execute(select(members).order_by(members.c.name))
        return [_member(r) for r in rows]

    async def by_name(self, name: str) -> tuple[StaffMember, str] | None:
        row = (await self._conn.execute(
            select(members).where(members.c.name == name))).first()
        return None if row is None else (_member(row), row.password_hash)

    async def totp(self, staff_id: str) -> tuple[str | None, int | None]:
        row = (await self._conn.execute(
            select(members.c.totp_secret_ct, members.c.totp_last_step)
            .where(members.c.id == staff_id))).first()
        if row is None:
            return None, None
        return (self._cipher.decrypt_optional(row.totp_secret_ct, STAFF_TOTP.ref(staff_id)),
                row.totp_last_step)

    async def set_totp_secret(self, staff_id: str, secret: str) -> None:
        await self._conn.execute(update(members).where(members.c.id == staff_id).values(
            totp_secret_ct=self._cipher.encrypt(secret, STAFF_TOTP.ref(staff_id)),
            totp_enabled_at=None))

    async def enable_totp(self, staff_id: str, now: datetime) -> None:
        await self._conn.execute(update(members).where(members.c.id == staff_id)
                                 .values(totp_enabled_at=now))

    async def advance_totp_step(self, staff_id: str, step: int) -> bool:
        result = await self._conn.execute(
            update(members)
            .where(members.c.id == staff_id,
                   (members.c.totp_last_step.is_(None)) | (members.c.totp_last_step < step))
            .values(totp_last_step=step))
        return bool(result.rowcount)

    async def add_session(self, session_id: str, token_hash: str, staff_id: str,
                          enrolled: bool, now: datetime, expires_at: datetime) -> None:
        await self._conn.execute(insert(sessions).values(
            id=session_id, token_hash=token_hash, staff_id=staff_id, enrolled=enrolled,
            created_at=now, expires_at=expires_at, last_seen_at=now))

    async def session(self, token_hash: str) -> StaffSession | None:
        row = (await self._conn.execute(
            select(sessions.c.id.label("session_id"), sessions.c.enrolled,
                   sessions.c.expires_at, sessions.c.last_seen_at, sessions.c.revoked_at,
                   members.c.id, members.c.name, members.c.role, members.c.created_at,
                   members.c.totp_enabled_at)
            .join(members, members.c.id == sessions.c.staff_id)
            .where(sessions.c.token_hash == token_hash))).first()
        if row is None:
            return None
        return StaffSession(row.session_id, _member(row), bool(row.enrolled), row.expires_at,
                            row.last_seen_at, row.revoked_at)

    async def touch(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(update(sessions).where(sessions.c.id == session_id)
                                 .values(last_seen_at=now))

    async def revoke(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(update(sessions).where(sessions.c.id == session_id)
                                 .values(revoked_at=now))

    async def log(self, entry: StaffLogEntry) -> None:
        """The client address is encrypted like the customers' security log's: it is
        read back only for the admin page's staff log."""
        await self._conn.execute(insert(log_t).values(
            staff=entry.staff, action=entry.action, subject=entry.subject,
            ip_ct=self._cipher.encrypt_optional(entry.ip, STAFF_LOG_IP.ref(entry.staff)),
            at=entry.at))

    async def recent_log(self, limit: int) -> list[StaffLogEntry]:
        rows = await self._conn.execute(
            select(log_t).order_by(log_t.c.id.desc()).limit(limit))
        return [StaffLogEntry(r.staff, r.action, r.subject,
                              self._cipher.decrypt_optional(r.ip_ct, STAFF_LOG_IP.ref(r.staff)),
                              r.at) for r in rows]

    async def recent_audit(self, limit: int) -> list[AuditEntry]:
        """The access audit as the admin page shows it: who read which account's data,
        what and when. Never the reason (free text that may name a person or a case: the
        customer's export shows it, the console does not), so it is not even decrypted;
        and no entry of a legal request still under a hold (its recording, exports made
        for it): nobody in the console may learn of it before the customer may."""
        held = {legal_mark(request_id) for request_id in (await self._conn.execute(
            select(legal_requests.c.id).where(legal_requests.c.notify_allowed.is_(False),
                                              legal_requests.c.hold_lifted_at.is_(None))
        )).scalars()}
        shown: list[AuditEntry] = []
        before: int | None = None
        while len(shown) < limit:
            query = (select(audit_log.c.id, audit_log.c.at, audit_log.c.actor,
                            audit_log.c.account_id, audit_log.c.action, audit_log.c.fields)
                     .order_by(audit_log.c.id.desc()).limit(limit))
            if before is not None:
                query = query.where(audit_log.c.id < before)
            rows = (await self._conn.execute(query)).all()
            shown += [AuditEntry(r.at, r.actor, r.account_id, r.action, tuple(r.fields), None)
                      for r in rows if not held.intersection(r.fields)]
            if len(rows) < limit:
                break
            before = rows[-1].id
        return shown[:limit]

    async def account_event_ids(self, account_id: str) -> list[str]:
        rows = await self._conn.execute(
            select(events.c.id).where(events.c.account_id == account_id)
            .order_by(events.c.seq))
        return [r.id for r in rows]

    async def invoice_by_address(self, address: str) -> str | None:
        return (await self._conn.execute(
            select(invoices.c.id).where(invoices.c.address == address).limit(1)
        )).scalar_one_or_none()
