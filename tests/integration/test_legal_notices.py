"""Issue 28, item 4: the customers concerned by a legal request are mailed once they may be
told (recorded with notification allowed, or the hold lifted), through the durable mail
queue, once per request, never to an erased account; a failing delivery stays queued and
is retried without holding back other mail. Real SQLite and PostgreSQL databases, a real
SMTP server on loopback (aiosmtpd), an injected clock."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.mail import SmtpMailer
from gateway.adapters.mail_queue import MailPolicy, MailSender, SqlMailQueue
from gateway.domain.accounts import Account, email_lookup_form
from gateway.domain.errors import InvalidInput
from gateway.services.legal import NOTICE_SUBJECT, LegalNotices, LegalRegisterService
from gateway.services.ports import Profile
from tests.support.inbox import Inbox
from tests.support.nodes import free_port

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 5, 30, 9, 0, tzinfo=UTC)
POLICY = MailPolicy((timedelta(seconds=10), timedelta(seconds=60)), timedelta(hours=24))
ACCOUNT_URL = "https://pay.example/account"
SUMMARY = "Production order 2026/77, district court"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    legal: LegalRegisterService
    queue: SqlMailQueue
    sender: MailSender
    inbox: Inbox
    clock: Clock
    woken: list[int]
    outcomes: list[str]
    uow: Any
    engine: AsyncEngine
    cipher: FieldCipher
    index: BlindIndex

    async def deliver(self) -> None:
        """Every due mail handed to SMTP, as the background sender does."""
        while await self.sender.run_once():
            pass

    async def notice_queued_at(self, request_id: str) -> datetime | None:
        async with self.uow() as u:
            request = await u.legal.get(request_id)
        assert request is not None
        return request.notice_queued_at


class BusyInbox(Inbox):
    """Refuses one mailbox for now (a temporary failure, as a full or greylisting mailbox
    gives), accepts the rest."""

    busy: set[str]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.busy:
            return "450 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@asynccontextmanager
async def world(database_url: str, batch: int = 3) -> AsyncIterator[World]:
    engine = make_engine(database_url)
    cipher = FieldCipher([("t", os.urandom(32))])
    index = BlindIndex(os.urandom(32))
    woken: list[int] = []
    uow = lambda: SqlUnitOfWork(engine, cipher, mail_index=index,  # noqa: E731
                                on_mail=lambda: woken.append(1))
    clock = Clock()
    box = BusyInbox(free_port())
    box.busy = set()
    queue = SqlMailQueue(engine, cipher, index)
    outcomes: list[str] = []
    sender = MailSender(queue, SmtpMailer("127.0.0.1", box.port, sender="gw@packetra.test",
                                          timeout=5), clock=clock, policy=POLICY, batch=batch,
                        on_outcome=outcomes.append)
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        async with uow() as u:
            for name in ("alice", "bob", "gone"):
                email = f"{name}@example.org"
                await u.accounts.add(Account(f"acc_{name}", START - timedelta(days=30)),
                                     Profile(email, None, None),
                                     index(email_lookup_form(email)), "h", "v1")
            await u.commit()
        legal = LegalRegisterService(uow, clock, notices=LegalNotices(ACCOUNT_URL))
        yield World(legal, queue, sender, box, clock, woken, outcomes, uow, engine, cipher,
                    index)
    finally:
        controller.stop()
        await engine.dispose()


async def erase(w: World, account_id: str) -> None:
    """As the retention run erases an account."""
    async with w.uow() as u:
        account = await u.accounts.get(account_id, for_update=True)
        account.schedule_deletion(w.clock.now, timedelta(0))
        account.erase(w.clock.now)
        await u.accounts.erase_personal_data(account_id)
        await u.accounts.save(account)
        await u.commit()


async def test_a_request_recorded_with_notification_allowed_mails_each_customer_once(
    database_url: str,
) -> None:
    async with world(database_url) as w:
        await erase(w, "acc_gone")
        request = await w.legal.record("cli:op", ["acc_alice", "acc_bob", "acc_gone"],
                                       RECEIVED, SUMMARY, True)
        assert request.notice_queued_at == START
        assert await w.notice_queued_at(request.id) == START
        assert w.woken  # the local sender is woken at commit, not at its next poll
        assert await w.queue.depth() == 2  # nothing for the erased account

        await w.deliver()
        [alice] = w.inbox.to("alice@example.org")
        assert len(w.inbox.to("bob@example.org")) == 1
        assert [m["X-Rcpt"] for m in w.inbox.messages if "gone" in m["X-Rcpt"]] == []
        assert alice["Subject"] == NOTICE_SUBJECT
        assert alice.get_content_type() == "text/plain" and not alice.is_multipart()
        body = str(alice.get_payload())
        assert "May 30, 2026" in body and ACCOUNT_URL in body  # the date in English words
        # Plain text with one link, to the account page; the summary stays behind the login.
        assert "Production order" not in body and "<" not in body
        assert body.count("http") == 1

        # A second run finds nothing to send.
        assert await w.legal.notify_pending() == []
        assert await w.queue.depth() == 0
        assert len(w.inbox.messages) == 2


async def test_a_held_request_mails_nothing_until_lifted_and_lifting_twice_mails_once(
    database_url: str,
) -> None:
    async with world(database_url) as w:
        held = await w.legal.record("cli:op", ["acc_alice"], RECEIVED, SUMMARY, False)
        assert held.notice_queued_at is None
        assert await w.legal.notify_pending() == []  # held: not even the catch-up mails
        await w.deliver()
        assert await w.queue.depth() == 0 and w.inbox.messages == []

        w.clock.now = START + timedelta(days=3)
        # Two lifts at once (an operator's retry while the first still runs): one wins.
        results = await asyncio.gather(w.legal.lift_hold("cli:op", held.id),
                                       w.legal.lift_hold("cli:op", held.id),
                                       return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["InvalidInput", "LegalRequest"]
        with pytest.raises(InvalidInput):  # and a later retry
            await w.legal.lift_hold("cli:op", held.id)
        assert await w.notice_queued_at(held.id) == START + timedelta(days=3)
        assert await w.queue.depth() == 1
        await w.deliver()
        assert len(w.inbox.to("alice@example.org")) == 1
        assert await w.legal.notify_pending() == []
        await w.deliver()
        assert len(w.inbox.messages) == 1


async def test_requests_never_mailed_are_caught_up_once(database_url: str) -> None:
    async with world(database_url) as w:
        # Recorded while no [smtp] was configured (or before notification mail existed).
        quiet = LegalRegisterService(w.uow, w.clock)
        earlier = await quiet.record("cli:op", ["acc_bob"], RECEIVED, SUMMARY, True)
        assert earlier.notice_queued_at is None and await w.queue.depth() == 0
        with pytest.raises(InvalidInput):
            await quiet.notify_pending()

        # Two runs at once (two operators, or a cron job and a hand): one mail.
        first, second = await asyncio.gather(w.legal.notify_pending(),
                                             w.legal.notify_pending())
        [caught_up] = first + second
        assert caught_up.id == earlier.id and caught_up.notice_queued_at == START
        assert await w.legal.notify_pending() == []
        await w.deliver()
        assert [m["X-Rcpt"] for m in w.inbox.messages] == ["bob@example.org"]


async def test_a_failing_delivery_stays_queued_and_does_not_hold_back_other_mail(
    database_url: str,
) -> None:
    async with world(database_url, batch=1) as w:
        w.inbox.busy = {"alice@example.org"}
        await w.legal.record("cli:op", ["acc_alice"], RECEIVED, SUMMARY, True)
        await w.legal.record("cli:op", ["acc_bob"], RECEIVED, "Another order", True)

        # One mail a round: whichever goes first, Bob's is delivered while Alice's waits.
        await w.deliver()
        assert len(w.inbox.to("bob@example.org")) == 1
        assert w.inbox.to("alice@example.org") == []
        assert sorted(w.outcomes) == ["retry", "sent"]
        async with w.engine.connect() as conn:
            [row] = (await conn.execute(select(t.mail_queue))).all()
        assert row.attempts == 1  # Alice's mail, kept for its retry

        w.inbox.busy = set()
        w.clock.now = START + timedelta(seconds=12)
        await w.deliver()
        assert len(w.inbox.to("alice@example.org")) == 1
        assert len(w.inbox.to("bob@example.org")) == 1
        assert await w.queue.depth() == 0
        assert await w.legal.notify_pending() == []  # queued is recorded: never re-queued


async def test_a_lift_that_does_not_commit_queues_no_mail(database_url: str) -> None:
    async with world(database_url) as w:
        held = await w.legal.record("cli:op", ["acc_alice"], RECEIVED, SUMMARY, False)

        class Failing(SqlUnitOfWork):
            async def commit(self) -> None:
                raise ConnectionError("the database went away before COMMIT")

        broken = LegalRegisterService(lambda: Failing(w.engine, w.cipher, mail_index=w.index),
                                      w.clock, notices=LegalNotices(ACCOUNT_URL))
        with pytest.raises(ConnectionError):
            await broken.lift_hold("cli:op", held.id)
        assert await w.queue.depth() == 0 and await w.notice_queued_at(held.id) is None

        await w.legal.lift_hold("cli:op", held.id)  # the operator's retry
        await w.deliver()
        assert len(w.inbox.to("alice@example.org")) == 1


async def test_a_mail_dropped_undelivered_can_be_queued_again(database_url: str) -> None:
    async with world(database_url) as w:
        w.inbox.busy = {"alice@example.org"}
        request = await w.legal.record("cli:op", ["acc_alice"], RECEIVED, SUMMARY, True)
        await w.deliver()
        # Refused for longer than the queue keeps mail: dropped, and counted (an alert).
        w.clock.now = START + POLICY.max_age + timedelta(minutes=1)
        await w.deliver()
        assert w.outcomes == ["retry", "dropped"] and await w.queue.depth() == 0
        assert await w.legal.notify_pending() == []  # it was queued once: not pending

        w.inbox.busy = set()
        again = await w.legal.notify_again(request.id)
        assert again.notice_queued_at == w.clock.now
        await w.deliver()
        assert len(w.inbox.to("alice@example.org")) == 1

        held = await w.legal.record("cli:op", ["acc_bob"], RECEIVED, SUMMARY, False)
        with pytest.raises(InvalidInput):
            await w.legal.notify_again(held.id)
        assert await w.queue.depth() == 0
