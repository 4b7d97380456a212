"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.nodes import free_port


@dataclass
class Inbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # monotonic time of each message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        message["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        self.arrived.append(time.monotonic())
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["X-Rcpt"] == address]

    async def wait(self, address: str, count: int, timeout: float = 10) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            assert time.monotonic() < deadline, f"no mail #{count} for {address}"
            await asyncio.sleep(0.1)
        return self.to(address)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def smtp_env(inbox: Inbox, **extra: str) -> dict[str, str]:
    return {"GATEWAY_SMTP__HOST": "127.0.0.1", "GATEWAY_SMTP__PORT": str(inbox.port),
            "GATEWAY_SMTP__FROM": "billing@packetra.test", **extra}
