"""Email change (issue 11, item 1 and part of 4): the password (and a code) proves it, the
new address applies only once its link is opened, the old address can undo it, and the
answer never tells whether another account has the address."""

import base64
import re
from email.message import Message

from tests.e2e.conftest import Stack, StackFactory
from tests.support.inbox import Inbox, smtp_env

PW = "moving password 1"


def body_of(message: Message) -> str:
    return message.get_payload(decode=True).decode()  # type: ignore[union-attr]


def link(message: Message, page: str) -> tuple[str, str]:
    """(path below the application root, token) of the link in a mail."""
    found = re.search(rf"https?://[^/\s]+(/{page}\?token=(\S+))", body_of(message))
    assert found, body_of(message)
    return found.group(1), found.group(2)


def jwt_payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


async def post_form(stack: Stack, path: str) -> tuple[int, str]:
    """Open a link's page (changes nothing), then press its button."""
    http = stack.api.http
    async with http.get(stack.gateway.url + path) as resp:
        assert resp.status == 200
        page = await resp.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    token = re.search(r'name="token" value="([^"]+)"', page)
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert csrf and token and action, page
    target = stack.gateway.url + path.split("?")[0].rsplit("/", 1)[0] + "/" + action.group(1)
    async with http.post(target, data={"csrf": csrf.group(1), "token": token.group(1)}) as resp:
        return resp.status, await resp.text()


