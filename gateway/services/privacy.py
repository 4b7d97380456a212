"""The privacy policy's promises to a customer: see everything held about you, have it
deleted, know who read it, and be told when the policy changes."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.domain.accounts import Account
from gateway.domain.money import format_units
from gateway.domain.throttle import ThrottlePolicy
from gateway.domain.timestamps import rfc3339
from gateway.services.accounts import AccountView
from gateway.services.attempts import Attempts, PasswordCheck
from gateway.services.errors import NotFound
from gateway.services.legal import legal_mark
from gateway.services.ports import (
    AuditEntry,
    Clock,
    PasswordHasher,
    UnitOfWork,
    UnitOfWorkFactory,
)
from gateway.services.two_factor import TwoFactorService

# One table per kind of record; the CSV export is a zip with one file per table.
Tables = dict[str, list[dict[str, Any]]]

EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "profile": ("id", "email", "display_name", "company", "created_at", "activated_at",
                "email_verified_at", "two_factor_enabled_at", "policy_version_accepted",
                "deletion_due_at", "plan", "paid_until", "billing_state"),
    "preferences": ("datacenter", "currency", "renewal_coin", "renewal_reminders"),
    "invoices": ("id", "status", "price", "price_currency", "coin", "amount_due", "address",
                 "rate", "created_at", "settled_at", "metadata"),
    "payments": ("invoice_id", "coin", "txid", "output_index", "amount", "status",
                 "block_height", "seen_at"),
    "security_log": ("event", "ip", "at"),
    "audit_log": ("at", "actor", "action", "fields", "reason"),
    "sessions": ("created_at", "expires_at", "last_seen_at", "revoked_at"),
    "recovery_codes": ("used", "used_at"),
    "policy_notices": ("version", "sent_at"),
    "webhook_events": ("id", "type", "created_at", "body"),
    "login_throttle": ("failures", "window_started_at", "locked_until"),
    "legal_requests": ("id", "received_at", "summary", "notified_at"),
    "optional_processing": ("objected", "since"),
    "paid_periods": ("invoice_id", "plan", "periods", "starts_at", "ends_at"),
    "renewals": ("invoice_id", "period_end", "created_at", "first_reminder_at",
                 "second_reminder_at"),
}

# Every table that holds rows about one account, and the export table that carries them;
# tests/integration/test_export_coverage.py fails when a table with an account column is
# in neither this map nor NOT_EXPORTED.
EXPORTED_FROM: dict[str, str] = {
    "accounts": "profile",
    "invoices": "invoices",
    "payments": "payments",  # through the account's invoices
    "security_log": "security_log",
    "audit_log": "audit_log",
    "sessions": "sessions",
    "recovery_codes": "recovery_codes",
    "policy_notices": "policy_notices",
    "events": "webhook_events",
    "login_throttle": "login_throttle",  # by the blind index of the current email
    "legal_requests": "legal_requests",  # only those the customer may be told of
    "legal_request_accounts": "legal_requests",
    "paid_periods": "paid_periods",
    "renewals": "renewals",
}
# Tables with an account column that the export leaves out, and why (OPERATIONS.md says
# the same under "Access audit").
NOT_EXPORTED: dict[str, str] = {
    "mail_queue": "mail waiting to be sent, at most [mail] max_age_hours; it holds live "
                  "reset and verification links, and every such mail reaches the customer",
    "idempotency_keys": "an integrator's request keys for 24 hours; no personal data",
    "deliveries": "delivery state of the webhook events, which are exported",
    "delivery_attempts": "status codes and latencies of delivering the exported events",
    "staff_log": "what staff did in the console (an account or invoice id as its subject); "
                 "each look at a customer's personal data is also an access audit entry, "
                 "which is exported",
}

PERSONAL_FIELDS = ("email", "display_name", "company", "datacenter", "currency")


@dataclass(frozen=True)
class Reader:
    """Who reads personal data on the service side, and why (for the access audit)."""

    actor: str
    reason: str | None = None
    # The legal request this read serves: its audit entry is withheld from the customer
    # while that request is under a hold.
    legal_request: str | None = None


def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


class PrivacyService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        blind_index: Callable[[str], str],
        two_factor: TwoFactorService,
        clock: Clock,
        deletion_grace: timedelta,
        policy_version: str,
        throttle: ThrottlePolicy | None = None,
        reader: UnitOfWorkFactory | None = None,
    ) -> None:
        self._throttle = throttle or ThrottlePolicy()
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._passwords = passwords
        self._index = blind_index
        self._two_factor = two_factor
        self._clock = clock
        self._grace = deletion_grace
        self.policy_version = policy_version

    async def request_deletion(self, account_id: str, password: str, code: str | None,
                               ip: str | None = None) -> datetime:
        """Schedules deletion after the grace period and ends every session; logging in
        again and cancelling keeps the account."""
        now = self._clock()
        # Counted like logins: a stolen session cannot guess the password here.
        checks = PasswordCheck(self._uow, self._passwords, self._index,
                               Attempts(self._throttle, self._clock))
        checked = await checks.verify(account_id, password, "password")
        second = await self._two_factor.check(account_id, code)  # outside the transaction
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            await checks.still(uow, checked)
            await self._two_factor.require_field(uow, account_id, second)
            due = account.schedule_deletion(now, self._grace)
            await uow.accounts.save(account)
            await uow.sessions.revoke_all(account_id, now)
            await uow.security_log.add(account_id, "deletion_requested", ip, now)
            await uow.commit()
        return due

    async def cancel_deletion(self, account_id: str, ip: str | None = None) -> bool:
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or not account.cancel_deletion():
                return False
            await uow.accounts.save(account)
            await uow.security_log.add(account_id, "deletion_cancelled", ip, now)
            await uow.commit()
        return True

    async def object_to_optional(self, account_id: str, objected: bool) -> datetime | None:
        """The customer objects to optional processing (notices beyond those the law
        requires), or withdraws the objection. Returns since when they object."""
        now = self._clock()
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            since = await uow.accounts.objection(account_id)
            if objected and since is None:
                since = now
            elif not objected:
                since = None
            await uow.accounts.set_objection(account_id, since)
            await uow.commit()
        return since

    async def account_page(self, account_id: str) -> dict[str, Any]:
        """What /account shows about privacy: the objection, and the legal requests the
        customer may be told of."""
        async with self._reader() as uow:
            return {"objected_since": await uow.accounts.objection(account_id),
                    "legal_requests": await uow.legal.notifiable(account_id)}

    async def acknowledge_policy(self, account_id: str) -> None:
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id, for_update=True)
            if account is None or account.deleted:
                raise NotFound("account")
            account.accept_policy(self.policy_version)
            await uow.accounts.save(account)
            await uow.commit()

    async def read_account(self, account_id: str, reader: Reader) -> AccountView:
        """A service's read of personal data: allowed by the key's scope, and audited in the
        same transaction, so no read goes unrecorded."""
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            profile = await uow.accounts.profile(account_id)
            await self._audit(uow, account_id, reader, "read_account", PERSONAL_FIELDS)
            await uow.commit()
        return AccountView(account, profile)

    async def export(self, account_id: str, reader: Reader | None = None) -> Tables:
        """Everything held about the account. `reader` is set when someone other than the
        customer asks (service key, operator), and is then audited."""
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            if reader is not None:
                marks = (legal_mark(reader.legal_request),) if reader.legal_request else ()
                await self._audit(uow, account_id, reader, "export", ("all", *marks))
            tables = await self._collect(uow, account)
            await uow.commit()
        return tables

    async def _audit(self, uow: UnitOfWork, account_id: str, reader: Reader, action: str,
                     fields: tuple[str, ...]) -> None:
        await uow.audit.add(AuditEntry(self._clock(), reader.actor, account_id, action, fields,
                                       reader.reason))

    async def _collect(self, uow: UnitOfWork, account: Account) -> Tables:
        account_id = account.id
        profile = await uow.accounts.profile(account_id)
        # Entries of legal requests still under a hold: not even their audit entries show.
        held = {legal_mark(r.id) for r in await uow.legal.for_account(account_id)
                if not r.visible}
        objected = await uow.accounts.objection(account_id)
        details = await uow.accounts.details(account_id)
        invoices: list[dict[str, Any]] = []
        payments: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await uow.invoices.page(account_id, None, after, 200)
            for rec in page:
                inv = rec.invoice
                dec = inv.terms.decimals
                invoices.append({
                    "id": inv.id, "status": inv.status.value,
                    "price": inv.price.as_decimal_string(), "price_currency": inv.price.currency,
                    "coin": inv.coin, "amount_due": format_units(inv.terms.amount_due, dec),
                    "address": rec.address, "rate": inv.rate.value,
                    "created_at": _ts(inv.created_at), "settled_at": _ts(inv.settled_at),
                    "metadata": json.dumps(inv.metadata, sort_keys=True, ensure_ascii=False),
                })
                payments.extend({
                    "invoice_id": inv.id, "coin": inv.coin, "txid": p.txid,
                    "output_index": p.index, "amount": format_units(p.amount, dec),
                    "status": p.status, "block_height": p.block_height,
                    "seen_at": _ts(p.seen_at),
                } for p in rec.payments)
            if len(page) < 200:
                break
            after = page[-1].invoice.id
        return {
            "profile": [{
                "id": account.id, "email": profile.email, "display_name": profile.display_name,
                "company": profile.company, "created_at": _ts(account.created_at),
                "activated_at": _ts(account.activated_at),
                "email_verified_at": _ts(details.email_verified_at),
                "two_factor_enabled_at": _ts(details.totp_enabled_at),
                "policy_version_accepted": account.policy_version,
                "deletion_due_at": _ts(account.deletion_due_at),
                "plan": account.plan, "paid_until": _ts(account.paid_until),
                "billing_state": account.billing_state.value if account.billing_state else None,
            }],
            "preferences": [{"datacenter": account.datacenter, "currency": account.currency,
                             "renewal_coin": account.renewal_coin,
                             "renewal_reminders": account.renewal_reminders}],
            "invoices": invoices,
            "payments": payments,
            "security_log": [{"event": e.event, "ip": e.ip, "at": _ts(e.at)}
                             for e in await uow.security_log.for_account(account_id)],
            "audit_log": [{"at": _ts(e.at), "actor": e.actor, "action": e.action,
                           "fields": " ".join(e.fields), "reason": e.reason}
                          for e in await uow.audit.for_account(account_id)
                          if not set(e.fields) & held],
            "sessions": await uow.personal.sessions(account_id),
            "recovery_codes": await uow.personal.recovery_codes(account_id),
            "policy_notices": await uow.personal.policy_notices(account_id),
            "webhook_events": await uow.personal.webhook_events(account_id),
            "login_throttle": await uow.personal.login_throttle(self._index(profile.email)),
            "legal_requests": [
                {"id": r.id, "received_at": _ts(r.received_at), "summary": r.summary,
                 "notified_at": _ts(r.hold_lifted_at or r.created_at)}
                for r in await uow.legal.notifiable(account_id)],
            "optional_processing": [{"objected": objected is not None, "since": _ts(objected)}],
            "paid_periods": await uow.personal.paid_periods(account_id),
            "renewals": await uow.personal.renewals(account_id),
        }
