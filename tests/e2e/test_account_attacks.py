"""Account attacks from an independent audit (issue 27), each through the HTTP API or the
portal, as a stranger would try them."""

import asyncio
import json
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from aiohttp import web

from gateway.bootstrap import Overrides
from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.test_email_change import link
from tests.e2e.test_recovery_mail import link_token, reset
from tests.support.clocks import MovableClock
from tests.support.databases import fresh_database
from tests.support.fake_gateway import Clock
from tests.support.inbox import Inbox, smtp_env
from tests.support.inprocess import InProcessGateway
from tests.support.keys import random_xpub
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import Api, gateway_env, run_cli

Client = Callable[[str], Api]


@pytest.fixture
async def client_from() -> AsyncIterator[Client]:
    """An API client whose connections come from another loopback address (all of
    127.0.0.0/8 is this host): another client network, as the gateway sees it."""
    sessions: list[aiohttp.ClientSession] = []

    def make(stack_base: str, address: str) -> Api:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
        sessions.append(http)
        return Api(stack_base, http)

    try:
        yield make  # type: ignore[misc]
    finally:
        for http in sessions:
            await http.close()


def origin(stack: Stack, client_from: Callable[..., Api], address: str) -> Api:
    return client_from(stack.gateway.base, address)  # type: ignore[call-arg]


async def login_status(api: Api, email: str, password: str) -> tuple[int, str | None]:
    status, _, headers = await api.call("POST", "/v1/sessions",
                                        {"email": email, "password": password})
    return status, headers.get("Retry-After")


# -- item 3: failed logins from one network do not lock the owner out --------------------
async def test_a_stranger_s_failures_do_not_lock_the_owner_out(
    make_stack: StackFactory, client_from: Client, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(
        inbox, GATEWAY_SECURITY__LOGIN_FREE_FAILURES="2",
        GATEWAY_SECURITY__LOGIN_FAILURES_PER_EMAIL_PER_HOUR="6"))
    email, right = "owner3@example.org", "right password 1"
    await stack.signup(email, right)
    stranger = origin(stack, client_from, "127.0.0.2")
    seen = [(await login_status(stranger, email, "wrong password 9"))[0] for _ in range(4)]
    assert seen == [401, 401, 401, 429]
    # The owner, from another network, is not held up by the stranger's failures.
    assert (await login_status(stack.api, email, right))[0] == 201

    # Strangers spread over many networks meet the per-email cap (6 here) ...
    for address in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        other = origin(stack, client_from, address)
        for _ in range(2):
            assert (await login_status(other, email, "wrong password 9"))[0] == 401
    status, retry = await login_status(stack.api, email, right)
    assert status == 429 and retry is not None and int(retry) > 3000
    # ... which the owner's completed password reset clears at once.
    assert (await stack.api.call("POST", "/v1/password-resets", {"email": email}))[0] == 202
    [mail] = await inbox.wait(email, 1)
    token = link_token(mail)
    stack.secrets.update({token, "new password 22"})
    assert (await reset(stack, token, "new password 22"))[0] == 204
    await stack.login(email, "new password 22")


# -- item 6: by default, signup does not tell whether an address has an account ----------
async def test_by_default_signup_answers_a_taken_address_like_a_free_one(
    tmp_path: Path, litecoin: LitecoinRegtest, inbox: Inbox,
) -> None:
    """The configuration as documented: [smtp] given, `require_email_verification` not
    set (the test stacks opt out explicitly, so this one drops that line)."""
    with fresh_database("sqlite", tmp_path) as db_url:
        env = gateway_env(db_url, litecoin, free_port(), **smtp_env(inbox))
        del env["GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION"]
        gateway = InProcessGateway(env, tmp_path / "gateway.log")
        await gateway.start()
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(gateway.base, http)
                body = {"password": "a long password 1"}
                first = await api.call("POST", "/v1/accounts",
                                       {"email": "owner6@example.org", **body})
                taken = await api.call("POST", "/v1/accounts",
                                       {"email": "owner6@example.org", **body})
                free = await api.call("POST", "/v1/accounts",
                                      {"email": "free6@example.org", **body})
                assert first[0] == taken[0] == free[0] == 201, (taken, free)
                assert set(taken[1]) == set(free[1])
                assert {k.lower() for k in taken[2]} == {k.lower() for k in free[2]}
                assert api.cookie_names == set()  # no session before the link is opened
            [_, attempt] = await inbox.wait("owner6@example.org", 2)
            assert attempt["Subject"] == "Someone tried to sign up with your address"
        finally:
            await gateway.stop()
        log = gateway.log()
        assert "owner6@example.org" not in log and "a long password 1" not in log


