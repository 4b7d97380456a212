"""Password reset and account notices through a real SMTP server on loopback."""

import asyncio
import re
import time
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import pyotp

from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.test_email_change import post_form
from tests.support.inbox import Inbox, smtp_env
from tests.support.inprocess import InProcessGateway


def link_token(message: Message) -> str:
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(r"/reset\?token=(\S+)", body)
    assert match, body
    return match.group(1)


def body_of(message: Message) -> str:
    return message.get_payload(decode=True).decode()  # type: ignore[union-attr]


async def reset(stack: Stack, token: str, password: str, code: str | None = None
                ) -> tuple[int, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"token": token, "new_password": password}
    if code is not None:
        body["totp_code"] = code
    return await stack.api.call("POST", "/v1/password-resets/confirm", body)


async def test_password_reset_link_works_once(make_stack: StackFactory, inbox: Inbox) -> None:
    stack = await make_stack(**smtp_env(inbox))
    await stack.signup("reset@example.org", "old password 11")
    old_session = await stack.login("reset@example.org", "old password 11")

    known = await stack.api.call("POST", "/v1/password-resets", {"email": "reset@example.org"})
    unknown = await stack.api.call("POST", "/v1/password-resets",
                                   {"email": "nobody@example.org"})
    assert known[0] == unknown[0] == 202 and known[1] == unknown[1]
    [mail] = await inbox.wait("reset@example.org", 1)
    assert mail["From"] == "billing@packetra.test"
    assert inbox.to("nobody@example.org") == []
    token = link_token(mail)
    stack.secrets.update({token, "new password 22"})

    assert (await reset(stack, token, "short"))[0] == 422
    done = await reset(stack, token, "new password 22")
    assert done[0] == 204, done
    # Replaying the used link is refused before any argon2 run (a stream of old links
    # must not buy an attacker the server's hashing time).
    assert isinstance(stack.gateway, InProcessGateway) and stack.gateway.gw is not None
    passwords = stack.gateway.gw.passwords
    hashed: list[str] = []
    real_hash = passwords.hash

    async def counting_hash(password: str) -> str:
        hashed.append(password)
        return await real_hash(password)
    passwords.hash = counting_hash  # type: ignore[method-assign]
    again = await reset(stack, token, "third password 33")
    assert again[0] == 401 and "already used" in again[1]["detail"]
    assert hashed == []
    passwords.hash = real_hash  # type: ignore[method-assign]
    assert (await stack.api.call("GET", "/v1/me", token=old_session))[0] == 401
    await stack.login("reset@example.org", "new password 22")
    notices = await inbox.wait("reset@example.org", 2)
    assert notices[1]["Subject"] == "Your password was changed"
    for message in inbox.messages:
        text = body_of(message)
        for secret in ("old password 11", "new password 22", old_session):
            assert secret not in text


async def test_reset_link_expires(make_stack: StackFactory, inbox: Inbox) -> None:
    stack = await make_stack(**smtp_env(inbox, GATEWAY_ACCOUNTS__PASSWORD_RESET_MINUTES="0.02"))
    await stack.signup("late@example.org", "old password 11")
    await stack.api.call("POST", "/v1/password-resets", {"email": "late@example.org"})
    [mail] = await inbox.wait("late@example.org", 1)
    token = link_token(mail)
    stack.secrets.add(token)
    # The link is judged before the password: a too-short one leaves a live link unused
    # (422) and tells an expired one (401) apart, so the test asks until the link expires.
    deadline = time.monotonic() + 15
    while (answer := await reset(stack, token, "short"))[0] == 422:
        assert time.monotonic() < deadline, "timed out waiting for the 1.2 s link to expire"
        await asyncio.sleep(0.1)
    assert answer[0] == 401 and "expired" in answer[1]["detail"], answer
    expired = await reset(stack, token, "new password 22")
    assert expired[0] == 401 and "expired" in expired[1]["detail"]
    forged = await reset(stack, token[:-3] + "abc", "new password 22")
    assert forged[0] == 401


