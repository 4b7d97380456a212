"""Outgoing mail through a durable queue: no request waits for SMTP, and no mail is lost
while the SMTP server is down.

`QueuedMailer` implements the `Mailer` port by inserting a row; `MailSender` (one task per
instance) claims due rows with `FOR UPDATE SKIP LOCKED` and a lease, sends them through
the SMTP mailer, deletes what was sent and reschedules the rest, until `max_age` after
which a mail is dropped and counted. Recipient, subject and body are encrypted with the
field cipher, bound to their column and the row id."""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.db.encrypted import MAIL_BODY, MAIL_RECIPIENT, MAIL_SUBJECT
from gateway.adapters.db.engine import read_transaction, write_transaction
from gateway.adapters.db.tables import accounts, mail_queue
from gateway.adapters.fields import BlindIndex, FieldCipher, FieldCipherError
from gateway.domain.accounts import email_lookup_form
from gateway.services.ids import new_id
from gateway.services.recovery import Mailer

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class QueuedMail:
    id: str
    to: str
    subject: str
    body: str
    attempts: int
    created_at: datetime


async def put_mail(conn: AsyncConnection, cipher: FieldCipher, index: BlindIndex, to: str,
                   subject: str, body: str, now: datetime,
                   notice_for: str | None = None) -> str:
    """Queue one mail inside the caller's transaction: it is queued if and only if the
    transaction commits (renewal reminders go with the change that caused them).
    `notice_for`: the account this inactivity notice warns (see `drop_mail`)."""
    mail_id = new_id("mail_")
    await conn.execute(insert(mail_queue).values(notice_account_id=notice_for,
        id=mail_id, recipient_index=index(email_lookup_form(to)),
        recipient_ct=cipher.encrypt(to, MAIL_RECIPIENT.ref(mail_id)),
        subject_ct=cipher.encrypt(subject, MAIL_SUBJECT.ref(mail_id)),
        body_ct=cipher.encrypt(body, MAIL_BODY.ref(mail_id)), attempts=0, next_attempt_at=now,
        created_at=now))
    return mail_id


async def drop_mail(conn: AsyncConnection, where: ColumnElement[bool]) -> int:
    """Delete undelivered mail inside the caller's transaction. An inactivity notice among
    it was never delivered: its account counts as not warned again (the next retention
    run warns it anew), so no account is deleted on a notice nobody received."""
    q = mail_queue
    await conn.execute(update(accounts).where(accounts.c.id.in_(
        select(q.c.notice_account_id).where(where, q.c.notice_account_id.is_not(None))))
        .values(inactivity_notice_at=None))
    return int((await conn.execute(delete(q).where(where))).rowcount)


class SqlMailOutbox:
    """The unit of work's `mail`: mail queued in its transaction, sent only if it commits."""

    def __init__(self, conn: AsyncConnection, cipher: FieldCipher,
                 index: BlindIndex | None) -> None:
        self._conn = conn
        self._cipher = cipher
        self._index = index
        self.queued = 0  # in this transaction: the sender is woken at commit

    async def queue(self, to: str, subject: str, body: str, now: datetime) -> None:
        if self._index is None:
            raise RuntimeError("this unit of work was built without the mail queue")
        await put_mail(self._conn, self._cipher, self._index, to, subject, body, now)
        self.queued += 1