# -- item 5: a flood of reset requests does not flood the mailbox ------------------------
async def test_reset_and_confirmation_mail_is_limited_per_recipient(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox, GATEWAY_MAIL__PER_RECIPIENT_PER_HOUR="3",
                                        GATEWAY_SECURITY__LOGIN_PER_IP_PER_MINUTE="100"))
    email = "flooded@example.org"
    await stack.signup(email, "flooded password 1")
    answers = set()
    for address in (email, "nobody5@example.org"):
        for _ in range(20):
            status, doc, _ = await stack.api.call("POST", "/v1/password-resets",
                                                  {"email": address})
            answers.add((status, doc["detail"]))
    assert answers == {(202, "if an account has this address, a reset link is on its way")}
    # The requests are handled after the answer: wait until all 20 for the known address
    # were counted (the one counter row that reached 20), or more than 3 mails came.
    deadline = time.monotonic() + 20
    while (await stack.scalar("SELECT max(failures) FROM login_throttle") != 20
           and len(inbox.to(email)) <= 3):
        assert time.monotonic() < deadline, "the 20 reset requests were not all handled"
        await asyncio.sleep(0.05)
    await inbox.wait(email, 3)
    while await stack.count("mail_queue"):  # what was queued is sent by now or soon
        assert time.monotonic() < deadline, "queued mail was not sent"
        await asyncio.sleep(0.05)
    mails = inbox.to(email)
    assert len(mails) == 3 and all("/reset?token=" in str(m) for m in mails)
    for message in mails:
        stack.secrets.add(link_token(message))


