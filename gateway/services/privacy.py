"""The privacy policy's promises to a customer: see everything held about you, have it
deleted, know who read it, and be told when the policy changes."""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.domain.accounts import Account, email_lookup_form
from gateway.domain.cash import CashToken
from gateway.domain.credit import CreditEntry, signed_fiat
from gateway.domain.errors import InvalidInput
from gateway.domain.money import format_units
from gateway.domain.refunds import Refund
from gateway.domain.throttle import ThrottlePolicy
from gateway.domain.timestamps import rfc3339
from gateway.services.accounts import AccountView
from gateway.services.attempts import (
    Attempts,
    PasswordCheck,
    password_key,
    second_factor_key,
)
from gateway.services.errors import NotFound
from gateway.services.legal import legal_mark
from gateway.services.ports import (
    AuditEntry,
    Clock,
    PasswordHasher,
    PrivacyUnit,
    Profile,
)
from gateway.services.two_factor import TwoFactorService

# One table per kind of record; the CSV export is a zip with one file per table.
Tables = dict[str, list[dict[str, Any]]]

EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "profile": ("id", "email", "display_name", "company", "created_at", "activated_at",
                "email_verified_at", "two_factor_enabled_at", "policy_version_accepted",
                "deletion_due_at", "plan", "paid_since", "paid_until", "billing_state",
                "last_login_at", "inactivity_notice_at", "email_undo_until",
                "two_factor_last_code_at"),
    "preferences": ("datacenter", "currency", "renewal_coin", "renewal_reminders",
                    "language"),
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
    "login_throttle": ("counter", "failures", "window_started_at", "locked_until"),
    "legal_requests": ("id", "received_at", "summary", "notified_at", "mailed_at"),
    "optional_processing": ("objected", "since"),
    "paid_periods": ("invoice_id", "plan", "periods", "starts_at", "ends_at", "created_at"),
    "renewals": ("invoice_id", "period_end", "created_at", "first_reminder_at",
                 "second_reminder_at"),
    "credit_entries": ("id", "kind", "amount", "currency", "cause", "created_at",
                       "invoice_id", "refund_id", "coin", "txid", "output_index",
                       "crypto_amount", "decimals", "rate", "rate_source", "reason", "note"),
    "refunds": ("id", "status", "amount", "currency", "coin", "address", "approvals_needed",
                "approvals", "amount_base_units", "rate", "payment_request", "txid",
                "tx_key", "refusal_reason", "requested_at", "decided_at", "sent_at",
                "completed_at"),
    "cash_tokens": ("id", "created_at", "expires_at", "used_at", "amount", "currency",
                    "note"),
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
    "login_throttle": "login_throttle",  # the account's counters (THROTTLE_COUNTERS)
    "legal_requests": "legal_requests",  # only those the customer may be told of
    "legal_request_accounts": "legal_requests",
    "paid_periods": "paid_periods",
    "renewals": "renewals",
    "credit_entries": "credit_entries",
    "refunds": "refunds",
    "refund_approvals": "refunds",  # each refund's approvals (time and reason)
    "cash_tokens": "cash_tokens",  # cash by mail: the tokens, never the token itself
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
    "refund_watches": "how the watcher finds an approved refund's payment on the chain (the "
                      "address in the form it matches, encrypted, and its state); the "
                      "refund, with its address, status and txid, is exported",
    "refund_outputs": "the outputs seen paying an approved refund's address (public chain "
                      "data); the refund and its txid are exported",
    "vouchers": "a voucher code's keyed hash, its batch, and when and by which account it "
                "was redeemed; the credit entry the code wrote (kind voucher, its cause "
                "naming the voucher) is exported",
}

# Column by column, for every table above (exported or not): the export field that
# carries the column ("table.field"), or why the export leaves it out. The coverage test
# (tests/integration/test_export_coverage.py) fails on a column in neither map, so a new
# column is exported or explained before it ships, and fills every exported column of a
# row about the account and finds each in the export.
_ROW_KEY = "an internal row number, meaningless outside this database"
_ACCOUNT = "the account's own id, already the profile's id"
_DELIVERY = ("how the service delivers events to the integrator's endpoint (the events "
             "themselves are exported)")
