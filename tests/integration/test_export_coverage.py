"""Issue 16, item 6 and issue 28, item 5: the personal-data export holds everything kept
about a person. Every table of a migrated database (SQLite and PostgreSQL) is classified:
exported, left out for a documented reason, or holding nothing about any account; and
every column of every table about an account is either carried by a named export field
or listed with the reason it is not (gateway.services.privacy.EXPORTED_COLUMNS and
UNEXPORTED_COLUMNS). A row about the account with every exported column filled shows up
in the export with each of those fields set. A new table or column fails this test until
someone decides."""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, inspect, update
from sqlalchemy.engine import Connection

from gateway.adapters.db import tables as t
from gateway.adapters.db.encrypted import (
    CASH_NOTE,
    LEGAL_SUMMARY,
    REFUND_ADDRESS,
    REFUND_TX_KEY,
    REFUND_URI,
)
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.attempts import password_key, second_factor_key
from gateway.services.ports import AuditEntry, Profile
from gateway.services.privacy import (
    EXPORT_COLUMNS,
    EXPORTED_COLUMNS,
    EXPORTED_FROM,
    NOT_EXPORTED,
    THROTTLE_COUNTERS,
    UNEXPORTED_COLUMNS,
    PrivacyService,
)

# Tables that hold nothing about any one account (keys of the service, chain state...).
NOT_ABOUT_ACCOUNTS = {"alembic_version", "api_keys", "derivation_counters", "chain_cursors",
                      "webhook_endpoints",
                      # Staff accounts and sessions: the staff's, never a customer's.
                      "staff_members", "staff_sessions",
                      # Work a retention run owes (a flush of erased data).
                      "retention_owed",
                      # Voucher batches: what staff made and sold, no account in them.
                      "voucher_batches"}
# Columns that tie a row to an account, directly or through a blind index of its email.
ACCOUNT_COLUMNS = {"account_id", "invoice_id", "event_id", "delivery_id", "recipient_index",
                   "email_index"}
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _schema(conn: Connection) -> dict[str, set[str]]:
    insp = inspect(conn)
    return {name: {c["name"] for c in insp.get_columns(name)}
            for name in insp.get_table_names()}


