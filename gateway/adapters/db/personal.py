"""Records about an account that only the personal-data export reads."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import (
    accounts,
    events,
    login_throttle,
    paid_periods,
    policy_notices,
    recovery_codes,
    renewals,
    sessions,
)
from gateway.domain.timestamps import rfc3339

# RFC 6238's time step, the one gateway.adapters.totp counts `totp_last_step` in.
TOTP_STEP_SECONDS = 30


def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


class SqlPersonalRecords:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def sessions(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self._conn.execute(
            select(sessions).where(sessions.c.account_id == account_id)
            .order_by(sessions.c.created_at))
        return [{"created_at": _ts(r.created_at), "expires_at": _ts(r.expires_at),
                 "last_seen_at": _ts(r.last_seen_at), "revoked_at": _ts(r.revoked_at)}
                for r in rows]

    async def recovery_codes(self, account_id: str) -> list[dict[str, Any]]:
        """Whether each code was used and when; never the code's hash."""
        rows = await self._conn.execute(
            select(recovery_codes.c.used_at).where(recovery_codes.c.account_id == account_id)
            .order_by(recovery_codes.c.id))
        return [{"used": r.used_at is not None, "used_at": _ts(r.used_at)} for r in rows]

    async def policy_notices(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self._conn.execute(
            select(policy_notices).where(policy_notices.c.account_id == account_id)
            .order_by(policy_notices.c.sent_at))
        return [{"version": r.version, "sent_at": _ts(r.sent_at)} for r in rows]

    async def webhook_events(self, account_id: str) -> list[dict[str, Any]]:
        rows = await self._conn.execute(
            select(events).where(events.c.account_id == account_id).order_by(events.c.seq))
        return [{"id": r.id, "type": r.type, "created_at": _ts(r.created_at), "body": r.body}
                for r in rows]

    async def login_throttle(self, keys: dict[str, str]) -> list[dict[str, Any]]:
        """The counters under `keys` (throttle key -> the name the export gives it)."""
        rows = await self._conn.execute(
            select(login_throttle).where(login_throttle.c.key.in_(list(keys)))
            .order_by(login_throttle.c.key))
        return [{"counter": keys[r.key], "failures": r.failures,
                 "window_started_at": _ts(r.window_started_at),
                 "locked_until": _ts(r.locked_until)} for r in rows]

    async def account_activity(self, account_id: str) -> dict[str, Any]:
        """The account's timestamps that only the export shows: last login, inactivity
        notice, the email-change undo window, the last second-factor code accepted."""
        row = (await self._conn.execute(select(
            accounts.c.last_login_at, accounts.c.inactivity_notice_at,
            accounts.c.email_undo_until, accounts.c.totp_last_step)
            .where(accounts.c.id == account_id))).one()
        last_code = (datetime.fromtimestamp(row.totp_last_step * TOTP_STEP_SECONDS, UTC)
                     if row.totp_last_step is not None else None)
        return {"last_login_at": _ts(row.last_login_at),
                "inactivity_notice_at": _ts(row.inactivity_notice_at),
                "email_undo_until": _ts(row.email_undo_until),
                "two_factor_last_code_at": _ts(last_code)}

    async def paid_periods(self, account_id: str) -> list[dict[str, Any]]:
        """The time each settled plan invoice bought (prepaid time)."""
        rows = await self._conn.execute(
            select(paid_periods).where(paid_periods.c.account_id == account_id)
            .order_by(paid_periods.c.starts_at))
        return [{"invoice_id": r.invoice_id, "plan": r.plan, "periods": r.periods,
                 "starts_at": _ts(r.starts_at), "ends_at": _ts(r.ends_at),
                 "created_at": _ts(r.created_at)} for r in rows]

    async def renewals(self, account_id: str) -> list[dict[str, Any]]:
        """Renewal invoices the gateway created, and when it reminded the customer."""
        rows = await self._conn.execute(
            select(renewals).where(renewals.c.account_id == account_id)
            .order_by(renewals.c.period_end))
        return [{"invoice_id": r.invoice_id, "period_end": _ts(r.period_end),
                 "created_at": _ts(r.created_at),
                 "first_reminder_at": _ts(r.first_reminder_at),
                 "second_reminder_at": _ts(r.second_reminder_at)} for r in rows]