EXPORTED_COLUMNS: dict[str, dict[str, str]] = {
    "accounts": {
        "id": "profile.id", "email_ct": "profile.email",
        "display_name_ct": "profile.display_name", "company_ct": "profile.company",
        "datacenter": "preferences.datacenter", "currency": "preferences.currency",
        "policy_version": "profile.policy_version_accepted",
        "created_at": "profile.created_at", "activated_at": "profile.activated_at",
        "totp_enabled_at": "profile.two_factor_enabled_at",
        "totp_last_step": "profile.two_factor_last_code_at",
        "email_verified_at": "profile.email_verified_at",
        "email_undo_until": "profile.email_undo_until",
        "deletion_due_at": "profile.deletion_due_at", "plan": "profile.plan",
        "renewal_coin": "preferences.renewal_coin", "paid_until": "profile.paid_until",
        "paid_since": "profile.paid_since", "billing_state": "profile.billing_state",
        "renewal_reminders": "preferences.renewal_reminders",
        "language": "preferences.language",
        "last_login_at": "profile.last_login_at",
        "inactivity_notice_at": "profile.inactivity_notice_at",
        "optional_processing_objected_at": "optional_processing.since",
    },
    "renewals": {"period_end": "renewals.period_end", "invoice_id": "renewals.invoice_id",
                 "created_at": "renewals.created_at",
                 "first_reminder_at": "renewals.first_reminder_at",
                 "second_reminder_at": "renewals.second_reminder_at"},
    "credit_entries": {c: f"credit_entries.{c}" for c in (
        "id", "kind", "amount", "currency", "cause", "created_at", "invoice_id",
        "refund_id", "coin", "txid", "output_index", "crypto_amount", "decimals", "rate",
        "rate_source", "reason", "note")},
    "paid_periods": {"invoice_id": "paid_periods.invoice_id", "plan": "paid_periods.plan",
                     "periods": "paid_periods.periods", "starts_at": "paid_periods.starts_at",
                     "ends_at": "paid_periods.ends_at",
                     "created_at": "paid_periods.created_at"},
    "audit_log": {"at": "audit_log.at", "actor": "audit_log.actor",
                  "action": "audit_log.action", "fields": "audit_log.fields",
                  "reason": "audit_log.reason", "reason_ct": "audit_log.reason"},
    "policy_notices": {"version": "policy_notices.version",
                       "sent_at": "policy_notices.sent_at"},
    "login_throttle": {"key": "login_throttle.counter", "failures": "login_throttle.failures",
                       "window_started_at": "login_throttle.window_started_at",
                       "locked_until": "login_throttle.locked_until"},
    "security_log": {"event": "security_log.event", "ip": "security_log.ip",
                     "ip_ct": "security_log.ip", "at": "security_log.at"},
    "legal_requests": {"id": "legal_requests.id",
                       "received_at": "legal_requests.received_at",
                       "summary_ct": "legal_requests.summary",
                       "hold_lifted_at": "legal_requests.notified_at",
                       "created_at": "legal_requests.notified_at",
                       "notice_queued_at": "legal_requests.mailed_at"},
    "legal_request_accounts": {"request_id": "legal_requests.id"},
    "recovery_codes": {"used_at": "recovery_codes.used_at"},
    "sessions": {"created_at": "sessions.created_at", "expires_at": "sessions.expires_at",
                 "last_seen_at": "sessions.last_seen_at",
                 "revoked_at": "sessions.revoked_at"},
    "invoices": {"id": "invoices.id", "coin": "invoices.coin", "price_minor": "invoices.price",
                 "price_currency": "invoices.price_currency", "rate_value": "invoices.rate",
                 "amount_due": "invoices.amount_due", "address": "invoices.address",
                 "status": "invoices.status", "metadata": "invoices.metadata",
                 "created_at": "invoices.created_at", "settled_at": "invoices.settled_at"},
    "payments": {"coin": "payments.coin", "txid": "payments.txid",
                 "output_index": "payments.output_index", "invoice_id": "payments.invoice_id",
                 "amount": "payments.amount", "block_height": "payments.block_height",
                 "status": "payments.status", "seen_at": "payments.seen_at"},
    "events": {"id": "webhook_events.id", "type": "webhook_events.type",
               "body": "webhook_events.body", "created_at": "webhook_events.created_at"},
}
EXPORTED_COLUMNS.update({
    "refunds": {
        "id": "refunds.id", "status": "refunds.status", "amount_minor": "refunds.amount",
        "currency": "refunds.currency", "coin": "refunds.coin",
        "address_ct": "refunds.address", "approvals_needed": "refunds.approvals_needed",
        "crypto_amount": "refunds.amount_base_units", "rate": "refunds.rate",
        "uri_ct": "refunds.payment_request", "txid": "refunds.txid", "tx_key_ct": "refunds.tx_key",
        "refusal_reason": "refunds.refusal_reason", "requested_at": "refunds.requested_at",
        "decided_at": "refunds.decided_at", "sent_at": "refunds.sent_at",
        "completed_at": "refunds.completed_at"},
    "refund_approvals": {"refund_id": "refunds.id", "reason": "refunds.approvals",
                         "at": "refunds.approvals"},
    "cash_tokens": {"id": "cash_tokens.id", "created_at": "cash_tokens.created_at",
                    "expires_at": "cash_tokens.expires_at",
                    "used_at": "cash_tokens.used_at", "amount_minor": "cash_tokens.amount",
                    "currency": "cash_tokens.currency", "note_ct": "cash_tokens.note"},
})
_OPERATOR_WALLET = ("what the operator's own wallet signs and sends; the amount, address "
                    "and transaction are exported")
