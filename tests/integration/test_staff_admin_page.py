"""Review of issue 28, promises 3, 20 and 21: the staff console's own records.

- The staff log kept every console client's address in clear (`staff_log.ip`), failed
  logins at any typed name included, although the policy's map said the security log was
  the only table with an address, encrypted. Now the address is encrypted like the
  security log's, decrypted only for the admin page, and a failed login at a name that
  is no member's keeps none.
- The admin page showed the access audit as it is: the reasons (decrypted) and the
  entries of legal requests still under a hold, which nobody in the console may learn of
  before the customer may. Now it shows who read which account, what and when, without
  the reasons and without the held requests' entries.

Over HTTP against the staff console as `gateway serve` wires it, on SQLite and
PostgreSQL (the stored bytes: the SQLite file, every PostgreSQL row as text)."""

import html
import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import column, insert, inspect, select, table

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.types import UTCDateTime
from gateway.staff.context import COOKIE
from tests.integration.test_access_audit import (
    EMAIL,
    STAFF_PASSWORD,
    Served,
    served,
    template_dir,  # noqa: F401 (the fixture)
)
from tests.integration.test_address_space_migration import _migrate
from tests.support.db_bytes import database_bytes, holds
from tests.support.fake_gateway import T0

pytestmark = pytest.mark.integration

SERVICE_IP = "192.0.2.1"  # what Served.staff_token logs in from
LOOK_REASON = "customer asked by phone about the datacenter move"
HELD_SUMMARY = "court order, gagged until further notice"
NOW = T0


async def enrolled(s: Served, name: str, role: str) -> str:
    """A member with TOTP on; their secret (the enrolment's logins come from SERVICE_IP)."""
    staff = s.world.gw.services.staff
    await staff.add(name, role, STAFF_PASSWORD)
    first = await staff.log_in(name, STAFF_PASSWORD, None, SERVICE_IP)
    session = await staff.session(first.token)
    enrolment = await staff.begin_enrolment(session)
    await staff.confirm_enrolment(session, pyotp.TOTP(enrolment.secret).at(s.world.clock()),
                                  SERVICE_IP)
    return enrolment.secret


async def http_login(s: Served, name: str, password: str, code: str | None = None
                     ) -> tuple[int, str | None]:
    """/staff/login as a browser submits it: the answer's status and the session cookie."""
    async with s.http.get(s.staff + "/login") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert csrf is not None
    form = {"csrf": csrf[1], "name": name, "password": password, **(
        {"code": code} if code else {})}
    async with s.http.post(s.staff + "/login", data=form, allow_redirects=False,
                           headers={"Origin": s.staff.rsplit("/", 1)[0]}) as resp:
        cookie = resp.cookies.get(COOKIE)
        return resp.status, None if cookie is None else cookie.value


def table_of(page: str, table_id: str) -> list[list[str]]:
    part = page[page.index(f'id="{table_id}"'):]
    part = part[:part.index("</table>")]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in
             re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", part, re.S)[1:]]


