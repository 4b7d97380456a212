"""Migration 0012d_prepaid_time on a database with accounts and invoices in it: existing
accounts get no paid time and reminders on; it goes back down and up again."""

from datetime import UTC, datetime

from tests.integration.test_address_space_migration import _migrate, _rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_existing_accounts_get_no_paid_time_and_reminders_on(database_url: str) -> None:
    from sqlalchemy import text

    from gateway.adapters.db.engine import make_engine

    _migrate(database_url, "downgrade", "0011_address_spaces")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO accounts (id, email_index, email_ct, password_hash, created_at) "
                "VALUES ('acc_p', 'idx', :ct, 'h', :now)"), {"ct": b"x", "now": NOW})
            await conn.execute(text(
                "INSERT INTO sessions (id, account_id, created_at, expires_at) "
                "VALUES ('ses_p', 'acc_p', :now, :now)"), {"now": NOW})
    finally:
        await engine.dispose()
    _migrate(database_url, "upgrade", "head")
    assert await _rows(database_url, "SELECT id, plan, paid_until, billing_state, "
                       "renewal_reminders FROM accounts") in (
        [("acc_p", None, None, None, True)], [("acc_p", None, None, None, 1)])
    assert await _rows(database_url, "SELECT count(*) FROM renewals") == [(0,)]
    _migrate(database_url, "downgrade", "0011_address_spaces")
    assert await _rows(database_url, "SELECT id FROM accounts") == [("acc_p",)]
    _migrate(database_url, "upgrade", "head")
    assert await _rows(database_url, "SELECT count(*) FROM paid_periods") == [(0,)]