UNEXPORTED_COLUMNS: dict[str, dict[str, str]] = {
    "refunds": {
        "account_id": _ACCOUNT,
        "refused_by": "which of the operator's staff refused it (the reason is exported)",
        "psbt_ct": _OPERATOR_WALLET, "fee": _OPERATOR_WALLET, "spends": _OPERATOR_WALLET,
        "change_index": "which of the service's keys receives the change",
        "erased_at": "when retention erased the address, tx key and payment request (then "
                     "exported empty)"},
    "refund_approvals": {"staff_id": "which of the operator's staff approved it (the time "
                                     "and reason are exported)"},
    "cash_tokens": {"account_id": _ACCOUNT,
                    "token_hash": "a keyed hash of the token, which was shown to the "
                                  "customer once and is kept nowhere in clear",
                    "staff_id": "which staff member recorded the envelope: the "
                                "operator's staff (the amount and time are exported)"},
    "accounts": {
        "email_index": "a keyed hash of the email, which is exported in clear",
        "password_hash": "a slow hash of the password: a copy would let whoever holds the "
                         "file guess the password offline",
        "totp_secret_ct": "the second factor's secret: a copy would be a second factor for "
                          "whoever holds the file (the customer has it in their app)",
        "deleted_at": "always empty while the account can be exported",
    },
    "renewals": {"id": _ROW_KEY, "account_id": _ACCOUNT},
    "paid_periods": {"account_id": _ACCOUNT},
    "credit_entries": {"account_id": _ACCOUNT,
                       "staff_id": "which staff member adjusted the balance: the "
                                   "operator's staff, not the customer's data (the "
                                   "entry and its reason are exported)"},
    "audit_log": {"id": _ROW_KEY, "account_id": _ACCOUNT},
    "policy_notices": {"account_id": _ACCOUNT},
    "security_log": {"id": _ROW_KEY, "account_id": _ACCOUNT},
    "legal_requests": {
        "notify_allowed": "only requests the customer may be told of are exported",
        "recorded_by": "which operator recorded the request: the operator's staff, not the "
                       "customer's data"},
    "legal_request_accounts": {"account_id": _ACCOUNT},
    "recovery_codes": {"id": _ROW_KEY, "account_id": _ACCOUNT,
                       "code_hash": "a slow hash of the code: a copy would let whoever "
                                    "holds the file guess the codes offline"},
    "sessions": {"id": "the session token's id, meaningful only to the server",
                 "account_id": _ACCOUNT},
    "invoices": {
        "account_id": _ACCOUNT,
        "rate_source": "which configured rate source the service used",
        "rate_locked_at": "when the service fixed the rate (at the invoice's creation)",
        "decimals": "the coin's decimal places, already applied to amount_due",
        "confirmations_required": "the service's payment-matching setting",
        "tolerance_basis_points": "the service's payment-matching setting",
        "accept_late_payments": "the service's payment-matching setting",
        "address_space": "which of the service's keys derived the address",
        "derivation_index": "which of the service's keys derived the address",
        "match_key": "the address again, in the form payments are matched on",
        "payment_uri": "the address and amount again, as a wallet link",
        "exception": "the service's internal flag for a payment needing review; the "
                     "status is exported",
        "expires_at": "the service's payment window",
        "monitoring_until": "how long the service watches the address",
    },
    "payments": {
        "id": _ROW_KEY,
        "block_hash": "public chain data: the block of the exported transaction",
        "block_time": "public chain data: the block of the exported transaction",
        "lock_height": "public chain data: the exported transaction's unlock height",
        "lock_time": "public chain data: the exported transaction's unlock time",
    },
    "events": {"seq": _ROW_KEY, "account_id": _ACCOUNT,
               "lane": "delivery order of the events, the service's bookkeeping",
               "after_lane": "delivery order of the events, the service's bookkeeping"},
    # Tables left out whole (NOT_EXPORTED says why), column by column all the same.
    "mail_queue": {
        "id": _ROW_KEY, "recipient_index": "a keyed hash of the recipient",
        "recipient_ct": "the mail, which reaches the customer: NOT_EXPORTED",
        "subject_ct": "the mail, which reaches the customer: NOT_EXPORTED",
        "body_ct": "the mail, which reaches the customer: NOT_EXPORTED",
        "attempts": "sending state", "next_attempt_at": "sending state",
        "lease_until": "sending state", "created_at": "sending state",
        "notice_account_id": "sending state: the account an inactivity notice warns (the "
                             "notice time is exported)"},
    "idempotency_keys": {
        "scope": "an API key id or the account id", "key": "the integrator's request key",
        "fingerprint": "a hash of the request", "state": "request state",
        "owner": "request state", "invoice_id": "the invoice, exported",
        "created_at": "request state", "updated_at": "request state"},
    "deliveries": {column: _DELIVERY for column in (
        "id", "event_id", "endpoint_id", "status", "attempts", "next_attempt_at",
        "lease_until", "last_status_code", "last_error", "created_at", "updated_at",
        "priority")},
    "delivery_attempts": {column: _DELIVERY for column in (
        "id", "delivery_id", "at", "status_code", "latency_ms", "error")},
    "staff_log": {column: "the staff's own security log: NOT_EXPORTED" for column in (
        "id", "staff", "action", "subject", "ip_ct", "at")},
    "refund_watches": {column: "the watcher's bookkeeping of a refund: NOT_EXPORTED"
                       for column in ("id", "refund_id", "account_id", "coin",
                                      "address_space", "match_key_ct", "match_index",
                                      "amount",
                                      "confirmations_required", "state", "txid",
                                      "created_at", "sent_at", "completed_at")},
    "refund_outputs": {column: "chain data of a refund's payment: NOT_EXPORTED"
                       for column in ("id", "refund_id", "coin", "txid", "output_index",
                                      "amount", "block_hash", "block_height", "status",
                                      "seen_at")},
    "vouchers": {"id": "the voucher, named by the exported credit entry's cause",
                 "batch_id": "which batch (reseller) the code came from: NOT_EXPORTED",
                 "code_hash": "a keyed hash of the code, useless without the index key",
                 "redeemed_at": "the exported credit entry's time",
                 "redeemed_by": _ACCOUNT},
}

