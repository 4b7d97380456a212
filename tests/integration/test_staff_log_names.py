"""Issue 28, item 7: a failed staff login never stores what was typed as the name. A
customer's email or a password typed into the name field was kept verbatim in
`staff_log` for its 30 days; now a failed login at an unknown name keeps only a short
keyed hash (to count attempts), and migration 0015p clears the names old rows typed.
On SQLite (the file's bytes) and PostgreSQL (every row as text)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.passwords import Argon2Passwords
from gateway.adapters.totp import PyotpCodes
from gateway.services.errors import Unauthorized
from gateway.services.staff import StaffPolicy, StaffService
from tests.integration.test_address_space_migration import _migrate
from tests.support.db_bytes import database_bytes, holds

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TYPED_EMAIL = "customer.typed.here@example.org"
TYPED_PASSWORD = "Hunter2-typed-as-a-name"


async def test_a_failed_staff_login_keeps_nothing_typed(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", b"k" * 32)])
    index = BlindIndex(b"i" * 32)
    service = StaffService(lambda: SqlUnitOfWork(engine, cipher),
                           passwords=Argon2Passwords(time_cost=1, memory_kib=1024),
                           codes=PyotpCodes(), blind_index=index, clock=lambda: NOW,
                           policy=StaffPolicy())
    try:
        await service.add("ada", "admin", "a long staff password 1")
        for typed in (TYPED_EMAIL, TYPED_PASSWORD, TYPED_EMAIL, "ada"):
            with pytest.raises(Unauthorized):
                await service.log_in(typed, "wrong password here", None, "192.0.2.7")
        async with engine.connect() as conn:
            logged = [r.staff for r in await conn.execute(
                select(t.staff_log.c.staff).where(t.staff_log.c.action == "login_failed")
                .order_by(t.staff_log.c.id))]
    finally:
        await engine.dispose()
    # A member's own name is kept; an unknown name only as a keyed hash, the same one for
    # the same name, so attempts can be counted.
    assert logged[3] == "ada"
    assert logged[0] == logged[2] != logged[1]
    assert all(name.startswith("?") and len(name) == 9 for name in logged[:3]), logged
    raw = await database_bytes(database_url)
    assert holds(raw, "ada")  # the search sees what is there
    for typed in (TYPED_EMAIL, TYPED_PASSWORD, TYPED_EMAIL.upper(), TYPED_PASSWORD.lower()):
        assert not holds(raw, typed.lower()) and not holds(raw, typed), typed


async def test_the_migration_clears_typed_names_of_old_failed_logins(
        database_url: str) -> None:
    _migrate(database_url, "downgrade", "0014y_email_undo_window")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(t.staff_members), [{
                "id": "stf_a", "name": "ada", "role": "admin", "password_hash": "h",
                "created_at": NOW}])
            await conn.execute(insert(t.staff_log), [
                {"staff": TYPED_EMAIL, "action": "login_failed", "subject": None, "at": NOW},
                {"staff": "ada", "action": "login_failed", "subject": None, "at": NOW},
                {"staff": "ada", "action": "login_succeeded", "subject": None, "at": NOW},
                {"staff": "cli", "action": "staff_removed", "subject": "bob", "at": NOW},
            ])
    finally:
        await engine.dispose()
    _migrate(database_url, "upgrade", "head")
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = [(r.staff, r.action) for r in await conn.execute(
                select(t.staff_log.c.staff, t.staff_log.c.action).order_by(t.staff_log.c.id))]
    finally:
        await engine.dispose()
    assert rows == [("?", "login_failed"), ("ada", "login_failed"),
                    ("ada", "login_succeeded"), ("cli", "staff_removed")]
    if database_url.startswith("sqlite"):
        assert not holds(await database_bytes(database_url), TYPED_EMAIL)
