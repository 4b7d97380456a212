"""No secrets in logs, for the periodic jobs and unhandled request errors too: a job (or
a request) that fails with a database error, whose message quotes the statement's
parameters (an email, a field's ciphertext), is logged by its kind and its traceback's
frames, never by its message. Checked in the raw
records (caplog) and in what the gateway's own redacting handler writes: the redaction
masks emails but cannot recognise ciphertext."""

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.exc import IntegrityError

from gateway.http.problems import problem_middleware
from gateway.jobs import backup_once, every
from gateway.logs import attach, describe, failure
from gateway.services.billing import BillingService
from webhooks.worker import DeliveryWorker

EMAIL = "leaked.probe@example.org"
CIPHERTEXT = "8f3a9c0e77d1b2c4a5e6f7089a1b2c3d4e5f60718293a4b5"


def database_error() -> IntegrityError:
    """What SQLAlchemy raises for a failed statement: its message quotes the parameters."""
    try:
        try:
            raise ValueError(f"UNIQUE constraint failed: accounts.email_bidx {CIPHERTEXT}")
        except ValueError as inner:
            raise IntegrityError("INSERT INTO accounts (email_ct, email_bidx) VALUES (?, ?)",
                                 (EMAIL, bytes.fromhex(CIPHERTEXT)), inner) from inner
    except IntegrityError as exc:
        return exc


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What the gateway's own handler (the redacting one) writes."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = attach(stream, "INFO")
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_clean(caplog: pytest.LogCaptureFixture, stream: io.StringIO, where: str) -> None:
    for text in (caplog.text, stream.getvalue()):
        assert where in text, text  # the failure is logged, with where it happened
        assert "IntegrityError" in text
        for leaked in (EMAIL, "leaked.probe", CIPHERTEXT, CIPHERTEXT[:16]):
            assert leaked not in text, f"{leaked!r} in the log:\n{text}"


def test_failure_keeps_the_kind_and_the_frames_and_drops_the_message() -> None:
    text = failure(database_error())
    assert text.startswith("IntegrityError\n")
    assert "test_failure_logs.py" in text and "in database_error" in text
    assert "which came from: ValueError" in text
    assert EMAIL not in text and CIPHERTEXT not in text
    gone = FileNotFoundError(2, "No such file or directory", "/backups/x.bak")
    assert describe(gone) == "FileNotFoundError: No such file or directory (/backups/x.bak)"
    assert describe(OSError(f"refused {EMAIL}")) == "OSError"


async def test_a_failing_job_logs_no_parameter(
        caplog: pytest.LogCaptureFixture, written: io.StringIO) -> None:
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise database_error()
        raise asyncio.CancelledError  # the second run ends the loop

    with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
        await every(0, job, "probe job")
    assert runs == 2
    assert_clean(caplog, written, "in job")
    assert "probe job failed: IntegrityError" in caplog.text


async def test_a_failing_backup_and_pruning_log_no_parameter(
        caplog: pytest.LogCaptureFixture, written: io.StringIO, tmp_path: Path) -> None:
    class Failing:
        def create(self, out_dir: Path, now: datetime) -> Path:
            raise database_error()

    def prune(out_dir: Path, keep: timedelta, now: datetime) -> list[Path]:
        raise database_error()

    with caplog.at_level(logging.ERROR):
        run = await backup_once(Failing(), tmp_path, timedelta(days=21),
                                lambda: datetime(2026, 1, 1, tzinfo=UTC), prune)
    assert run.written is None and run.prune_failed
    assert_clean(caplog, written, "in create")
    assert "in prune" in caplog.text
    assert "backup failed; retried at the next run: IntegrityError" in caplog.text
    assert "pruning old backups" in caplog.text


async def test_a_failing_billing_account_logs_no_parameter(
        caplog: pytest.LogCaptureFixture, written: io.StringIO) -> None:
    class Reader:
        async def __aenter__(self) -> Any:
            async def due(*_: object) -> list[str]:
                return ["acc_probe"]
            return SimpleNamespace(billing=SimpleNamespace(due=due))

        async def __aexit__(self, *_: object) -> None:
            return None

    policy = SimpleNamespace(renewal_lead=timedelta(days=7), grace=timedelta(days=3),
                             second_reminder=timedelta(days=2))
    billing = BillingService(cast(Any, Reader), cast(Any, None),
                             clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
                             prepaid=cast(Any, SimpleNamespace(policy=policy)), reminders=None)

    async def account(account_id: str, now: datetime) -> int:
        raise database_error()

    cast(Any, billing)._account = cast(Callable[[str, datetime], Awaitable[int]], account)
    with caplog.at_level(logging.ERROR):
        assert await billing.run() == 0
    assert_clean(caplog, written, "in account")
    assert "billing: account acc_probe failed: IntegrityError" in caplog.text


async def test_an_unhandled_request_error_logs_no_parameter(
        caplog: pytest.LogCaptureFixture, written: io.StringIO) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise database_error()

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/v1/things/{thing_id}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        with caplog.at_level(logging.ERROR):
            async with aiohttp.ClientSession() as http, \
                    http.get(str(server.make_url("/v1/things/t1"))) as resp:
                assert resp.status == 500
    finally:
        await server.close()
    assert_clean(caplog, written, "in handler")
    assert "unhandled IntegrityError on GET /v1/things/{thing_id}: IntegrityError" \
        in caplog.text


async def test_a_failing_webhook_round_logs_no_parameter(
        caplog: pytest.LogCaptureFixture, written: io.StringIO) -> None:
    class Failing:
        async def claim(self, *_: object) -> list[object]:
            raise database_error()

        async def record(self, *_: object) -> None:
            raise database_error()

        async def renew(self, *_: object) -> None:
            return None

    worker = DeliveryWorker(cast(Any, Failing()), lambda: datetime(2026, 1, 1, tzinfo=UTC),
                            idle_interval=0.01)
    with caplog.at_level(logging.ERROR):
        task = asyncio.create_task(worker.run())
        deadline = asyncio.get_running_loop().time() + 10
        while "webhook delivery round failed" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "no round failed"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert_clean(caplog, written, "in claim")
    assert "webhook delivery round failed: IntegrityError" in caplog.text
