"""Issue 28, item 8: an erased account keeps no time or setting that is not a billing
record: last login, objection, inactivity notice, email-change undo window, signup and
activation times, the accepted policy, the renewal plan, coin and reminder setting, the
paid time, the billing state, and when renewal reminders were mailed. The columns checked
come from the schema: every column of `accounts` is empty after the erasure unless it is
listed in KEPT with its reason. The billing records stay (the
invoice, what it bought, which invoice renewed which period). Checked row by row and in
what the database holds as bytes (the SQLite file with its write-ahead log; every
PostgreSQL row as text), on SQLite and PostgreSQL."""

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import erase_residue, make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.services.retention import RetentionPeriods, RetentionService
from tests.integration.test_address_space_migration import _migrate
from tests.support.db_bytes import database_bytes, holds

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def moment(n: int) -> datetime:
    """A time no other value in the database shares (its microseconds name it)."""
    return datetime(2025, 1, 2, 3, 4, 5, 123401 + 10 * n, tzinfo=UTC)  # no trailing 0


# Column -> a distinctive value; all of them must be empty after the erasure.
PERSONAL_TIMES = {
    "last_login_at": moment(1), "inactivity_notice_at": moment(2),
    "optional_processing_objected_at": moment(3), "email_undo_until": moment(4),
    "activated_at": moment(5), "paid_until": moment(6), "paid_since": moment(7),
}
SIGNUP = moment(8)
REMINDERS = {"first_reminder_at": moment(9), "second_reminder_at": moment(10)}
SETTINGS = {"policy_version": "policy-v-erase-me", "plan": "plan-erase-me",
            "renewal_coin": "LTC", "billing_state": "suspended"}
# The rest of the account's columns that the erasure empties, each with a value.
OTHER_CLEARED = {"display_name_ct": b"name-ct", "company_ct": b"company-ct",
                 "datacenter": "dc-erase-me", "currency": "XTS",
                 "totp_secret_ct": b"totp-ct", "totp_enabled_at": moment(11),
                 "totp_last_step": 987654321, "email_verified_at": moment(12),
                 "deletion_due_at": NOW - timedelta(days=1), "language": "fa"}
# The columns an erased account keeps a value in, each with why and the value it keeps.
# Every other column of `accounts` must be empty after the erasure: a new column fails
# this test until someone decides which it is.
KEPT = {
    "id": ("the tombstone the billing records refer to", "acc_1"),
    "email_index": ("cannot be empty and is unique: replaced by one derived from the id "
                    "(the old one is a blind index of the email)", "deleted:acc_1"),
    "email_ct": ("cannot be empty: emptied", b""),
    "password_hash": ("cannot be empty: a value no password matches", "!deleted"),
    "created_at": ("cannot be empty: the erasure time, not the signup time", NOW),
    "deleted_at": ("that the account is erased, and when", NOW),
    "renewal_reminders": ("cannot be empty: the customer's choice goes back to the "
                          "default", True),
}