# The failure counters of the login-throttle table that belong to an account, by the name
# the export gives them. Per-network login counters are keyed hashes of the email and the
# client's network, which cannot be found from the account (they last 24 hours).
THROTTLE_COUNTERS = ("login", "password", "second_factor", "mail")

PERSONAL_FIELDS = ("email", "display_name", "company", "datacenter", "currency")


@dataclass(frozen=True)
class Reader:
    """Who reads personal data on the service side, and why (for the access audit)."""

    actor: str
    reason: str | None = None
    # The legal request this read serves: its audit entry is withheld from the customer
    # while that request is under a hold.
    legal_request: str | None = None


# Why someone other than the customer reads their data: 10 to 200 characters once its
# runs of spaces are collapsed. One rule for the API's header, the staff console and the
# operator's CLI; the customer reads it in the access audit of their export.
REASON_MIN, REASON_MAX = 10, 200


def collapse_reason(raw: str) -> str:
    return " ".join(raw.split())


def reason_problem(reason: str) -> str | None:
    """What breaks the rule in a (collapsed) reason, if anything."""
    if len(reason) < REASON_MIN:
        return f"at least {REASON_MIN} characters"
    if len(reason) > REASON_MAX:
        return f"at most {REASON_MAX} characters"
    return None


def require_reason(reader: Reader) -> None:
    """Every read by someone other than the customer says why, by the rule above."""
    problem = reason_problem(collapse_reason(reader.reason or ""))
    if problem is not None:
        raise InvalidInput("reason", f"say why you read this customer's data ({problem}, "
                                     "spaces collapsed); the customer sees it in the "
                                     "access audit of their export")


