"""Migration 0012b_staff_console: the staff tables come and go, on SQLite and PostgreSQL,
and what is stored in them reads back through the repository."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import FieldCipher
from gateway.services.errors import Conflict
from gateway.services.ports import StaffLogEntry, StaffMember
from tests.integration.test_address_space_migration import _migrate

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STAFF_TABLES = {"staff_members", "staff_sessions", "staff_log"}


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_staff_tables_down_and_up_again(database_url: str) -> None:
    assert STAFF_TABLES <= await _tables(database_url)
    _migrate(database_url, "downgrade", "0011_address_spaces")
    assert not STAFF_TABLES & await _tables(database_url)
    _migrate(database_url, "upgrade", "head")
    assert STAFF_TABLES <= await _tables(database_url)


async def test_staff_repository_round_trip(database_url: str) -> None:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", b"k" * 32)])
    member = StaffMember("stf_a", "sam", "support", NOW, None)
    try:
        async with SqlUnitOfWork(engine, cipher) as uow:
            await uow.staff.add(member, "hash")
            with pytest.raises(Conflict):
                await uow.staff.add(StaffMember("stf_b", "sam", "admin", NOW, None), "h")
            await uow.staff.set_totp_secret("stf_a", "SECRET")
            assert await uow.staff.advance_totp_step("stf_a", 10)
            assert not await uow.staff.advance_totp_step("stf_a", 10)  # a replay
            await uow.staff.enable_totp("stf_a", NOW)
            await uow.staff.add_session("sts_1", "th", "stf_a", True, NOW,
                                        NOW + timedelta(hours=1))
            await uow.staff.log(StaffLogEntry("sam", "search", "inv_1", "192.0.2.1", NOW))
            await uow.commit()
        async with SqlUnitOfWork(engine, cipher) as uow:
            assert await uow.staff.totp("stf_a") == ("SECRET", 10)
            session = await uow.staff.session("th")
            assert session is not None and session.member.name == "sam" and session.enrolled
            assert session.member.totp_enabled_at == NOW
            assert [e.action for e in await uow.staff.recent_log(5)] == ["search"]
            assert await uow.staff.remove("sam")
            assert await uow.staff.session("th") is None
            assert not await uow.staff.remove("sam")
            await uow.commit()
    finally:
        await engine.dispose()
