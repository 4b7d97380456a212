"""Issue 16, item 6: the personal-data export holds everything kept about a person. Every
table of a migrated database (SQLite and PostgreSQL) is classified: exported, left out
for a documented reason, or holding nothing about any account. A row about the account
in each exported table shows up in the export. A new table fails this test until it is
classified."""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.engine import Connection

from gateway.adapters.db import tables as t
from gateway.adapters.db.encrypted import LEGAL_SUMMARY
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.ports import Profile
from gateway.services.privacy import EXPORT_COLUMNS, EXPORTED_FROM, NOT_EXPORTED, PrivacyService

# Tables that hold nothing about any one account (keys of the service, chain state...).
NOT_ABOUT_ACCOUNTS = {"alembic_version", "api_keys", "derivation_counters", "chain_cursors",
                      "webhook_endpoints",
                      # Staff accounts and sessions: the staff's, never a customer's.
                      "staff_members", "staff_sessions"}
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
        ops = (Path(__file__).parents[2] / "OPERATIONS.md").read_text()
        for name in NOT_EXPORTED:
            assert f"`{name}`" in ops, f"OPERATIONS.md does not say why {name} is not exported"

        # One row about the account in every exported table; then the export shows each.
        aid, email = "acc_export", "me@example.org"
        async with uow() as u:
            await u.accounts.add(Account(aid, NOW - timedelta(days=3)),
                                 Profile(email, "Pseudo", None), _index(email), "h", "v1")
            await u.commit()
        rows: dict[Any, list[dict[str, Any]]] = {
            t.sessions: [{"id": "ses_1", "account_id": aid, "created_at": NOW,
                          "expires_at": NOW + timedelta(hours=8)}],
            t.recovery_codes: [{"account_id": aid, "code_hash": "x", "used_at": NOW}],
            t.policy_notices: [{"account_id": aid, "version": "v2", "sent_at": NOW}],
            t.events: [{"id": "evt_1", "type": "invoice.paid", "account_id": aid,
                        "body": "{}", "created_at": NOW}],
            t.login_throttle: [{"key": _index(email), "failures": 2,
                                "window_started_at": NOW}],
            t.security_log: [{"account_id": aid, "event": "login_failed", "ip": None,
                              "at": NOW}],
            t.audit_log: [{"at": NOW, "actor": "cli:op", "account_id": aid,
                           "action": "export", "fields": ["all"], "reason": "asked"}],
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
                                "created_at": NOW}],
            t.legal_request_accounts: [{"request_id": "lr_1", "account_id": aid}],
            t.paid_periods: [{"invoice_id": "inv_1", "account_id": aid, "plan": "basic",
                              "periods": 1, "starts_at": NOW, "ends_at": NOW + timedelta(days=30),
                              "created_at": NOW}],
            t.renewals: [{"account_id": aid, "period_end": NOW + timedelta(days=30),
                          "invoice_id": "inv_1", "created_at": NOW}],
            t.payments: [{"coin": "LTC", "txid": "tx1", "output_index": 0,
                          "invoice_id": "inv_1", "amount": 5000000, "status": "confirmed",
                          "seen_at": NOW}],
        }
        async with engine.begin() as conn:
            for table, values in rows.items():
                await conn.execute(insert(table), values)
        service = PrivacyService(uow, None, _index, None, lambda: NOW,  # type: ignore[arg-type]
                                 timedelta(days=7), "v1")
        export = await service.export(aid)
        assert set(export) == set(EXPORT_COLUMNS)
        for table, exported in EXPORTED_FROM.items():
            assert export[exported], f"{table}: its row about the account is not in the export"
            for row in export[exported]:
                assert set(row) == set(EXPORT_COLUMNS[exported]), exported
        assert json.loads(export["invoices"][0]["metadata"]) == {"plan": "basic"}
        assert export["login_throttle"][0]["failures"] == 2
        assert export["policy_notices"] == [{"version": "v2", "sent_at": "2026-06-01T12:00:00Z"}]
        assert export["legal_requests"][0]["summary"] == "court order 9"
        assert export["optional_processing"] == [{"objected": False, "since": None}]
    finally:
        await engine.dispose()
