"""The delivery loop: claim due deliveries, POST them signed, record each attempt."""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp

from webhooks import signing
from webhooks.retry import Outcome, RetryPolicy, classify, parse_retry_after
from webhooks.store import AttemptResult, DeliveryStore, PendingDelivery

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryStore,
        clock: Callable[[], datetime],
        policy: RetryPolicy | None = None,
        timeout: float = 15.0,
        batch: int = 20,
        lease_seconds: float = 60.0,
        idle_interval: float = 1.0,
        on_attempt: Callable[[AttemptResult], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._batch = batch
        self._lease = lease_seconds
        self._idle = idle_interval
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._on_attempt = on_attempt

    def wake(self) -> None:
        """Called after a commit that wrote to the outbox, so delivery is not left to poll."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    sent = await self.run_once()
                except Exception:
                    log.exception("webhook delivery round failed")
                    sent = 0
                if sent < self._batch:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._idle)
                    except TimeoutError:
                        pass
        finally:
            await self.aclose()

    async def run_once(self) -> int:
        deliveries = await self._store.claim(self._clock(), self._batch, self._lease)
        if deliveries:
            await asyncio.gather(*(self._deliver(d) for d in deliveries))
        return len(deliveries)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, delivery: PendingDelivery) -> None:
        result = await self._send(delivery)
        next_at = None
        if result.outcome is Outcome.RETRY:
            retry_after = (
                timedelta(seconds=result.retry_after_seconds)
                if result.retry_after_seconds is not None
                else None
            )
            next_at = self._policy.next_attempt(
                delivery.attempts + 1, result.at, retry_after, random.random
            )
        await self._store.record(delivery, result, next_at)
        if self._on_attempt is not None:
            self._on_attempt(result)
        log.info(
            "webhook delivery %s to %s: %s (%s) in %d ms",
            delivery.event_id,
            delivery.endpoint_id,
            result.outcome.value,
            result.status_code,
            result.latency_ms,
        )

    async def _send(self, delivery: PendingDelivery) -> AttemptResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        now = self._clock()
        hdrs = signing.headers(
            delivery.secrets, delivery.event_id, int(now.timestamp()), delivery.body
        )
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            async with self._session.post(
                delivery.url, data=delivery.body, headers=hdrs, allow_redirects=False
            ) as resp:
                status = resp.status
                await resp.read()  # drained, never stored
                ra = parse_retry_after(resp.headers.get("Retry-After"), now)
                retry_after = ra.total_seconds() if ra is not None else None
                if 300 <= status < 400:
                    error = "redirect not followed"
        except TimeoutError:
            error = "timeout"
        except aiohttp.ClientError as exc:
            error = type(exc).__name__
        latency = int((time.monotonic() - started) * 1000)
        return AttemptResult(now, classify(status), status, latency, error, retry_after)
