import asyncio
import time
from typing import Any

from gateway.adapters.passwords import HashCost
from gateway.bootstrap import Overrides
from tests.e2e.conftest import Stack, StackFactory
from tests.support.clocks import MovableClock


async def log_in_once_unlocked(stack: Stack, email: str, password: str) -> None:
    """Logs in as soon as the lock (the throttle's first delay, 1 s) is over: a try
    refused while locked is not counted, so asking again costs nothing."""
    deadline = time.monotonic() + 10
    answer: tuple[int, dict[str, Any], dict[str, str]]
    while (answer := await stack.api.call("POST", "/v1/sessions",
                                          {"email": email, "password": password})
                                          )[0] == 429:
        assert time.monotonic() < deadline, f"timed out waiting for the 1 s lock: {answer}"
        await asyncio.sleep(0.2)
    assert answer[0] == 201, answer
    stack.secrets.add(answer[1]["token"])


async def test_failed_logins_are_throttled_alike_for_known_and_unknown_emails(
    make_stack: StackFactory,
) -> None:
    clock = MovableClock()
    stack = await make_stack(GATEWAY_SECURITY__LOGIN_FREE_FAILURES="2",
                             overrides=Overrides(clock=clock))
    await stack.signup("victim@example.org", "right password 1")
    clock.hold()  # the 1 s lock outlasts however long eight hashes take on a busy machine
    answers: dict[str, list[tuple[int, dict, str | None]]] = {}
    for email in ("victim@example.org", "ghost@example.org"):
        seen = []
        for _ in range(4):
            status, doc, headers = await stack.api.call(
                "POST", "/v1/sessions", {"email": email, "password": "wrong password 9"})
            seen.append((status, doc, headers.get("Retry-After")))
        answers[email] = seen
        if email == "victim@example.org":
            # While locked even the right password waits.
            locked = await stack.api.call("POST", "/v1/sessions", {
                "email": email, "password": "right password 1"})
    assert answers["victim@example.org"] == answers["ghost@example.org"]
    statuses = [s for s, _, _ in answers["victim@example.org"]]
    assert statuses == [401, 401, 401, 429]
    assert answers["victim@example.org"][3][2] == "1"  # Retry-After, in seconds
    assert locked[0] == 429
    clock.release()  # after the delay it works again
    await log_in_once_unlocked(stack, "victim@example.org", "right password 1")


async def test_signups_per_address_are_limited(make_stack: StackFactory) -> None:
    stack = await make_stack(GATEWAY_SECURITY__SIGNUP_PER_IP_PER_HOUR="2")
    await stack.signup("one@example.org")
    await stack.signup("two@example.org")
    status, doc, headers = await stack.api.call(
        "POST", "/v1/accounts", {"email": "three@example.org", "password": "long enough 1"})
    assert status == 429 and int(headers["Retry-After"]) > 3000
    assert doc["detail"].startswith("too many signup attempts")


async def test_password_checks_of_logged_in_customers_count_like_logins(
    make_stack: StackFactory,
) -> None:
    """A stolen session cannot guess the password through password change, deletion,
    email change or 2FA setup: those failures count on the login counter (issue 11)."""
    clock = MovableClock()
    stack = await make_stack(GATEWAY_SECURITY__LOGIN_FREE_FAILURES="2",
                             overrides=Overrides(clock=clock))
    await stack.signup("guarded@example.org", "right password 1")
    token = await stack.login("guarded@example.org", "right password 1")
    clock.hold()  # the 1 s lock must outlast the hashing of a loaded machine
    wrong = "wrong password 9"
    for method, path, body in (
        ("POST", "/v1/me/password", {"current_password": wrong,
                                     "new_password": "another password 2"}),
        ("DELETE", "/v1/me", {"password": wrong}),
        ("PATCH", "/v1/me", {"email": "thief@example.org", "current_password": wrong}),
    ):
        status, doc, _ = await stack.api.call(method, path, body, token)
        assert status == 422 and "wrong" in doc["detail"], (path, doc)
    for method, path, body in (
        ("POST", "/v1/me/totp", {"current_password": "right password 1"}),
        ("POST", "/v1/sessions", {"email": "guarded@example.org",
                                  "password": "right password 1"}),
    ):
        status, doc, headers = await stack.api.call(method, path, body, token)
        assert status == 429 and headers["Retry-After"] == "1", (path, doc)
    clock.release()
    await log_in_once_unlocked(stack, "guarded@example.org", "right password 1")


async def test_hashes_beyond_the_cap_get_503_with_retry_after(make_stack: StackFactory) -> None:
    """One hash at a time, none waiting: a burst of logins is answered at once, those
    that found the hasher busy with 503 and Retry-After (API and portal alike)."""
    import re


    # The production cost: a burst must find the one hashing thread busy.
    stack = await make_stack(GATEWAY_SECURITY__HASH_CONCURRENCY="1",
                             GATEWAY_SECURITY__HASH_MAX_WAITING="0",
                             overrides=Overrides(hash_cost=HashCost()))
    await stack.signup("busy@example.org", "right password 1")
    burst = await asyncio.gather(*(stack.api.call(
        "POST", "/v1/sessions", {"email": f"busy{i}@example.org", "password": "wrong pw 99"})
        for i in range(12)))
    statuses = sorted(s for s, _, _ in burst)
    assert set(statuses) == {401, 503}, statuses
    for status, doc, headers in burst:
        if status == 503:
            assert headers["Content-Type"].startswith("application/problem+json")
            assert "busy" in doc["detail"] and int(headers["Retry-After"]) >= 1
    # The portal's login form says so in its page.
    async with stack.api.http.get(f"{stack.gateway.base}/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)  # type: ignore[union-attr]

    async def form_login(i: int) -> tuple[int, str, str | None]:
        async with stack.api.http.post(f"{stack.gateway.base}/login", data={
                "csrf": token, "email": f"form{i}@example.org", "password": "wrong pw 99"},
                allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp.headers.get("Retry-After")

    pages = await asyncio.gather(*(form_login(i) for i in range(12)))
    assert {s for s, _, _ in pages} == {401, 503}, [s for s, _, _ in pages]
    assert all(r is not None and "busy" in text for s, text, r in pages if s == 503)
    # Nothing stays stuck: alone, a login works.
    await stack.login("busy@example.org", "right password 1")
