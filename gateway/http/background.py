"""Work a handler starts and does not wait for, owned by the application: cancelled and
awaited when it shuts down, before the database is closed."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class BackgroundJobs:
    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, job: Coroutine[Any, Any, None], what: str) -> bool:
        """False (and the job is not run) when `limit` jobs are already running."""
        if len(self._tasks) >= self._limit:
            job.close()
            return False
        task = asyncio.create_task(job)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                # The type only: the message could name what the job was handed.
                log.error("%s failed (%s)", what, type(t.exception()).__name__)

        task.add_done_callback(done)
        return True

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


JOBS = web.AppKey("background_jobs", BackgroundJobs)


async def close_jobs(app: web.Application) -> None:
    await app[JOBS].aclose()
