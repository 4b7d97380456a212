"""The security log (and the staff console's, staff_log): the only places an IP address is
kept, encrypted, and not for long."""

import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pyotp

from gateway.adapters.db.tables import metadata
from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.test_privacy_jobs_failing import admin_page
from tests.e2e.test_staff_console import console, staff_stack
from tests.support.stack import run_cli


async def failed_staff_login(stack: Stack, name: str) -> None:
    base = console(stack)
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/login") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert token is not None
        async with http.post(base + "/login", data={
                "csrf": token[1], "name": name, "password": "not the staff password"},
                allow_redirects=False) as resp:
            assert resp.status == 401


async def test_security_events_are_logged_with_ip_and_nowhere_else(
    make_stack: StackFactory,
) -> None:
    # No loopback webhook endpoint: its URL would be the only other "127.0.0.1" around.
    stack = await staff_stack(make_stack, register_endpoint=False)
    account = await stack.signup("seclog@example.org", "security pw 11")
    await stack.api.call("POST", "/v1/sessions", {"email": "seclog@example.org",
                                                   "password": "wrong password 0"})
    token = await stack.login("seclog@example.org", "security pw 11")
    secret = (await stack.api.ok("POST", "/v1/me/totp", {"current_password": "security pw 11"},
                                 token))["secret"]
    stack.secrets.add(secret)
    now = datetime.now(UTC)
    await stack.api.ok("POST", "/v1/me/totp/confirm",
                       {"code": pyotp.TOTP(secret).at(now)}, token)
    assert (await stack.api.call("DELETE", "/v1/me/totp",
                                 {"current_password": "security pw 11",
                                  "code": pyotp.TOTP(secret).at(now, counter_offset=1)},
                                 token))[0] == 204
    assert (await stack.api.call("POST", "/v1/me/password", {
        "current_password": "security pw 11", "new_password": "security pw 22"}, token))[0] == 204
    stack.secrets.update({"security pw 22", "seclog2@example.org"})
    await stack.api.ok("PATCH", "/v1/me", {"email": "seclog2@example.org",
                                           "current_password": "security pw 22"}, token)

    rows = await stack.rows("SELECT event, ip, ip_ct FROM security_log WHERE account_id = :a "
                            "ORDER BY id", a=account["id"])
    events = ["login_succeeded",  # the signup's own session
              "login_failed", "login_succeeded", "totp_enabled", "totp_disabled",
              "password_changed", "email_change_requested"]
    assert [r.event for r in rows] == events
    # Issue 16, item 10: stored encrypted; only a security review (the export) reads it.
    assert {r.ip for r in rows} == {None} and all(r.ip_ct for r in rows)
    exported = await stack.api.ok("GET", "/v1/me/export?format=json", token=token)
    assert [(e["event"], e["ip"]) for e in exported["security_log"]] == [
        (e, "127.0.0.1") for e in events]
    unknown = await stack.api.call("POST", "/v1/sessions", {"email": "nobody@example.org",
                                                            "password": "whatever pw 1"})
    assert unknown[0] == 401
    assert await stack.scalar(
        "SELECT count(*) FROM security_log WHERE account_id IS NULL") == 1

    # The staff console (review of issue 28): a member's login (and enrolment), a wrong
    # password at the member's name and a customer's email typed as a name. The staff
    # log keeps the member's address encrypted, shown decrypted on the admin page only,
    # and none for the name that is no member's.
    admin = await admin_page(stack)  # adds "ada", logs in, enrols TOTP
    await failed_staff_login(stack, "ada")
    await failed_staff_login(stack, "seclog2@example.org")

    # No table holds the address in clear, the security log and the staff log included.
    for table in metadata.sorted_tables:
        for row in await stack.rows(f"SELECT * FROM {table.name}"):
            assert "127.0.0.1" not in repr(tuple(row)), table.name

    staff_rows = await stack.rows("SELECT staff, action, ip_ct FROM staff_log ORDER BY id")
    assert [(r.staff, r.action, r.ip_ct is not None) for r in staff_rows][-4:] == [
        ("ada", "login_succeeded", True), ("ada", "totp_enrolled", True),
        ("ada", "login_failed", True), (staff_rows[-1].staff, "login_failed", False)]
    assert staff_rows[-1].staff.startswith("?")
    assert "<td>127.0.0.1</td>" in admin[admin.index('id="staff-log"'):]


async def test_retention_removes_exactly_what_is_past_its_period(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    # The stack's own retention pass runs once at start, whenever its leadership lock is
    # won (late, on a loaded machine): stopped first, so that only the CLI runs below and
    # no pass lands between the inserts.
    await stack.gateway.stop()
    now = datetime.now(UTC)
    for days in (31, 30.01, 29.9, 1):
        await stack.rows("INSERT INTO security_log (account_id, event, ip, at) "
                         "VALUES (NULL, 'login_failed', '192.0.2.1', :at)",
                         at=(now - timedelta(days=days)).replace(tzinfo=None)
                         if stack.db_url.startswith("sqlite") else now - timedelta(days=days))
    dry = run_cli(stack.gateway.env, "retention", "run", "--dry-run")
    assert dry.returncode == 0 and "security_log: would remove 2" in dry.stdout
    assert await stack.count("security_log") == 4
    done = run_cli(stack.gateway.env, "retention", "run")
    assert done.returncode == 0 and "security_log: removed 2" in done.stdout
    assert await stack.count("security_log") == 2
