"""Run a job on exactly one instance at a time.

PostgreSQL: a session-level advisory lock, held on a dedicated connection for as long as
the job runs. When the holder dies its connection closes, the lock is released, and the
next instance polling for it takes over. SQLite serves a single instance: jobs just run."""

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
Job = Callable[[], Coroutine[Any, Any, None]]


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LocalLeadership:
    async def run_exclusively(self, name: str, job: Job) -> None:
        await job()


class AdvisoryLockLeadership:
    def __init__(self, engine: AsyncEngine, poll_seconds: float = 2.0) -> None:
        self._engine = engine
        self._poll = poll_seconds

    async def run_exclusively(self, name: str, job: Job) -> None:
        key = lock_key(name)
        while True:
            try:
                await self._hold_and_run(name, key, job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: lost or could not take the lock (%s)", name, type(exc).__name__)
            await asyncio.sleep(self._poll)

    async def _hold_and_run(
        self, name: str, key: int, job: Job
    ) -> None:
        async with self._engine.connect() as conn:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                   ).scalar()
            await conn.commit()  # the lock is per session; hold no transaction open
            if not got:
                return
            log.info("%s: this instance took the lock and runs the job", name)
            task = asyncio.create_task(job())
            try:
                while not task.done():
                    # Check the session that holds the lock is alive; if it is gone, so is
                    # the lock, and another instance may already run the job.
                    await asyncio.wait({task}, timeout=self._poll)
                    if not task.done():
                        await conn.execute(text("SELECT 1"))
                        await conn.commit()
                await task
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()
                except Exception as exc:
                    # Connection already gone: the lock went with it.
                    log.debug("%s: unlock skipped (%s)", name, type(exc).__name__)