async def test_reset_needs_the_second_factor_and_notices_go_out(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    await stack.signup("guarded@example.org", "old password 11")
    session = await stack.login("guarded@example.org", "old password 11")
    secret = (await stack.api.ok("POST", "/v1/me/totp", {"current_password": "old password 11"},
                                 session))["secret"]
    stack.secrets.add(secret)
    now = datetime.now(UTC)
    recovery = (await stack.api.ok("POST", "/v1/me/totp/confirm",
                                   {"code": pyotp.TOTP(secret).at(now)}, session)
                )["recovery_codes"]
    stack.secrets.update(recovery)
    await stack.api.call("POST", "/v1/password-resets", {"email": "guarded@example.org"})
    [mail] = await inbox.wait("guarded@example.org", 1)
    token = link_token(mail)
    stack.secrets.update({token, "new password 22"})
    missing = await reset(stack, token, "new password 22")
    assert missing[0] == 401 and "two-factor" in missing[1]["detail"]
    ok = await reset(stack, token, "new password 22",
                     pyotp.TOTP(secret).at(now, counter_offset=1))
    assert ok[0] == 204, ok
    await inbox.wait("guarded@example.org", 2)  # the password-changed notice

    status, doc, _ = await stack.api.call("POST", "/v1/sessions", {
        "email": "guarded@example.org", "password": "new password 22",
        "totp_code": recovery[0]})
    assert status == 201
    session = doc["token"]
    stack.secrets.update({session, "moved@example.org"})
    # With 2FA on, an email change needs the password and a code too.
    no_code = await stack.api.call("PATCH", "/v1/me", {
        "email": "moved@example.org", "current_password": "new password 22"}, session)
    assert no_code[0] == 422 and "two-factor" in no_code[1]["detail"]
    assert (await stack.api.call("PATCH", "/v1/me", {
        "email": "moved@example.org", "current_password": "new password 22",
        "totp_code": recovery[2]}, session))[0] == 202
    [confirm] = await inbox.wait("moved@example.org", 1)
    change = re.search(r"/email-change\?token=(\S+)", body_of(confirm))
    assert change
    stack.secrets.add(change.group(1))
    assert (await stack.api.call("POST", "/v1/email-changes/confirm",
                                 {"token": change.group(1)}))[0] == 204
    moved = await inbox.wait("guarded@example.org", 3)
    assert moved[2]["Subject"] == "Your account email was changed"
    assert "/email-change/undo?token=" in body_of(moved[2])
    stack.secrets.add(body_of(moved[2]).split("undo?token=")[1].split()[0])
    assert (await stack.api.call("DELETE", "/v1/me/totp", {
        "current_password": "new password 22", "code": recovery[1]}, session))[0] == 204
    [_, off] = await inbox.wait("moved@example.org", 2)
    assert off["Subject"] == "Two-factor authentication was turned off"


async def test_optional_email_verification(make_stack: StackFactory, inbox: Inbox) -> None:
    stack = await make_stack(**smtp_env(inbox,
                                        GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION="true"))
    before = set(stack.api.cookie_names)
    await stack.signup("verify@example.org", "verify password 1")
    assert stack.api.cookie_names == before  # no session before the address is confirmed
    refused = await stack.api.call("POST", "/v1/sessions", {
        "email": "verify@example.org", "password": "verify password 1"})
    wrong = await stack.api.call("POST", "/v1/sessions", {
        "email": "verify@example.org", "password": "not the password 1"})
    # The right password of an unconfirmed account is answered like a wrong one, and a
    # new link is mailed.
    assert refused[0] == wrong[0] == 401 and refused[1] == wrong[1]
    assert "not confirmed yet" in refused[1]["detail"]
    [mail, _again] = await inbox.wait("verify@example.org", 2)
    link = re.search(r"http://[^/\s]+(/verify-email\?token=(\S+))", body_of(mail))
    assert link
    stack.secrets.add(link.group(2))
    # Opening the link (as a mail scanner does) confirms nothing: it shows a button.
    async with stack.api.http.get(stack.gateway.url + link.group(1)) as resp:
        page = await resp.text()
        assert resp.status == 200 and "Confirm the address" in page
    assert (await stack.api.call("POST", "/v1/sessions", {
        "email": "verify@example.org", "password": "verify password 1"}))[0] == 401
    status, text = await post_form(stack, link.group(1))
    assert status == 200 and "Email address confirmed" in text
    await stack.login("verify@example.org", "verify password 1")
    bad = await stack.api.call("POST", "/v1/email-verifications/confirm", {"token": "x.y.z"})
    assert bad[0] == 401
