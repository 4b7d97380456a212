"""Work a handler leaves running: bounded, and cancelled and awaited on shutdown."""

import asyncio
import logging

import pytest

from gateway.http.background import BackgroundJobs


async def test_jobs_run_are_bounded_and_cancelled_on_close() -> None:
    jobs = BackgroundJobs(limit=2)
    finished: list[str] = []
    cancelled: list[str] = []

    async def job(name: str, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
            finished.append(name)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    assert jobs.spawn(job("quick", 0), "quick")
    assert jobs.spawn(job("slow", 60), "slow")
    refused = job("third", 0)
    assert not jobs.spawn(refused, "third")  # at the limit: not run (and closed, no warning)
    await asyncio.sleep(0.01)
    assert finished == ["quick"] and len(jobs) == 1
    await jobs.aclose()
    assert cancelled == ["slow"] and len(jobs) == 0


async def test_a_failing_job_is_logged_by_type_only(caplog: pytest.LogCaptureFixture) -> None:
    jobs = BackgroundJobs()

    async def fails() -> None:
        raise ValueError("victim@example.org")

    with caplog.at_level(logging.ERROR):
        jobs.spawn(fails(), "password-reset request")
        await asyncio.sleep(0.01)
    assert "password-reset request failed (ValueError)" in caplog.text
    assert "victim" not in caplog.text