def as_stored(at: datetime) -> str:
    """How both databases write the time out (SQLite's text, PostgreSQL's row text)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


async def test_erasure_clears_every_time_and_setting_billing_does_not_need(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    service = RetentionService(lambda: SqlUnitOfWork(engine, cipher), lambda: NOW,
                               periods=RetentionPeriods(),
                               flush=lambda: erase_residue(engine))
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(t.accounts).values(
                id="acc_1", email_index="ix1", email_ct=b"ct", password_hash="h",
                created_at=SIGNUP, renewal_reminders=False, **OTHER_CLEARED,
                **PERSONAL_TIMES, **SETTINGS))
            await conn.execute(insert(t.invoices).values(
                id="inv_1", account_id="acc_1", coin="LTC", price_minor=400,
                price_currency="EUR", rate_value="80", rate_source="fixed",
                rate_locked_at=NOW, amount_due=5000000, decimals=8,
                confirmations_required=3, tolerance_basis_points=0,
                accept_late_payments=True, address_space="s", derivation_index=0,
                address="addr", match_key=b"k", payment_uri="litecoin:addr",
                status="settled", metadata={}, created_at=NOW, expires_at=NOW,
                monitoring_until=NOW, settled_at=NOW - timedelta(days=40)))
            await conn.execute(insert(t.paid_periods).values(
                invoice_id="inv_1", account_id="acc_1", plan="basic", periods=1,
                starts_at=NOW - timedelta(days=40), ends_at=NOW - timedelta(days=10),
                created_at=NOW - timedelta(days=40)))
            await conn.execute(insert(t.renewals).values(
                account_id="acc_1", period_end=NOW - timedelta(days=10),
                invoice_id="inv_1", created_at=NOW - timedelta(days=17), **REMINDERS))
        every = [*PERSONAL_TIMES.values(), SIGNUP, *REMINDERS.values()]
        before = await database_bytes(database_url)
        for at in every:  # the search finds each value while it is stored
            assert holds(before, as_stored(at)), at
        for value in SETTINGS.values():
            assert holds(before, value), value

        counts = await service.run()
        assert (counts["account_deletions"], counts["erasure_failures"]) == (1, 0)

        async with engine.connect() as conn:
            row = (await conn.execute(select(t.accounts))).one()
            renewal = (await conn.execute(select(t.renewals))).one()
            invoice = (await conn.execute(select(t.invoices))).one()
            period = (await conn.execute(select(t.paid_periods))).one()
        columns = set(t.accounts.c.keys())
        cleared = {*PERSONAL_TIMES, *SETTINGS, *OTHER_CLEARED}
        # Every column is either kept (with a reason) or given a value here and cleared.
        assert columns == cleared | set(KEPT), columns ^ (cleared | set(KEPT))
        assert not cleared & set(KEPT)
        for column in sorted(columns - set(KEPT)):
            assert getattr(row, column) is None, column
        for column, (_why, value) in KEPT.items():
            assert getattr(row, column) == value, column
        for column in REMINDERS:
            assert getattr(renewal, column) is None, column
        # The billing records, still tied to the tombstone.
        assert (invoice.account_id, period.account_id, renewal.account_id) == (
            "acc_1", "acc_1", "acc_1")
        assert renewal.invoice_id == "inv_1" and period.plan == "basic"

        after = await database_bytes(database_url)
        for at in every:
            assert not holds(after, as_stored(at)), at
        for value in ("policy-v-erase-me", "plan-erase-me"):
            assert not holds(after, value), value
    finally:
        await engine.dispose()


async def test_the_migration_clears_accounts_erased_before_it(database_url: str) -> None:
    """Tombstones erased by an earlier version keep those columns: migration
    0017r_erased_tombstones clears them (and leaves live accounts alone)."""
    _migrate(database_url, "downgrade", "0016l_legal_notice_mail")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for account_id, deleted in (("acc_gone", NOW), ("acc_live", None)):
                await conn.execute(insert(t.accounts).values(
                    id=account_id, email_index=account_id, email_ct=b"", password_hash="h",
                    created_at=SIGNUP, deleted_at=deleted, renewal_reminders=False,
                    **PERSONAL_TIMES, **SETTINGS))
            await conn.execute(insert(t.invoices).values(
                id="inv_1", account_id="acc_gone", coin="LTC", price_minor=400,
                price_currency="EUR", rate_value="80", rate_source="fixed",
                rate_locked_at=NOW, amount_due=5000000, decimals=8,
                confirmations_required=3, tolerance_basis_points=0,
                accept_late_payments=True, address_space="s", derivation_index=0,
                address="addr", match_key=b"k", payment_uri="litecoin:addr",
                status="settled", metadata={}, created_at=NOW, expires_at=NOW,
                monitoring_until=NOW, settled_at=NOW))
            await conn.execute(insert(t.renewals).values(
                account_id="acc_gone", period_end=NOW, invoice_id="inv_1", created_at=NOW,
                **REMINDERS))
    finally:
        await engine.dispose()
    _migrate(database_url, "upgrade", "head")
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = {r.id: r for r in await conn.execute(select(t.accounts))}
            renewal = (await conn.execute(select(t.renewals))).one()
        for column in [*PERSONAL_TIMES, *SETTINGS]:
            assert getattr(rows["acc_gone"], column) is None, column
            assert getattr(rows["acc_live"], column) is not None, column
        assert rows["acc_gone"].created_at == NOW and rows["acc_live"].created_at == SIGNUP
        # 0018n_retention_review: the customer's reminder setting back to its default.
        assert rows["acc_gone"].renewal_reminders is True
        assert rows["acc_live"].renewal_reminders is False
        for column in REMINDERS:
            assert getattr(renewal, column) is None, column
    finally:
        await engine.dispose()
