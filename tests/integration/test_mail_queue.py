"""The mail queue on a real SQLite file and a real PostgreSQL database, sending through a
real SMTP server on loopback (aiosmtpd), with an injected clock."""

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import select

from gateway.adapters.db import tables as t
from gateway.adapters.db.engine import make_engine
from gateway.adapters.fields import BlindIndex, FieldCipher
from gateway.adapters.mail import SmtpMailer
from gateway.adapters.mail_queue import MailPolicy, MailSender, QueuedMailer, SqlMailQueue
from tests.support.databases import fresh_database
from tests.support.inbox import Inbox
from tests.support.nodes import free_port

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = MailPolicy((timedelta(seconds=10), timedelta(seconds=60)), timedelta(minutes=5))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def test_queued_mail_is_encrypted_retried_then_sent_and_deleted(database_url: str
                                                                    ) -> None:
    engine = make_engine(database_url)
    clock = Clock()
    queue = SqlMailQueue(engine, FieldCipher([("t", os.urandom(32))]), BlindIndex(os.urandom(32)))
    box = Inbox(free_port())
    outcomes: list[str] = []
    sender = MailSender(queue, SmtpMailer("127.0.0.1", box.port, sender="gw@packetra.test",
                                          timeout=5),
                        clock=clock, policy=POLICY, on_outcome=outcomes.append)
    try:
        assert await QueuedMailer(queue, clock).send(
            "queued@example.org", "Reset your password", "https://x/reset?token=SECRET1")
        async with engine.connect() as conn:
            [row] = (await conn.execute(select(t.mail_queue))).all()
        for column in (row.recipient_ct, row.subject_ct, row.body_ct):
            assert b"queued@" not in column and b"SECRET1" not in column
            assert b"password" not in column

        # SMTP is down: the attempt fails, the mail waits 10 s (+-10%), then 60 s.
        assert await sender.run_once() == 1
        assert outcomes == ["retry"]
        async with engine.connect() as conn:
            row = (await conn.execute(select(t.mail_queue))).one()
        assert row.attempts == 1 and row.lease_until is None
        assert timedelta(seconds=9) <= row.next_attempt_at - START <= timedelta(seconds=11)
        assert await sender.run_once() == 0  # not due yet
        clock.now = START + timedelta(seconds=12)
        await sender.run_once()
        async with engine.connect() as conn:
            row = (await conn.execute(select(t.mail_queue))).one()
        assert row.attempts == 2
        assert timedelta(seconds=54) <= row.next_attempt_at - clock.now <= timedelta(seconds=66)

        # SMTP is back: the next due round sends it, and the row is gone.
        controller = Controller(box, hostname="127.0.0.1", port=box.port)
        controller.start()
        try:
            clock.now += timedelta(seconds=70)
            assert await sender.run_once() == 1
        finally:
            controller.stop()
        [mail] = box.to("queued@example.org")
        assert mail["Subject"] == "Reset your password"
        assert "SECRET1" in mail.get_payload()  # type: ignore[operator]
        assert outcomes == ["retry", "retry", "sent"]
        assert await queue.depth() == 0
    finally:
        await engine.dispose()


async def test_mail_older_than_the_maximum_age_is_dropped_and_counted(database_url: str
                                                                     ) -> None:
    engine = make_engine(database_url)
    clock = Clock()
    queue = SqlMailQueue(engine, FieldCipher([("t", os.urandom(32))]), BlindIndex(os.urandom(32)))
    outcomes: list[str] = []
    closed = free_port()  # nothing listens here
    sender = MailSender(queue, SmtpMailer("127.0.0.1", closed, sender="gw@packetra.test",
                                          timeout=5),
                        clock=clock, policy=POLICY, on_outcome=outcomes.append)
    try:
        await queue.put("a@example.org", "s", "b", START)
        await queue.put("b@example.org", "s", "b", START + timedelta(minutes=4, seconds=55))
        clock.now = START + timedelta(minutes=4, seconds=55)
        await sender.run_once()
        # The first would be retried past its 5 minutes: given up at once. The second
        # waits for its retry.
        assert sorted(outcomes) == ["dropped", "retry"]
        assert await queue.depth() == 1
        clock.now = START + timedelta(minutes=10)
        await sender.run_once()  # never sent in time: dropped before any attempt
        assert sorted(outcomes) == ["dropped", "dropped", "retry"]
        assert await queue.depth() == 0
    finally:
        await engine.dispose()


async def test_a_mail_is_claimed_by_one_sender_at_a_time(tmp_path: Path) -> None:
    # Several instances share PostgreSQL only (SQLite serves one instance, one sender).
    with fresh_database("postgresql", tmp_path) as url:
        await _claim_once_each(url)


async def _claim_once_each(database_url: str) -> None:
    engine = make_engine(database_url)
    queue = SqlMailQueue(engine, FieldCipher([("t", os.urandom(32))]), BlindIndex(os.urandom(32)))
    try:
        for i in range(20):
            await queue.put(f"m{i}@example.org", "s", "b", START)
        first, second = await asyncio.gather(
            queue.claim(START, 15, timedelta(seconds=60)),
            queue.claim(START, 15, timedelta(seconds=60)))
        ids = [m.id for m in first[0]] + [m.id for m in second[0]]
        assert len(ids) == len(set(ids)) == 20  # leased rows are not claimed twice
        # A lease that ran out (the instance died mid-send) frees the mail again.
        later, _ = await queue.claim(START + timedelta(seconds=61), 50, timedelta(seconds=60))
        assert len(later) == 20
    finally:
        await engine.dispose()
