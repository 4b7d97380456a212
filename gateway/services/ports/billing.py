"""Plans: renewals, paid periods and reminder mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.domain.billing import Extension
from gateway.domain.states import Status


@dataclass(frozen=True)
class RenewalRecord:
    id: int
    account_id: str
    period_end: datetime  # the paid_until this renewal renews
    invoice_id: str
    created_at: datetime
    first_reminder_at: datetime | None
    second_reminder_at: datetime | None
    invoice_status: Status


class BillingRepository(Protocol):
    async def due(self, now: datetime, lead: timedelta, grace: timedelta,
                  limit: int = 500) -> list[str]: ...

    async def renewal(self, account_id: str, period_end: datetime) -> RenewalRecord | None:
        ...

    async def latest_renewal(self, account_id: str) -> RenewalRecord | None: ...

    async def add_renewal(self, account_id: str, period_end: datetime, invoice_id: str,
                          now: datetime, reminded: bool) -> bool:
        """False when the period already has its renewal invoice."""

    async def replace_renewal_invoice(self, renewal_id: int, invoice_id: str) -> None: ...

    async def second_reminders_due(self, now: datetime, before: timedelta,
                                   limit: int = 200) -> list[RenewalRecord]: ...

    async def mark_second_reminder(self, renewal_id: int, now: datetime) -> bool: ...

    async def record_period(self, invoice_id: str, account_id: str, plan: str,
                            extension: Extension, now: datetime) -> bool:
        """False when this invoice already paid for a period."""

    async def paid_period(self, invoice_id: str) -> Extension | None:
        """What this invoice paid for (`since` is its start), locked for update."""

    async def shorten_period(self, invoice_id: str, periods: int, ends_at: datetime) -> None:
        ...

    async def queue_mail(self, to: str, subject: str, body: str, now: datetime) -> None:
        """Into the durable mail queue, committed with the transaction."""