def _refund_row(r: Refund) -> dict[str, Any]:
    q = r.quote
    return {
        "id": r.id, "status": r.status.value, "amount": r.amount_text,
        "currency": r.currency, "coin": r.coin, "address": r.address,
        "approvals_needed": r.approvals_needed,
        "approvals": json.dumps([{"at": _ts(a.at), "reason": a.reason} for a in r.approvals]),
        "amount_base_units": None if q is None else str(q.crypto_amount),
        "rate": None if q is None else q.rate, "payment_request": None if q is None else q.uri,
        "txid": r.txid, "tx_key": r.tx_key, "refusal_reason": r.refused_reason,
        "requested_at": _ts(r.requested_at), "decided_at": _ts(r.decided_at),
        "sent_at": _ts(r.sent_at), "completed_at": _ts(r.completed_at)}


def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


class PrivacyService:
    def __init__(
        self,
        uow: Callable[[], PrivacyUnit],
        *,
        passwords: PasswordHasher,
        blind_index: Callable[[str], str],
        two_factor: TwoFactorService,
        clock: Clock,
        deletion_grace: timedelta,
        policy_version: str,
        throttle: ThrottlePolicy | None = None,
        reader: Callable[[], PrivacyUnit] | None = None,
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

    async def read_account(self, account_id: str, reader: Reader,
                           also: tuple[str, ...] = ()) -> AccountView:
        """A service's read of personal data: allowed by the key's scope, and audited in the
        same transaction, so no read goes unrecorded. `also` names what else the reader is
        shown with it (the staff console shows the account's invoices)."""
        require_reason(reader)
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.deleted:
                raise NotFound("account")
            profile = await uow.accounts.profile(account_id)
            await self._audit(uow, account_id, reader, "read_account",
                              (*PERSONAL_FIELDS, *also))
            await uow.commit()
        return AccountView(account, profile)

    async def record_access(self, account_ids: Iterable[str], reader: Reader, action: str,
                            fields: tuple[str, ...]) -> None:
        """A look at customers' data that another service reads (the staff console's
        account, invoice and ledger views): one access-audit entry per account, committed
        before the page is shown, so a failed write shows nothing."""
        require_reason(reader)
        async with self._uow() as uow:
            for account_id in dict.fromkeys(account_ids):  # once each, in order
                await self._audit(uow, account_id, reader, action, fields)
            await uow.commit()

    async def export(self, account_id: str, reader: Reader | None = None) -> Tables:
        """Everything held about the account. `reader` is set when someone other than the
        customer asks (service key, operator), and is then audited with its reason."""
        if reader is not None:
            require_reason(reader)
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

    async def _audit(self, uow: PrivacyUnit, account_id: str, reader: Reader, action: str,
                     fields: tuple[str, ...]) -> None:
        await uow.audit.add(AuditEntry(self._clock(), reader.actor, account_id, action, fields,
                                       reader.reason))

    def _throttle_keys(self, account_id: str, email: str) -> dict[str, str]:
        """The login-throttle keys of the account's counters (THROTTLE_COUNTERS), as
        gateway.services.attempts, accounts and recovery write them."""
        lookup = email_lookup_form(email)
        return {self._index(lookup): "login", password_key(account_id): "password",
                second_factor_key(account_id): "second_factor",
                self._index("mail:" + lookup): "mail"}

    async def _collect(self, uow: PrivacyUnit, account: Account) -> Tables:
        account_id = account.id
        profile = await uow.accounts.profile(account_id)
        # Entries of legal requests still under a hold: not even their audit entries show.
        held = {legal_mark(r.id) for r in await uow.legal.for_account(account_id)
                if not r.visible}
        objected = await uow.accounts.objection(account_id)
        invoices, payments = await _billing_records(uow, account_id)
        return {
            "profile": [await _profile_row(uow, account, profile)],
            "preferences": [{"datacenter": account.datacenter, "currency": account.currency,
                             "renewal_coin": account.renewal_coin,
                             "renewal_reminders": account.renewal_reminders,
                             "language": account.language}],
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
            "login_throttle": await uow.personal.login_throttle(
                self._throttle_keys(account_id, profile.email)),
            "legal_requests": [
                {"id": r.id, "received_at": _ts(r.received_at), "summary": r.summary,
                 "notified_at": _ts(r.hold_lifted_at or r.created_at),
                 "mailed_at": _ts(r.notice_queued_at)}
                for r in await uow.legal.notifiable(account_id)],
            "optional_processing": [{"objected": objected is not None, "since": _ts(objected)}],
            "paid_periods": await uow.personal.paid_periods(account_id),
            "renewals": await uow.personal.renewals(account_id),
            "credit_entries": [_credit_row(e)
                               for e in await uow.credit.entries(account_id, 1_000_000)],
            "refunds": [_refund_row(r)
                        for r in await uow.refunds.of_account(account_id, 100_000)],
            "cash_tokens": [_cash_row(c)
                            for c in await uow.cash_tokens.of_account(account_id)],
        }


def _cash_row(c: CashToken) -> dict[str, Any]:
    """A cash-by-mail token (docs/cash.md): when given, until when, its envelope."""
    return {"id": c.id, "created_at": _ts(c.created_at), "expires_at": _ts(c.expires_at),
            "used_at": _ts(c.used_at),
            "amount": (signed_fiat(c.amount, c.currency)
                       if c.amount is not None and c.currency else None),
            "currency": c.currency, "note": c.note}


def _credit_row(e: CreditEntry) -> dict[str, Any]:
    """One entry of the account's credit ledger (docs/credit.md), as stored."""
    c = e.conversion
    return {"id": e.id, "kind": e.kind.value, "amount": e.amount, "currency": e.currency,
            "cause": e.cause, "created_at": _ts(e.created_at), "invoice_id": e.invoice_id,
            "refund_id": e.refund_id, "coin": c.coin if c else None,
            "txid": c.txid if c else None, "output_index": c.output_index if c else None,
            "crypto_amount": str(c.crypto_amount) if c else None,
            "decimals": c.decimals if c else None, "rate": c.rate if c else None,
            "rate_source": c.rate_source if c else None,
            "reason": e.reason.value if e.reason else None, "note": e.note}


async def _profile_row(uow: PrivacyUnit, account: Account, profile: Profile
                       ) -> dict[str, Any]:
    details = await uow.accounts.details(account.id)
    return {
        "id": account.id, "email": profile.email, "display_name": profile.display_name,
        "company": profile.company, "created_at": _ts(account.created_at),
        "activated_at": _ts(account.activated_at),
        "email_verified_at": _ts(details.email_verified_at),
        "two_factor_enabled_at": _ts(details.totp_enabled_at),
        "policy_version_accepted": account.policy_version,
        "deletion_due_at": _ts(account.deletion_due_at),
        "plan": account.plan, "paid_since": _ts(account.paid_since),
        "paid_until": _ts(account.paid_until),
        "billing_state": account.billing_state.value if account.billing_state else None,
        **await uow.personal.account_activity(account.id),
    }


async def _billing_records(uow: PrivacyUnit, account_id: str
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The account's invoices and their payments, as export rows, page by page."""
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
            return invoices, payments
        after = page[-1].invoice.id
