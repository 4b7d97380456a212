"""The account lifecycle: profile correction, password change, idle sessions."""

from datetime import UTC, datetime, timedelta

import jwt

from tests.e2e.conftest import StackFactory
from tests.support.db_time import db_time


async def test_profile_correction_reencrypts_the_personal_fields(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    await stack.signup("before@example.org", "profile password 1")
    token = await stack.login("before@example.org", "profile password 1")
    stack.secrets.update({"after@example.org", "Jane Roe", "Roe Hosting AG"})
    status, doc, _ = await stack.api.call("PATCH", "/v1/me", {
        "display_name": "Jane Roe", "company": "Roe Hosting AG", "datacenter": "is-rey",
        "currency": "USD"}, token)
    assert status == 200, doc
    assert (doc["display_name"], doc["company"]) == ("Jane Roe", "Roe Hosting AG")
    assert (doc["datacenter"], doc["currency"]) == ("is-rey", "USD")
    # Only the fields given change; null clears an optional one.
    doc = await stack.api.ok("PATCH", "/v1/me", {"company": None}, token)
    assert doc["company"] is None and doc["display_name"] == "Jane Roe"
    # Sending the current address along is no change and needs no password; a new one
    # does (the whole change: tests/e2e/test_email_change.py).
    same = await stack.api.ok("PATCH", "/v1/me", {"email": "before@example.org"}, token)
    assert same["email"] == "before@example.org"

    for body, code, fragment in (
        ({"email": "after@example.org"}, 422, "current_password"),
        ({"email": None}, 422, "cannot be removed"),
        ({"email": "nope"}, 422, "valid email"),
        ({"datacenter": "moon-1"}, 422, "datacenter"),
        ({"shoe": 1}, 422, "not a known field"),
    ):
        status, doc, _ = await stack.api.call("PATCH", "/v1/me", body, token)
        assert status == code and fragment in doc["detail"], (body, doc)
    me = await stack.api.ok("GET", "/v1/me", token=token)
    assert me["email"] == "before@example.org"  # the refused changes changed nothing

    if stack.db_url.startswith("sqlite"):
        await stack.gateway.stop()
        raw = stack.raw_database()
        for plain in (b"before@example.org", b"Jane Roe",
                      b"Roe Hosting AG"):
            assert plain not in raw


async def test_password_change_needs_the_current_one_and_ends_other_sessions(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    await stack.signup("pw@example.org", "first password 1")
    mine = await stack.login("pw@example.org", "first password 1")
    other = await stack.login("pw@example.org", "first password 1")
    stack.secrets.add("second password 2")
    wrong = await stack.api.call("POST", "/v1/me/password", {
        "current_password": "not it at all", "new_password": "second password 2"}, mine)
    assert wrong[0] == 422 and "current_password" in wrong[1]["detail"]
    short = await stack.api.call("POST", "/v1/me/password", {
        "current_password": "first password 1", "new_password": "short"}, mine)
    assert short[0] == 422 and "new_password" in short[1]["detail"]
    assert (await stack.api.call("GET", "/v1/me", token=other))[0] == 200

    done = await stack.api.call("POST", "/v1/me/password", {
        "current_password": "first password 1", "new_password": "second password 2"}, mine)
    assert done[0] == 204
    assert (await stack.api.call("GET", "/v1/me", token=mine))[0] == 200
    assert (await stack.api.call("GET", "/v1/me", token=other))[0] == 401
    assert (await stack.api.call("POST", "/v1/sessions", {
        "email": "pw@example.org", "password": "first password 1"}))[0] == 401
    await stack.login("pw@example.org", "second password 2")


async def test_idle_sessions_end_but_active_ones_live(make_stack: StackFactory) -> None:
    """The default 30-minute idle limit, with the session's last use moved into the past
    instead of waiting for it: used 20 minutes after its last use, a session lives and
    its idle time starts again; left alone for 31 minutes, it ends."""
    stack = await make_stack()
    await stack.signup("idle@example.org", "idle password 1")
    token = await stack.login("idle@example.org", "idle password 1")
    session_id = jwt.decode(token, options={"verify_signature": False})["jti"]

    async def last_used(ago: timedelta) -> None:
        await stack.rows("UPDATE sessions SET last_seen_at = :t WHERE id = :id",
                         t=db_time(stack.db_url, datetime.now(UTC) - ago), id=session_id)

    for _ in range(3):  # in use every 20 minutes: alive an hour, past the 30-minute limit
        await last_used(timedelta(minutes=20))
        before = datetime.now(UTC)
        assert (await stack.api.call("GET", "/v1/me", token=token))[0] == 200
        seen = await stack.scalar("SELECT last_seen_at FROM sessions WHERE id = :id",
                                  id=session_id)
        seen = datetime.fromisoformat(str(seen)).replace(tzinfo=UTC) \
            if isinstance(seen, str) else seen.astimezone(UTC)
        assert seen >= before - timedelta(seconds=1), seen  # the use was recorded
    await last_used(timedelta(minutes=31))
    status, doc, _ = await stack.api.call("GET", "/v1/me", token=token)
    assert status == 401 and "inactivity" in doc["detail"]
    assert (await stack.api.call("GET", "/v1/me", token=token))[0] == 401