def _index(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


async def test_every_table_with_an_account_column_is_exported_or_explained(
        database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    uow = lambda: SqlUnitOfWork(engine, cipher)  # noqa: E731
    try:
        async with engine.connect() as conn:
            schema = await conn.run_sync(_schema)
        unclassified = set(schema) - set(EXPORTED_FROM) - set(NOT_EXPORTED) - NOT_ABOUT_ACCOUNTS
        assert not unclassified, f"tables the export does not account for: {unclassified}"
        for name, columns in schema.items():
            if columns & ACCOUNT_COLUMNS or name == "login_throttle":
                assert name in EXPORTED_FROM or name in NOT_EXPORTED, name
        # Column by column: exported under a named field, or left out with a reason.
        for name in set(EXPORTED_FROM) | set(NOT_EXPORTED):
            exported_cols = EXPORTED_COLUMNS.get(name, {})
            reasons = UNEXPORTED_COLUMNS.get(name, {})
            assert not set(exported_cols) & set(reasons), (name, set(exported_cols) & set(reasons))
            undecided = schema[name] - set(exported_cols) - set(reasons)
            assert not undecided, f"{name}: columns neither exported nor explained: {undecided}"
            gone = (set(exported_cols) | set(reasons)) - schema[name]
            assert not gone, f"{name}: listed columns the table does not have: {gone}"
            assert all(reason.strip() for reason in reasons.values()), name
            for column, target in exported_cols.items():
                table, _, field_name = target.partition(".")
                assert field_name in EXPORT_COLUMNS.get(table, ()), (name, column, target)
        assert not set(EXPORTED_COLUMNS) & set(NOT_EXPORTED)
        ops = (Path(__file__).parents[2] / "OPERATIONS.md").read_text()
        for name in NOT_EXPORTED:
            assert f"`{name}`" in ops, f"OPERATIONS.md does not say why {name} is not exported"

        # One row about the account in every exported table; then the export shows each.
        # Mixed case: the throttle counters are keyed by the lookup form of the email.
        aid, email = "acc_export", "Me@Example.org"
        async with uow() as u:
            await u.accounts.add(Account(aid, NOW - timedelta(days=3)),
                                 Profile(email, "Pseudo", "Company"), _index(email.lower()),
                                 "h", "v1")
            await u.security_log.add(aid, "login_failed", "192.0.2.1", NOW)
            await u.audit.add(AuditEntry(NOW, "cli:op", aid, "export", ("all",), "asked"))
            await u.commit()
        async with engine.begin() as conn:
            # Every column of the account that the export carries, filled.
            await conn.execute(update(t.accounts).where(t.accounts.c.id == aid).values(
                datacenter="is-1", currency="EUR", activated_at=NOW, totp_enabled_at=NOW,
                totp_last_step=int(NOW.timestamp()) // 30, email_verified_at=NOW,
                email_undo_until=NOW, deletion_due_at=NOW + timedelta(days=7), plan="basic",
                renewal_coin="LTC", paid_until=NOW + timedelta(days=30), paid_since=NOW,
                billing_state="active", last_login_at=NOW, inactivity_notice_at=NOW,
                optional_processing_objected_at=NOW, language="de"))
        rows: dict[Any, list[dict[str, Any]]] = {
            t.sessions: [{"id": "ses_1", "account_id": aid, "created_at": NOW,
                          "expires_at": NOW + timedelta(hours=8), "last_seen_at": NOW,
                          "revoked_at": NOW}],
            t.recovery_codes: [{"account_id": aid, "code_hash": "x", "used_at": NOW}],
            t.policy_notices: [{"account_id": aid, "version": "v2", "sent_at": NOW}],
            t.events: [{"id": "evt_1", "type": "invoice.paid", "account_id": aid,
                        "body": "{}", "created_at": NOW}],
            # Every counter of the account: login, password, second factor, mail.
            t.login_throttle: [
                {"key": key, "failures": 2, "window_started_at": NOW,
                 "locked_until": NOW + timedelta(minutes=1)}
                for key in (_index(email.lower()), password_key(aid), second_factor_key(aid),
                            _index("mail:" + email.lower()))],
            t.invoices: [{
                "id": "inv_1", "account_id": aid, "coin": "LTC", "price_minor": 400,
                "price_currency": "EUR", "rate_value": "80", "rate_source": "fixed",
                "rate_locked_at": NOW, "amount_due": 5000000, "decimals": 8,
                "confirmations_required": 3, "tolerance_basis_points": 0,
                "accept_late_payments": True, "address_space": "s", "derivation_index": 0,
                "address": "addr", "match_key": b"k", "payment_uri": "litecoin:addr",
                "status": "settled", "metadata": {"plan": "basic"}, "created_at": NOW,
                "expires_at": NOW, "monitoring_until": NOW, "settled_at": NOW}],
            t.legal_requests: [{"id": "lr_1", "received_at": NOW,
                                "summary_ct": cipher.encrypt("court order 9",
                                                             LEGAL_SUMMARY.ref("lr_1")),
                                "notify_allowed": True, "recorded_by": "cli:op",
                                "hold_lifted_at": NOW, "notice_queued_at": NOW,
                                "created_at": NOW}],
            t.legal_request_accounts: [{"request_id": "lr_1", "account_id": aid}],
            t.paid_periods: [{"invoice_id": "inv_1", "account_id": aid, "plan": "basic",
                              "periods": 1, "starts_at": NOW, "ends_at": NOW + timedelta(days=30),
                              "created_at": NOW}],
            t.renewals: [{"account_id": aid, "period_end": NOW + timedelta(days=30),
                          "invoice_id": "inv_1", "created_at": NOW,
                          "first_reminder_at": NOW, "second_reminder_at": NOW}],
            t.refunds: [{
                "id": "rfd_1", "account_id": aid, "status": "completed", "amount_minor": 250,
                "currency": "EUR", "coin": "LTC", "approvals_needed": 1,
                "address_ct": cipher.encrypt("ltc1qmine", REFUND_ADDRESS.ref("rfd_1")),
                "tx_key_ct": cipher.encrypt("txkey", REFUND_TX_KEY.ref("rfd_1")),
                "refusal_reason": "(filled for the test)", "crypto_amount": 312500,
                "rate": "80", "txid": "tx9",
                "uri_ct": cipher.encrypt("litecoin:ltc1qmine?amount=0.003125",
                                         REFUND_URI.ref("rfd_1")),
                "requested_at": NOW, "decided_at": NOW, "sent_at": NOW, "completed_at": NOW}],
            t.refund_approvals: [{"refund_id": "rfd_1", "staff_id": "stf_1", "reason": "ok",
                                  "at": NOW}],
            t.payments: [{"coin": "LTC", "txid": "tx1", "output_index": 0,
                          "invoice_id": "inv_1", "amount": 5000000, "status": "confirmed",
                          "block_height": 7, "seen_at": NOW}],
            t.credit_entries: [{"account_id": aid, "kind": "adjustment", "amount": 250,
                                "currency": "EUR", "cause": "payment:LTC:tx1:0",
                                "created_at": NOW, "invoice_id": "inv_1",
                                "refund_id": "ref_1", "coin": "LTC", "txid": "tx1",
                                "output_index": 0, "crypto_amount": 5000000, "decimals": 8,
                                "rate": "80", "rate_source": "locked",
                                "reason": "goodwill", "note": "kept for you",
                                "staff_id": "stf_1"}],
            t.cash_tokens: [{"id": "ctk_1", "account_id": aid, "token_hash": "h" * 64,
                             "created_at": NOW, "expires_at": NOW + timedelta(days=120),
                             "used_at": NOW, "amount_minor": 5000, "currency": "EUR",
                             "staff_id": "stf_1",
                             "note_ct": cipher.encrypt("one 50", CASH_NOTE.ref("ctk_1"))}],
        }
        async with engine.begin() as conn:
            for table, values in rows.items():
                await conn.execute(insert(table), values)
        service = PrivacyService(uow, passwords=None, blind_index=_index,  # type: ignore[arg-type]
                                 two_factor=None, clock=lambda: NOW,  # type: ignore[arg-type]
                                 deletion_grace=timedelta(days=7), policy_version="v1")
        export = await service.export(aid)
        assert set(export) == set(EXPORT_COLUMNS)
        for table, exported in EXPORTED_FROM.items():
            assert export[exported], f"{table}: its row about the account is not in the export"
            for row in export[exported]:
                assert set(row) == set(EXPORT_COLUMNS[exported]), exported
        # Every exported column shows up: its field is set in the export.
        for name, exported_cols in EXPORTED_COLUMNS.items():
            for column, target in exported_cols.items():
                table, _, field_name = target.partition(".")
                assert any(row[field_name] is not None for row in export[table]), \
                    f"{name}.{column}: {target} is empty in the export"
        assert json.loads(export["invoices"][0]["metadata"]) == {"plan": "basic"}
        assert sorted(r["counter"] for r in export["login_throttle"]) == \
            sorted(THROTTLE_COUNTERS)
        assert {r["failures"] for r in export["login_throttle"]} == {2}
        profile = export["profile"][0]
        assert (profile["last_login_at"], profile["inactivity_notice_at"],
                profile["paid_since"]) == ("2026-06-01T12:00:00Z",) * 3
        assert profile["two_factor_last_code_at"] == "2026-06-01T12:00:00Z"
        assert export["security_log"][0]["ip"] == "192.0.2.1"
        assert export["audit_log"][0]["reason"] == "asked"
        assert export["policy_notices"] == [{"version": "v2", "sent_at": "2026-06-01T12:00:00Z"}]
        assert export["legal_requests"][0]["summary"] == "court order 9"
        refund = export["refunds"][0]
        assert (refund["address"], refund["tx_key"], refund["amount"]) == (
            "ltc1qmine", "txkey", "2.50")
        assert json.loads(refund["approvals"]) == [{"at": "2026-06-01T12:00:00Z",
                                                    "reason": "ok"}]
        assert export["cash_tokens"] == [{
            "id": "ctk_1", "created_at": "2026-06-01T12:00:00Z",
            "expires_at": "2026-09-29T12:00:00Z", "used_at": "2026-06-01T12:00:00Z",
            "amount": "50.00", "currency": "EUR", "note": "one 50"}]
        assert export["optional_processing"] == [{"objected": True,
                                                  "since": "2026-06-01T12:00:00Z"}]
    finally:
        await engine.dispose()
