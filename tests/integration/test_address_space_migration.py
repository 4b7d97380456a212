"""Migration 0011_address_spaces moves today's rows: the UTXO family names each coin's
address space and feed after the coin, so every counter carries on where it was, every
invoice keeps its index, and every cursor its block. And it goes back down."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from gateway.adapters.db.engine import alembic_config, make_engine

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _migrate(url: str, how: str, revision: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(getattr(command, how), alembic_config(url), revision).result()


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def test_existing_counters_invoices_and_cursors_move_over(database_url: str) -> None:
    _migrate(database_url, "downgrade", "0010c")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO accounts (id, email_index, email_ct, password_hash, created_at) "
                "VALUES ('acc_m', 'idx', :ct, 'h', :now)"), {"ct": b"x", "now": NOW})
            await conn.execute(text(
                "INSERT INTO derivation_counters (coin, next_index) VALUES ('LTC', 7)"))
            await conn.execute(text(
                "INSERT INTO chain_cursors (coin, height, hash, updated_at) "
                "VALUES ('LTC', 120, 'h120', :now)"), {"now": NOW})
            await conn.execute(text(
                "INSERT INTO invoices (id, account_id, coin, price_minor, price_currency, "
                "rate_value, rate_source, rate_locked_at, amount_due, decimals, "
                "confirmations_required, tolerance_basis_points, accept_late_payments, "
                "derivation_index, address, match_key, payment_uri, status, metadata, "
                "created_at, expires_at, monitoring_until) VALUES ('inv_m', 'acc_m', 'LTC', "
                "100, 'EUR', '80', 'fixed', :now, '1000', 8, 6, 0, false, 6, 'rltc1q', :key, "
                "'litecoin:rltc1q?amount=0.00001', 'new', '{}', :now, :now, :now)"),
                {"now": NOW, "key": b"\x00\x14" + bytes(20)})
    finally:
        await engine.dispose()

    _migrate(database_url, "upgrade", "head")
    assert await _rows(database_url, "SELECT space, next_index FROM derivation_counters") \
        == [("LTC", 7)]
    assert await _rows(database_url, "SELECT feed, height, hash FROM chain_cursors") \
        == [("LTC", 120, "h120")]
    assert await _rows(database_url,
                       "SELECT address_space, derivation_index FROM invoices") == [("LTC", 6)]
    assert await _rows(database_url,
                       "SELECT count(*) FROM payments WHERE lock_height IS NOT NULL") == [(0,)]

    _migrate(database_url, "downgrade", "0010c")
    assert await _rows(database_url, "SELECT coin, next_index FROM derivation_counters") \
        == [("LTC", 7)]
    assert await _rows(database_url, "SELECT coin, height FROM chain_cursors") \
        == [("LTC", 120)]
    _migrate(database_url, "upgrade", "head")
