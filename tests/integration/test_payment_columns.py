"""Issue 16, item 11: a payment record stays minimal. The `payments` table of a migrated
database (SQLite and PostgreSQL) holds exactly the columns on the allow-list documented in
docs/privacy.md: no sender, input or change address. Adding a column fails this test
until the allow-list (and the documentation) says why it is needed."""

from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine

# column -> why it is kept (the same list is in docs/privacy.md, "Payment records").
ALLOWED = {
    "id": "internal row key",
    "coin": "payment method type",
    "txid": "transaction id (the policy: transaction hash)",
    "output_index": "which output of the transaction paid the invoice",
    "invoice_id": "the invoice it pays (the account is reached through the invoice)",
    "amount": "payment amount",
    "block_hash": "which block confirmed it, to follow reorganisations",
    "block_height": "confirmations",
    "status": "pending, confirmed or reverted",
    "seen_at": "transaction date (first seen)",
    "block_time": "transaction date (block header time)",
    "lock_height": "a Monero unlock height: when it may count",
    "lock_time": "a Monero unlock time: when it may count",
}
FORBIDDEN_WORDS = ("sender", "from", "input", "change", "address", "ip", "email", "name")


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("payments")}


async def test_payments_hold_only_allow_listed_columns(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            migrated = await conn.run_sync(_columns)
    finally:
        await engine.dispose()
    declared = {c.name for c in t.payments.columns}
    assert migrated == declared, "migrations and tables.py disagree about payments"
    assert migrated == set(ALLOWED), (
        f"payments columns not on the allow-list: {sorted(migrated - set(ALLOWED))}; "
        f"allow-listed but missing: {sorted(set(ALLOWED) - migrated)}")
    for column in migrated:
        assert not any(w in column.split("_") for w in FORBIDDEN_WORDS), column
    doc = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text()
    for column in ALLOWED:
        assert f"`{column}`" in doc, f"docs/privacy.md does not document payments.{column}"