# -- item 4: a second email change cannot kill the undo link of the first ----------------
async def test_a_second_email_change_waits_until_the_first_can_no_longer_be_undone(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    clock = Clock(datetime.now(UTC))
    stack = await make_stack(overrides=Overrides(clock=clock), **smtp_env(inbox))
    owner, thief, later = "owner4@example.org", "thief4@example.org", "later4@example.org"
    pw = "owner four pw 1"
    stack.secrets.update({thief, later})
    await stack.signup(owner, pw)
    # Whoever holds the session and the password moves the account to their address ...
    session = await stack.login(owner, pw)
    assert (await stack.api.call("PATCH", "/v1/me", {"email": thief, "current_password": pw},
                                 session))[0] == 202
    [mail] = await inbox.wait(thief, 1)
    _, token = link(mail, "email-change")
    stack.secrets.add(token)
    assert (await stack.api.call("POST", "/v1/email-changes/confirm",
                                 {"token": token}))[0] == 204
    [notice] = await inbox.wait(owner, 1)
    _, undo = link(notice, "email-change/undo")
    stack.secrets.add(undo)
    # ... and would move it on at once, to kill the undo link the owner got: refused.
    status, doc, _ = await stack.api.call("PATCH", "/v1/me", {
        "email": later, "current_password": pw}, session)
    assert status == 409 and "can still undo" in doc["detail"], doc
    assert inbox.to(later) == []
    # The owner's link still works.
    assert (await stack.api.call("POST", "/v1/email-changes/undo", {"token": undo}))[0] == 204

    # Without an undo, a further change is possible once the undo period is over.
    stack2 = await make_stack(overrides=Overrides(clock=clock), **smtp_env(inbox))
    await stack2.signup("plain4@example.org", pw)
    mine = await stack2.login("plain4@example.org", pw)
    assert (await stack2.api.call("PATCH", "/v1/me", {
        "email": "plain4b@example.org", "current_password": pw}, mine))[0] == 202
    [first] = await inbox.wait("plain4b@example.org", 1)
    _, token = link(first, "email-change")
    stack2.secrets.add(token)
    assert (await stack2.api.call("POST", "/v1/email-changes/confirm",
                                  {"token": token}))[0] == 204
    assert (await stack2.api.call("PATCH", "/v1/me", {
        "email": "plain4c@example.org", "current_password": pw}, mine))[0] == 409
    clock.advance(days=7, minutes=1)
    mine = await stack2.login("plain4b@example.org", pw)
    assert (await stack2.api.call("PATCH", "/v1/me", {
        "email": "plain4c@example.org", "current_password": pw}, mine))[0] == 202


# -- item 8: with two-factor on, login does not tell a right password from a wrong one ---
async def test_login_answers_a_missing_or_wrong_code_like_a_wrong_password(
    make_stack: StackFactory, client_from: Client,
) -> None:
    clock = MovableClock()
    stack = await make_stack(overrides=Overrides(clock=clock),
                             GATEWAY_SECURITY__LOGIN_FREE_FAILURES="2")
    email, right = "twofa8@example.org", "right password 8"
    await stack.signup(email, right)
    session = await stack.login(email, right)
    secret = (await stack.api.ok("POST", "/v1/me/totp", {"current_password": right},
                                 session))["secret"]
    stack.secrets.add(secret)
    totp = pyotp.TOTP(secret)
    await stack.api.ok("POST", "/v1/me/totp/confirm", {"code": totp.now()}, session)
    valid = {totp.at(time.time() + 30 * offset) for offset in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    networks = iter(f"127.0.8.{n}" for n in range(1, 50))

    async def answer(body: dict[str, str]) -> tuple[int, dict[str, object], str | None]:
        # Each try from a network of its own: the per-network counters stay out of it.
        api = origin(stack, client_from, next(networks))
        status, doc, headers = await api.call("POST", "/v1/sessions", {"email": email, **body})
        return status, doc, headers.get("Retry-After")

    wrong_password = await answer({"password": "wrong password 8"})
    assert wrong_password[0] == 401 and wrong_password[2] is None
    for body in ({"password": right}, {"password": right, "totp_code": wrong},
                 {"password": "wrong password 8", "totp_code": wrong}):
        assert await answer(body) == wrong_password, body
    # Four more wrong codes lock the account's second-factor counter (2 free, then 1 s,
    # 2 s, 4 s): a right password with a right code is still answered the same. The
    # gateway's clock is held meanwhile: the lock outlasts however long a loaded machine
    # takes over these requests (a right code for the held time, not the wall clock's).
    clock.hold()
    for _ in range(4):
        assert await answer({"password": right, "totp_code": wrong}) == wrong_password
    assert await answer({"password": right,
                         "totp_code": totp.at(clock().timestamp() + 30)}) == wrong_password


# -- item 9: a malformed header is not echoed back ---------------------------------------
async def raw_request(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # the server closes after it
    finally:
        writer.close()


async def test_a_malformed_header_gets_a_fixed_problem_not_an_echo(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    token = "gk_" + "s3cretTokenValue" * 3
    cookie = "cookieValue" * 4
    stack.secrets.update({token, cookie})
    for bad_line in (f"Authorization: Bearer {token}\x01".encode(),
                     f"Cookie: __Host-session={cookie}\x7f".encode(),
                     f"X-Broken {token}".encode()):
        answer = await raw_request("127.0.0.1", stack.gateway.port, (
            b"GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bad_line + b"\r\n\r\n"))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:300]
        assert b"application/problem+json" in head.lower(), head
        assert token.encode() not in answer and cookie.encode() not in answer, answer
        assert b"s3cret" not in answer and b"cookieValue" not in answer
        doc = json.loads(body)
        assert doc["status"] == 400 and doc["detail"] == (
            "the request is malformed (a request line or header HTTP does not allow)")


# -- item 15: the most common passwords are refused ---------------------------------------
async def test_the_most_common_passwords_are_refused_with_a_clear_message(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    for common in ("qwertyuiop", "Password123", "password 123", "1q2w3e4r5t6y"):
        status, doc, _ = await stack.api.call("POST", "/v1/accounts", {
            "email": "common15@example.org", "password": common})
        assert status == 422 and "most common passwords" in doc["detail"], (common, doc)
        assert doc["detail"].startswith("password: ")
    assert await stack.count("accounts") == 0
    await stack.signup("common15@example.org", "an uncommon passphrase 15")
    token = await stack.login("common15@example.org", "an uncommon passphrase 15")
    status, doc, _ = await stack.api.call("POST", "/v1/me/password", {
        "current_password": "an uncommon passphrase 15", "new_password": "1234567890"}, token)
    assert status == 422 and "new_password" in doc["detail"] and "common" in doc["detail"]
    assert (await stack.api.call("POST", "/v1/password-resets",
                                 {"email": "common15@example.org"}))[0] == 202
    [mail] = await inbox.wait("common15@example.org", 1)
    reset_token = link_token(mail)
    stack.secrets.add(reset_token)
    status, doc, _ = await reset(stack, reset_token, "qwerty123456")
    assert status == 422 and "common" in doc["detail"]
    # The portal's signup form says so too.
    async with stack.api.http.get(f"{stack.gateway.base}/signup") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert csrf
    async with stack.api.http.post(f"{stack.gateway.base}/signup", data={
            "csrf": csrf.group(1), "email": "form15@example.org", "password": "manchester"},
            allow_redirects=False) as resp:
        assert resp.status == 422 and "most common passwords" in await resp.text()


# -- item 13: a node URL's path (an API key at a hosted node) never reaches the log ------
async def test_an_api_key_in_a_node_url_stays_out_of_the_log(make_stack: StackFactory) -> None:
    """A hosted Ethereum node (Infura, Alchemy) takes its API key in the URL's path and
    refuses a wrong one with 401: a real HTTP server on loopback that does just that."""
    refusals = 0

    async def refuse(request: web.Request) -> web.Response:
        nonlocal refusals
        refusals += 1
        return web.json_response({"error": "invalid project id"}, status=401)

    app = web.Application()
    app.router.add_post("/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = "0123456789abcdef" + "fedcba9876543210"
    try:
        stack = await make_stack(**{
            "GATEWAY_COINS__ETH__KIND": "evm",
            "GATEWAY_COINS__ETH__RPC_URL": f"http://127.0.0.1:{port}/v3/{key}",
            "GATEWAY_COINS__ETH__CHAIN_ID": "1",
            "GATEWAY_COINS__ETH__XPUB": random_xpub(),
            "GATEWAY_COINS__ETH__POLL_INTERVAL_SECONDS": "0.1",
            "GATEWAY_RATES__FIXED": json.dumps({"LTC-EUR": "80.00", "ETH-EUR": "2000"})})
        stack.secrets.add(key)
        deadline = time.monotonic() + 20
        # Wait for the follower to have met the refusal and said so in the log.
        while not (refusals and "ETH" in stack.gateway.log()
                   and ("WARNING" in stack.gateway.log() or "ERROR" in stack.gateway.log())):
            assert time.monotonic() < deadline, stack.gateway.log()[-2000:]
            await asyncio.sleep(0.1)
        log = stack.gateway.log()
        assert key not in log and "/v3/" not in log, log[-3000:]
    finally:
        await runner.cleanup()


# -- item 14: the SQLite files are readable by their owner only ---------------------------
async def test_a_new_sqlite_database_and_its_wal_are_0600_and_doctor_says_so(
    tmp_path: Path, litecoin: LitecoinRegtest,
) -> None:
    """Outside the systemd unit (umask 0022 here, as in a shell), another local user
    must not be able to read the database (hashes, ciphertexts, blind indexes)."""
    db = tmp_path / "fresh" / "gateway.db"
    db.parent.mkdir()
    env = gateway_env(f"sqlite+aiosqlite:///{db}", litecoin, free_port())
    old_umask = os.umask(0o022)
    try:
        upgraded = await asyncio.to_thread(run_cli, env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        gateway = InProcessGateway(env, tmp_path / "gateway.log")
        await gateway.start()
        try:
            async with aiohttp.ClientSession() as http:
                await Api(gateway.base, http).ok("POST", "/v1/accounts", {
                    "email": "files14@example.org", "password": "a long password 14"})
            modes = {name: stat.S_IMODE(os.stat(f"{db}{name}").st_mode)
                     for name in ("", "-wal", "-shm") if os.path.exists(f"{db}{name}")}
            assert set(modes) >= {"", "-wal"} and set(modes.values()) == {0o600}, modes
            doctor = await asyncio.to_thread(run_cli, env, "doctor")
            assert f"ok       database files: {db} (and its -wal, -shm) readable by its " \
                   "owner only (0600)" in doctor.stdout, doctor.stdout
            os.chmod(db, 0o644)
            doctor = await asyncio.to_thread(run_cli, env, "doctor")
            assert f"PROBLEM  database files: {db} is 0644: other users may read it; " \
                   f"chmod 600 {db}*" in doctor.stdout, doctor.stdout
        finally:
            await gateway.stop()
    finally:
        os.umask(old_umask)


# -- item 19: a wrong recovery code does not hold the database's write lock --------------
async def test_recovery_codes_are_checked_outside_the_write_transaction(
    make_stack: StackFactory,
) -> None:
    """A wrong recovery code costs up to ten argon2 verifications. While a login with one
    is under way, another writer (a signup, say) gets SQLite's write lock within 50 ms."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gateway.adapters.totp import PyotpCodes

    stack = await make_stack(db="sqlite")
    email, pw = "codes19@example.org", "codes password 19"
    await stack.signup(email, pw)
    session = await stack.login(email, pw)
    secret = (await stack.api.ok("POST", "/v1/me/totp", {"current_password": pw},
                                 session))["secret"]
    stack.secrets.add(secret)
    codes = (await stack.api.ok("POST", "/v1/me/totp/confirm",
                                {"code": pyotp.TOTP(secret).now()}, session))["recovery_codes"]
    stack.secrets.update(codes)
    wrong = next(c for c in PyotpCodes().recovery_codes(3) if c not in codes)

    engine = create_async_engine(stack.db_url, poolclass=NullPool,
                                 connect_args={"timeout": 0.05})
    refused: list[str] = []
    writes = 0
    try:
        for _ in range(3):
            login = asyncio.create_task(stack.api.call("POST", "/v1/sessions", {
                "email": email, "password": pw, "totp_code": wrong}))
            while not login.done():
                try:
                    async with engine.begin() as conn:
                        await conn.execute(text("PRAGMA busy_timeout = 50"))
                        await conn.execute(text(
                            "UPDATE accounts SET currency = currency WHERE id = 'none'"))
                    writes += 1
                except OperationalError as exc:
                    refused.append(str(exc.orig))
                await asyncio.sleep(0.005)
            assert (await login)[0] == 401
    finally:
        await engine.dispose()
    assert writes > 0 and refused == [], refused[:3]


# -- item 20: sessions end with 2FA on and an email change; no versions in answers -------
async def test_turning_two_factor_on_or_changing_the_email_ends_the_other_sessions(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    stack = await make_stack(**smtp_env(inbox))
    email, pw = "sessions20@example.org", "sessions password 20"
    await stack.signup(email, pw)
    mine, stolen = await stack.login(email, pw), await stack.login(email, pw)
    secret = (await stack.api.ok("POST", "/v1/me/totp", {"current_password": pw},
                                 mine))["secret"]
    stack.secrets.add(secret)
    totp = pyotp.TOTP(secret)
    codes = (await stack.api.ok("POST", "/v1/me/totp/confirm", {"code": totp.now()},
                                mine))["recovery_codes"]
    stack.secrets.update(codes)
    assert (await stack.api.call("GET", "/v1/me", token=stolen))[0] == 401
    assert (await stack.api.call("GET", "/v1/me", token=mine))[0] == 200

    other = await stack.api.call("POST", "/v1/sessions", {
        "email": email, "password": pw, "totp_code": codes[0]})
    assert other[0] == 201
    stolen = other[1]["token"]
    stack.secrets.update({stolen, "moved20@example.org"})
    assert (await stack.api.call("PATCH", "/v1/me", {
        "email": "moved20@example.org", "current_password": pw, "totp_code": codes[1]},
        mine))[0] == 202
    [mail] = await inbox.wait("moved20@example.org", 1)
    _, token = link(mail, "email-change")
    stack.secrets.add(token)
    assert (await stack.api.call("POST", "/v1/email-changes/confirm",
                                 {"token": token}))[0] == 204
    assert (await stack.api.call("GET", "/v1/me", token=stolen))[0] == 401
    me = await stack.api.call("GET", "/v1/me", token=mine)
    assert me[0] == 200 and me[1]["email"] == "moved20@example.org"
    stack.secrets.add(body_of_undo(await inbox.wait(email, 1)))


def body_of_undo(mails: list[Any]) -> str:
    found = re.search(r"undo\?token=(\S+)", mails[0].get_payload(decode=True).decode())
    assert found
    return found.group(1)


async def test_answers_do_not_name_the_server_software_or_its_version(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()
    for path in ("/healthz", "/v1/me", "/signup", "/nowhere"):
        _, _, headers = await stack.api.fetch(path)
        assert headers["Server"] == "packetra-gateway", (path, headers.get("Server"))
    answer = await raw_request("127.0.0.1", stack.gateway.port,
                               b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert b"\r\nServer: packetra-gateway\r\n" in answer and b"aiohttp" not in answer
    async with aiohttp.ClientSession() as http, http.get(f"{stack.gateway.ops_url}/healthz") \
            as resp:
        assert resp.headers["Server"] == "packetra-gateway"


# -- item 17: cheap accounts cannot burn addresses or exhaust checkout streams ----------
PLANS = '{"vps-small": {"price": "9.99", "currency": "EUR"}}'


async def portal_post(stack: Stack, api: Api, token: str, path: str, data: dict[str, str]
                      ) -> tuple[int, str, dict[str, str]]:
    """A logged-in customer's form: its page's CSRF token, their cookie, our Origin."""
    cookie = {"Cookie": f"__Host-session={token}"}
    async with api.http.get(f"{stack.gateway.base}/account", headers=cookie) as resp:
        page = await resp.text()
        assert resp.status == 200, page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    async with api.http.post(f"{stack.gateway.base}{path}", allow_redirects=False,
                             headers={**cookie, "Origin": stack.gateway.url},
                             data={"csrf": csrf.group(1), **data}) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_plan_invoices_are_capped_per_client_address_across_accounts(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(GATEWAY_PLANS=PLANS,
                             GATEWAY_SECURITY__PORTAL_INVOICES_PER_IP_PER_HOUR="2")
    answers = []
    for n in range(3):  # three fresh accounts, one client address
        email = f"cheap{n}@example.org"
        await stack.signup(email, "cheap password 17")
        token = await stack.login(email, "cheap password 17")
        answers.append(await portal_post(stack, stack.api, token, "/account/buy",
                                         {"plan": "vps-small", "coin": "LTC"}))
    assert [a[0] for a in answers] == [303, 303, 429], [a[:2] for a in answers]
    assert "too many invoice attempts from your address" in answers[2][1]
    assert int(answers[2][2]["Retry-After"]) > 3000
    # The API's way to buy (POST /v1/me/invoices) counts on the same cap.
    status, doc, _ = await stack.api.call("POST", "/v1/me/invoices",
                                          {"plan": "vps-small", "coin": "LTC"}, token)
    assert status == 429 and "invoice attempts from your address" in doc["detail"], doc
    assert await stack.count("invoices") == 2


async def test_checkout_streams_are_capped_per_account(
    make_stack: StackFactory, client_from: Client,
) -> None:
    stack = await make_stack(GATEWAY_SERVER__EVENT_STREAMS_PER_ACCOUNT="2")
    account = (await stack.signup("streams17@example.org"))["id"]
    invoices = [(await stack.invoice(account))["id"] for _ in range(3)]
    opened = []
    try:
        for n, invoice_id in enumerate(invoices):  # each from an address of its own
            api = origin(stack, client_from, f"127.0.17.{n + 1}")
            resp = await api.http.get(f"{stack.gateway.base}/pay/{invoice_id}/events")
            opened.append(resp)
            if resp.status == 200:
                assert (await resp.content.readline()).startswith(b"event: status")
        assert [r.status for r in opened] == [200, 200, 429]
        assert "this account's invoices" in (await opened[2].json())["detail"]
    finally:
        for resp in opened:
            resp.close()
    # Closed, they free their slots.
    deadline = time.monotonic() + 10
    while True:
        api = origin(stack, client_from, "127.0.17.9")
        async with api.http.get(f"{stack.gateway.base}/pay/{invoices[2]}/events") as resp:
            if resp.status == 200:
                break
        assert time.monotonic() < deadline, "closed streams did not free their slots"
        await asyncio.sleep(0.1)


async def test_plan_invoices_need_a_confirmed_address_when_verification_is_on(
    make_stack: StackFactory, inbox: Inbox,
) -> None:
    """A session from before verification was turned on cannot buy until it confirms."""
    stack = await make_stack(GATEWAY_PLANS=PLANS, **smtp_env(inbox))
    await stack.signup("early17@example.org", "early password 17")
    token = await stack.login("early17@example.org", "early password 17")
    await stack.gateway.stop()
    stack.gateway.env["GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION"] = "true"
    await stack.gateway.start()
    status, page, _ = await portal_post(stack, stack.api, token, "/account/buy",
                                        {"plan": "vps-small", "coin": "LTC"})
    assert status == 403 and "confirm your email address first" in page
    status, doc, _ = await stack.api.call("POST", "/v1/me/invoices",
                                          {"plan": "vps-small", "coin": "LTC"}, token)
    assert status == 403 and "confirm your email address first" in doc["detail"], doc
    assert await stack.count("invoices") == 0


# -- item 24: a second gateway on the same ports says which key to change -----------------
async def test_a_second_gateway_on_the_same_ports_names_the_key_and_exits(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()  # the first gateway, serving
    env = dict(stack.gateway.env)
    hint = ("is another gateway running on this host? Each instance needs its own [server] "
            "port, [server] metrics_listen and [staff] listen")
    # The public port is bound first (before anything starts), then the listeners.
    for changes, key in (({}, "[server] port"),
                         ({"GATEWAY_SERVER__PORT": str(free_port())},
                          "[server] metrics_listen")):
        second = await asyncio.to_thread(run_cli, env | changes, "serve")
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1, second.stderr[-2000:]
        assert lines[0].startswith(f"gateway: {key} ") and "address already in use" in lines[0]
        assert lines[0].endswith(f'{hint} (OPERATIONS.md, "Several instances on one host")')
    assert (await stack.api.call("GET", "/healthz"))[0] == 200  # the first one serves on