async def test_email_change_needs_the_password_a_confirmed_link_and_can_be_undone(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    old, new, taken = "first@example.org", "second@example.org", "taken@example.org"
    stack.secrets.update({new, "Moved Person"})
    await stack.signup(old, PW)
    await stack.signup(taken, "other owner pw 1")
    session = await stack.login(old, PW)

    # A stolen session alone cannot move the account.
    for body, fragment in (({"email": new}, "current_password"),
                           ({"email": new, "current_password": "not the password"}, "wrong")):
        status, doc, _ = await stack.api.call("PATCH", "/v1/me", body, session)
        assert status == 422 and fragment in doc["detail"], doc

    # With the password: 202, the rest applied, the email pending until its link is opened.
    status, pending, _ = await stack.api.call("PATCH", "/v1/me", {
        "email": new, "display_name": "Moved Person", "current_password": PW}, session)
    assert status == 202, pending
    assert pending["email"] == old and pending["display_name"] == "Moved Person"
    # Another account's address gets the very same answer; its owner is told instead.
    status_taken, doc_taken, _ = await stack.api.call("PATCH", "/v1/me", {
        "email": taken, "display_name": "Moved Person", "current_password": PW}, session)
    assert (status_taken, doc_taken) == (status, pending)
    [warning] = await inbox.wait(taken, 1)
    assert warning["Subject"] == "Someone tried to move an account to this address"
    assert "token=" not in body_of(warning)

    [mail] = await inbox.wait(new, 1)
    assert mail["Subject"] == "Confirm your new email address"
    path, token = link(mail, "email-change")
    stack.secrets.add(token)
    assert new not in jwt_payload(token) and old not in jwt_payload(token)
    assert (await stack.api.ok("GET", "/v1/me", token=session))["email"] == old
    assert (await stack.api.call("POST", "/v1/sessions", {"email": new, "password": PW}))[0] \
        == 401
    assert inbox.to(old) == []  # nothing changed yet, nothing to undo

    # The link's page only shows a button (mail scanners fetch links); the button confirms.
    status, page = await post_form(stack, path)
    assert status == 200 and "Email address changed" in page, page
    assert (await stack.api.ok("GET", "/v1/me", token=session))["email"] == new
    again = await stack.api.call("POST", "/v1/email-changes/confirm", {"token": token})
    assert again[0] == 401 and "out of date" in again[1]["detail"]
    assert (await stack.api.call("POST", "/v1/sessions", {"email": old, "password": PW}))[0] \
        == 401
    await stack.login(new, PW)

    # The old address is told, with an undo link that carries it sealed.
    [notice] = await inbox.wait(old, 1)
    assert notice["Subject"] == "Your account email was changed"
    undo_path, undo = link(notice, "email-change/undo")
    stack.secrets.add(undo)
    assert old not in jwt_payload(undo) and new not in jwt_payload(undo)
    async with stack.api.http.get(stack.gateway.url + undo_path) as resp:
        assert resp.status == 200  # opening it changes nothing
    assert (await stack.api.ok("GET", "/v1/me", token=session))["email"] == new

    status, page = await post_form(stack, undo_path)
    assert status == 200 and "Email change undone" in page, page
    assert (await stack.api.call("GET", "/v1/me", token=session))[0] == 401  # sessions ended
    [_, back] = await inbox.wait(new, 2)  # the address that lost the account is told
    assert back["Subject"] == "Your account email was changed back"
    # Whoever moved the account knew the password: it no longer works; a reset link does.
    for email in (old, new):
        assert (await stack.api.call("POST", "/v1/sessions",
                                     {"email": email, "password": PW}))[0] == 401
    [_, reset] = await inbox.wait(old, 2)
    reset_token = re.search(r"/reset\?token=(\S+)", body_of(reset))
    assert reset_token
    stack.secrets.update({reset_token.group(1), "owner again pw 1"})
    assert (await stack.api.call("POST", "/v1/password-resets/confirm", {
        "token": reset_token.group(1), "new_password": "owner again pw 1"}))[0] == 204
    await stack.login(old, "owner again pw 1")
    used = await stack.api.call("POST", "/v1/email-changes/undo", {"token": undo})
    assert used[0] == 401
    events = [r.event for r in await stack.rows("SELECT event FROM security_log ORDER BY id")]
    assert events.count("email_change_requested") == 2
    assert "email_changed" in events and "email_change_undone" in events
    for message in inbox.messages:
        assert PW not in body_of(message)


async def test_a_reset_link_dies_when_the_email_changes(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    stack.secrets.add("elsewhere@example.org")
    await stack.signup("resetting@example.org", PW)
    session = await stack.login("resetting@example.org", PW)
    await stack.api.call("POST", "/v1/password-resets", {"email": "resetting@example.org"})
    [reset] = await inbox.wait("resetting@example.org", 1)
    found = re.search(r"/reset\?token=(\S+)", body_of(reset))
    assert found
    stack.secrets.update({found.group(1), "hijacked pw 123"})
    assert (await stack.api.call("PATCH", "/v1/me", {
        "email": "elsewhere@example.org", "current_password": PW}, session))[0] == 202
    [mail] = await inbox.wait("elsewhere@example.org", 1)
    _, token = link(mail, "email-change")
    stack.secrets.add(token)
    assert (await stack.api.call("POST", "/v1/email-changes/confirm", {"token": token}))[0] \
        == 204
    dead = await stack.api.call("POST", "/v1/password-resets/confirm", {
        "token": found.group(1), "new_password": "hijacked pw 123"})
    assert dead[0] == 401 and "out of date" in dead[1]["detail"]
    await stack.login("elsewhere@example.org", PW)


async def test_signup_with_verification_answers_a_taken_address_like_a_free_one(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox,
                                        GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION="true"))
    stack.secrets.update({"owner@example.org", "fresh@example.org", "someone else pw 1"})
    await stack.signup("owner@example.org", PW)
    body = {"password": "someone else pw 1", "display_name": None}
    taken = await stack.api.call("POST", "/v1/accounts", {"email": "owner@example.org", **body})
    free = await stack.api.call("POST", "/v1/accounts", {"email": "fresh@example.org", **body})
    assert taken[0] == free[0] == 201
    assert set(taken[1]) == set(free[1]) and taken[1]["email"] == "owner@example.org"
    assert {k.lower() for k in taken[2]} == {k.lower() for k in free[2]}
    assert taken[1]["id"] != free[1]["id"]
    assert await stack.count("accounts") == 2  # nothing stored for the taken address
    [verify, attempt] = await inbox.wait("owner@example.org", 2)
    assert verify["Subject"] == "Confirm your email address"
    assert attempt["Subject"] == "Someone tried to sign up with your address"
    assert "token=" not in body_of(attempt) and "/login" in body_of(attempt)
    [fresh] = await inbox.wait("fresh@example.org", 1)
    assert fresh["Subject"] == "Confirm your email address"
    stack.secrets.add(body_of(verify).split("token=")[1].split()[0])
    stack.secrets.add(body_of(fresh).split("token=")[1].split()[0])
    # Nor does logging in with the password just chosen tell them apart: the free address
    # (now an unconfirmed account) and the taken one answer alike.
    logins = [await stack.api.call("POST", "/v1/sessions", {
        "email": email, "password": "someone else pw 1"})
        for email in ("owner@example.org", "fresh@example.org")]
    assert logins[0][0] == logins[1][0] == 401 and logins[0][1] == logins[1][1]
    [_, again] = await inbox.wait("fresh@example.org", 2)  # a new link for the real owner
    assert again["Subject"] == "Confirm your email address"
    stack.secrets.add(body_of(again).split("token=")[1].split()[0])
    # Without verification a signup logs in at once, so a taken address stays a 409
    # (tests/e2e/test_bad_input.py); OPERATIONS.md says so.


async def test_with_two_factor_on_the_undo_link_alone_does_not_take_the_account(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    """Whoever holds only the old mailbox (its owner may have left it because it was lost)
    cannot take the account back through the undo link: with 2FA on it needs a code."""
    import time

    import pyotp

    stack = await make_stack(**smtp_env(inbox))
    old, new = "left-behind@example.org", "moved-on@example.org"
    stack.secrets.update({old, new})
    await stack.signup(old, PW)
    session = await stack.login(old, PW)
    begun = await stack.api.ok("POST", "/v1/me/totp", {"current_password": PW}, session)
    totp = pyotp.TOTP(begun["secret"])
    stack.secrets.add(begun["secret"])
    recovery = (await stack.api.ok("POST", "/v1/me/totp/confirm", {"code": totp.now()},
                                   session))["recovery_codes"]
    stack.secrets.update(recovery)
    status, _, _ = await stack.api.call("PATCH", "/v1/me", {
        "email": new, "current_password": PW, "totp_code": recovery[0]}, session)
    assert status == 202
    [mail] = await inbox.wait(new, 1)
    _, token = link(mail, "email-change")
    stack.secrets.add(token)
    assert (await stack.api.call("POST", "/v1/email-changes/confirm", {"token": token}))[0] \
        == 204
    [notice] = await inbox.wait(old, 1)
    _, undo = link(notice, "email-change/undo")
    stack.secrets.add(undo)

    for body in ({"token": undo}, {"token": undo, "totp_code": "000000"}):
        status, doc, _ = await stack.api.call("POST", "/v1/email-changes/undo", body)
        assert status == 401 and "two-factor" in doc["detail"], doc
    assert (await stack.api.ok("GET", "/v1/me", token=session))["email"] == new
    done = await stack.api.call("POST", "/v1/email-changes/undo", {
        "token": undo, "totp_code": totp.at(time.time(), counter_offset=1)})
    assert done[0] == 204, done
