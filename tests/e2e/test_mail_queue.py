"""Mail leaves through the durable queue: a password-reset request answers at once, the
same for known and unknown addresses, and its mail survives an SMTP outage."""

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import Stack, StackFactory
from tests.support.inbox import Inbox, smtp_env
from tests.support.nodes import free_port


@dataclass
class SlowInbox(Inbox):
    """An SMTP server that holds every message until the test releases it: a request that
    waited for it could not answer at all, whatever the machine's load."""

    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_inbox() -> Iterator[SlowInbox]:
    box = SlowInbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        box.release.set()
        controller.stop()


async def timed_reset(stack: Stack, email: str) -> tuple[float, int, dict[str, Any]]:
    started = time.monotonic()
    status, doc, _ = await stack.api.call("POST", "/v1/password-resets", {"email": email})
    return time.monotonic() - started, status, doc


def reset_token(message: Any) -> str:
    match = re.search(r"/reset\?token=(\S+)", message.get_payload(decode=True).decode())
    assert match
    return match.group(1)


async def test_known_and_unknown_addresses_answer_alike_without_waiting_for_smtp(
    make_stack: StackFactory, slow_inbox: SlowInbox,
) -> None:
    stack = await make_stack(**smtp_env(slow_inbox))
    await stack.signup("timing@example.org", "timing password 1")
    await timed_reset(stack, "warmup@example.org")
    known = [await timed_reset(stack, "timing@example.org") for _ in range(2)]
    unknown = [await timed_reset(stack, "nobody@example.org") for _ in range(2)]
    for elapsed, status, doc in known + unknown:
        # The SMTP server has answered nothing yet: these answers did not wait for it
        # (the bound is generous only for a loaded machine).
        assert elapsed < 5.0, (elapsed, status)
        assert (status, doc) == (known[0][1], known[0][2]) and status == 202
    assert slow_inbox.messages == [], "the SMTP server was to hold every message"
    slow_inbox.release.set()
    mails = await slow_inbox.wait("timing@example.org", 2, timeout=30)
    stack.secrets.update(reset_token(m) for m in mails)
    assert slow_inbox.to("nobody@example.org") == []


async def test_a_reset_requested_while_smtp_is_down_arrives_when_it_is_back(
    make_stack: StackFactory,
) -> None:
    box = Inbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    # A test-sized schedule: the retries of a long outage come within seconds, and the
    # mail follows soon after SMTP returns.
    stack = await make_stack(**smtp_env(box, GATEWAY_MAIL__RETRY_SCHEDULE_SECONDS="[0.2]"))
    await stack.signup("outage@example.org", "outage password 1")
    controller.stop()  # the SMTP server is down for several retries

    elapsed, status, _ = await timed_reset(stack, "outage@example.org")
    assert status == 202 and elapsed < 1.0, elapsed
    # Queued, encrypted (neither the address nor the link is readable in the table), and
    # tried again and again: each time the sender found SMTP down and kept the row.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        rows = await stack.rows("SELECT recipient_ct, body_ct, attempts FROM mail_queue")
        if rows and rows[0].attempts >= 3:
            break
        assert asyncio.get_running_loop().time() < deadline, \
            f"timed out waiting for three failed attempts at the queued mail: {rows}"
        await asyncio.sleep(0.2)
    [row] = rows
    assert b"outage@" not in bytes(row.recipient_ct) and b"reset?token" not in bytes(row.body_ct)
    assert box.messages == []

    controller = Controller(box, hostname="127.0.0.1", port=box.port)  # back, same port
    controller.start()
    try:
        [mail] = await box.wait("outage@example.org", 1, timeout=15)
    finally:
        controller.stop()
    assert mail["Subject"] == "Reset your Packetra password"
    stack.secrets.add(reset_token(mail))
    assert await stack.count("mail_queue") == 0  # deleted once sent
    async with stack.api.http.get(f"{stack.gateway.ops_url}/metrics") as resp:
        metrics = await resp.read()
    assert re.search(rb'gateway_mail_attempts_total\{outcome="retry"\} [1-9]', metrics)
    assert re.search(rb'gateway_mail_attempts_total\{outcome="sent"\} 1\.0', metrics)