class SqlMailQueue:
    def __init__(self, engine: AsyncEngine, cipher: FieldCipher, index: BlindIndex) -> None:
        self._engine = engine
        self._cipher = cipher
        self._index = index

    async def put(self, to: str, subject: str, body: str, now: datetime,
                  notice_for: str | None = None) -> str:
        async with write_transaction(self._engine) as conn:
            return await put_mail(conn, self._cipher, self._index, to, subject, body, now,
                                  notice_for)

    async def claim(self, now: datetime, limit: int, lease: timedelta
                    ) -> tuple[list[QueuedMail], int]:
        """Due mail, leased to this instance; and how many rows could not be decrypted
        (those are dropped: no configured key reads them)."""
        q = mail_queue
        async with write_transaction(self._engine) as conn:
            rows = (await conn.execute(
                select(q).where(q.c.next_attempt_at <= now,
                                q.c.lease_until.is_(None) | (q.c.lease_until < now))
                .order_by(q.c.next_attempt_at).limit(limit)
                .with_for_update(skip_locked=True))).all()
            if not rows:
                return [], 0
            await conn.execute(update(q).where(q.c.id.in_([r.id for r in rows]))
                               .values(lease_until=now + lease))
        mails: list[QueuedMail] = []
        unreadable: list[str] = []
        for r in rows:
            try:
                mails.append(QueuedMail(
                    r.id, self._cipher.decrypt(r.recipient_ct, MAIL_RECIPIENT.ref(r.id)),
                    self._cipher.decrypt(r.subject_ct, MAIL_SUBJECT.ref(r.id)),
                    self._cipher.decrypt(r.body_ct, MAIL_BODY.ref(r.id)), r.attempts,
                    r.created_at))
            except FieldCipherError:
                unreadable.append(r.id)
        if unreadable:
            log.error("%d queued mails dropped: they cannot be decrypted (is their data key "
                      "still configured?)", len(unreadable))
            await self.drop(unreadable)
        return mails, len(unreadable)

    async def remove(self, ids: Sequence[str]) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(delete(mail_queue).where(mail_queue.c.id.in_(list(ids))))

    async def drop(self, ids: Sequence[str]) -> None:
        """Undelivered and given up on (see `drop_mail`)."""
        async with write_transaction(self._engine) as conn:
            await drop_mail(conn, mail_queue.c.id.in_(list(ids)))

    async def reschedule(self, mail_id: str, attempts: int, at: datetime) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(mail_queue).where(mail_queue.c.id == mail_id).values(
                attempts=attempts, next_attempt_at=at, lease_until=None))

    async def drop_expired(self, before: datetime) -> int:
        async with write_transaction(self._engine) as conn:
            return await drop_mail(conn, mail_queue.c.created_at < before)

    async def depth(self) -> int:
        async with read_transaction(self._engine) as conn:
            return int((await conn.execute(
                select(func.count()).select_from(mail_queue))).scalar_one())


class QueuedMailer:
    """The `Mailer` port: `send` queues the mail and returns at once. True means it is
    queued (durably), not that it was delivered."""

    def __init__(self, queue: SqlMailQueue, clock: Clock,
                 wake: Callable[[], None] | None = None) -> None:
        self._queue = queue
        self._clock = clock
        self._wake = wake

    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        try:
            await self._queue.put(to, subject, body, self._clock(), notice_for)
        except SQLAlchemyError as exc:
            log.error("mail %r could not be queued (%s)", subject, type(exc).__name__)
            return False
        if self._wake is not None:
            self._wake()
        return True


@dataclass(frozen=True)
class MailPolicy:
    # Delays before each retry; the last one repeats until max_age.
    retry_schedule: tuple[timedelta, ...] = (
        timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5),
        timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1))
    max_age: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=120)

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """After the `attempts`-th failed attempt; +-10% jitter so instances spread out."""
        delay = self.retry_schedule[min(attempts, len(self.retry_schedule)) - 1]
        return now + delay * (0.9 + 0.2 * random.random())


class MailSender:
    """The background task: one per instance (rows are claimed with SKIP LOCKED). Mails
    of a batch are sent one after another, so a batch times the SMTP timeout (3 x 30 s)
    must stay inside the lease (120 s), or another instance would send them again."""

    def __init__(self, queue: SqlMailQueue, smtp: Mailer, *, clock: Clock,
                 policy: MailPolicy = MailPolicy(), batch: int = 3,
                 idle_seconds: float = 1.0,
                 on_outcome: Callable[[str], None] | None = None) -> None:
        self._queue = queue
        self._smtp = smtp
        self._clock = clock
        self._policy = policy
        self._batch = batch
        self._idle = idle_seconds
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A mail was queued: send it now rather than at the next poll."""
        self._wake.set()

    def _count(self, outcome: str, n: int = 1) -> None:
        if self._on_outcome is not None:
            for _ in range(n):
                self._on_outcome(outcome)

    async def run(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:
                log.warning("mail queue round failed (%s)", type(exc).__name__)
                handled = 0
            if handled < self._batch:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the event is set, and the loop would go on
                # after shutdown asked it to stop (the stop then never finishes).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle):
                        await self._wake.wait()

    async def run_once(self) -> int:
        now = self._clock()
        self._count("dropped", await self._queue.drop_expired(now - self._policy.max_age))
        mails, unreadable = await self._queue.claim(now, self._batch, self._policy.lease)
        self._count("dropped", unreadable)
        for mail in mails:
            await self._send(mail)
        return len(mails) + unreadable

    async def _send(self, mail: QueuedMail) -> None:
        if await self._smtp.send(mail.to, mail.subject, mail.body):
            await self._queue.remove([mail.id])
            self._count("sent")
            return
        attempts = mail.attempts + 1
        now = self._clock()
        at = self._policy.next_attempt(attempts, now)
        if at - mail.created_at > self._policy.max_age:
            log.warning("mail %r dropped after %d attempts: older than the maximum age",
                        mail.subject, attempts)
            await self._queue.drop([mail.id])
            self._count("dropped")
            return
        await self._queue.reschedule(mail.id, attempts, at)
        self._count("retry")