async def test_staff_log_addresses_are_encrypted_and_only_kept_for_members(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:  # noqa: F811
    async with served(tmp_path, template_dir, database_url) as s:
        secret = await enrolled(s, "ada", "admin")
        # Over HTTP (from 127.0.0.1): a wrong password at a member's name, a customer's
        # email typed as the name, then the member's own login.
        assert (await http_login(s, "ada", "not the right password"))[0] == 401
        assert (await http_login(s, EMAIL, STAFF_PASSWORD))[0] == 401
        s.world.clock.advance(seconds=60)  # the next TOTP step
        status, token = await http_login(s, "ada", STAFF_PASSWORD,
                                         pyotp.TOTP(secret).at(s.world.clock()))
        assert status == 303 and token is not None

        raw = await database_bytes(database_url)
        assert holds(raw, "totp_enrolled")  # the search sees what is there
        for address in (SERVICE_IP, "127.0.0.1"):
            assert not holds(raw, address), address

        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                columns = await conn.run_sync(
                    lambda c: {col["name"] for col in inspect(c).get_columns("staff_log")})
                rows = (await conn.execute(
                    select(t.staff_log.c.staff, t.staff_log.c.action, t.staff_log.c.ip_ct)
                    .order_by(t.staff_log.c.id))).all()
        finally:
            await engine.dispose()
        assert "ip" not in columns  # no column for an address in clear
        unknown = rows[4]
        assert [(r.staff, r.action, r.ip_ct is not None) for r in rows] == [
            ("cli", "staff_added", False), ("ada", "login_succeeded", True),
            ("ada", "totp_enrolled", True), ("ada", "login_failed", True),
            # No address for a name that is no member's.
            (unknown.staff, "login_failed", False), ("ada", "login_succeeded", True)]
        assert unknown.staff.startswith("?")

        # The admin page decrypts them for the admin, and only there.
        status, _, page = await s.page(token, "/admin")
        assert status == 200
        shown = {(r[1], r[2], r[4]) for r in table_of(page, "staff-log")}
        assert ("ada", "totp_enrolled", SERVICE_IP) in shown
        assert ("ada", "login_failed", "127.0.0.1") in shown
        assert ("ada", "login_succeeded", "127.0.0.1") in shown
        assert (unknown.staff, "login_failed", "") in shown


async def test_the_admin_page_shows_no_reason_and_nothing_of_held_legal_requests(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:  # noqa: F811
    async with served(tmp_path, template_dir, database_url) as s:
        sam = await s.staff_token("sam", "support")
        status, _, _ = await s.page(sam, f"/accounts/{s.account_id}", reason=LOOK_REASON)
        assert status == 200
        legal = s.world.gw.services.legal
        received = s.world.clock() - timedelta(days=1)
        held = await legal.record("cli:counsel", [s.account_id], received, HELD_SUMMARY,
                                  notify_allowed=False)
        told = await legal.record("cli:counsel", [s.account_id], received,
                                  "subpoena, customer may be told", notify_allowed=True)
        ada = await s.staff_token("ada", "admin")

        async def audit_shown() -> tuple[str, list[list[str]]]:
            status, _, page = await s.page(ada, "/admin")
            assert status == 200
            return page, table_of(page, "audit")

        page, rows = await audit_shown()
        assert [r[1:4] for r in rows] == [
            ["cli:counsel", s.account_id, "legal_request"],
            ["staff:sam", s.account_id, "staff_viewed_account"]]
        assert f"legal_request:{told.id}" in rows[0][4]
        # Neither the reason (it reaches the customer in their export) nor anything of
        # the held request: its id, its entry, its summary.
        assert LOOK_REASON not in page and "<th>Reason</th>" not in page
        assert held.id not in page and HELD_SUMMARY not in page
        # The audit itself is whole: the customer's export shows the look with its reason.
        assert ("staff:sam", LOOK_REASON) in {(e["actor"], e["reason"])
                                               for e in await s.audit()}

        # Once the hold is lifted the customer may know, and so may the console.
        await legal.lift_hold("cli:counsel", held.id)
        page, rows = await audit_shown()
        assert [r[3] for r in rows] == ["legal_hold_lifted", "legal_request", "legal_request",
                                        "staff_viewed_account"]
        assert held.id in page and LOOK_REASON not in page and HELD_SUMMARY not in page


async def test_the_admin_page_fills_its_audit_table_past_held_entries(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:  # noqa: F811
    """The latest 100 shown entries, however many held ones are among the latest."""
    async with served(tmp_path, template_dir, database_url) as s:
        sam = await s.staff_token("sam", "support")
        status, _, _ = await s.page(sam, f"/accounts/{s.account_id}", reason=LOOK_REASON)
        assert status == 200
        legal = s.world.gw.services.legal
        received = s.world.clock() - timedelta(days=1)
        for _ in range(3):
            await legal.record("cli:counsel", [s.account_id], received, HELD_SUMMARY,
                               notify_allowed=False)
        shown = await s.world.gw.services.staff.recent_audit(2)
        assert [e.action for e in shown] == ["staff_viewed_account"]
        assert shown[0].reason is None



async def test_the_migration_clears_the_addresses_kept_in_clear(database_url: str) -> None:
    """0019s_staff_log_ip: the addresses rows kept in clear are cleared (a migration holds
    no field key to encrypt them; the rows go within 30 days anyway), the rest kept."""
    _migrate(database_url, "downgrade", "0018n_retention_review")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            # The table as it was before 0019s.
            before = table("staff_log", column("staff"), column("action"),
                           column("subject"), column("ip"), column("at", UTCDateTime))
            await conn.execute(insert(before), [
                {"staff": "ada", "action": "login_failed", "subject": None,
                 "ip": "198.51.100.23", "at": NOW},
                {"staff": "ada", "action": "invoice_viewed", "subject": "inv_1",
                 "ip": "198.51.100.23", "at": NOW},
                {"staff": "cli", "action": "staff_added", "subject": "ada", "ip": None,
                 "at": NOW}])
    finally:
        await engine.dispose()
    _migrate(database_url, "upgrade", "head")
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = [tuple(r) for r in await conn.execute(
                select(t.staff_log.c.staff, t.staff_log.c.action, t.staff_log.c.subject,
                       t.staff_log.c.ip_ct).order_by(t.staff_log.c.id))]
    finally:
        await engine.dispose()
    assert rows == [("ada", "login_failed", None, None), ("ada", "invoice_viewed", "inv_1", None),
                    ("cli", "staff_added", "ada", None)]
    if database_url.startswith("sqlite"):  # PostgreSQL: dead row versions until vacuumed
        assert not holds(await database_bytes(database_url), "198.51.100.23")
