"""The delivery loop: claim due deliveries, POST them signed, record each attempt."""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
from aiohttp.abc import AbstractResolver

from webhooks import signing
from webhooks.connect import error_class, guarded_connector
from webhooks.retry import Outcome, RetryPolicy, classify, parse_retry_after
from webhooks.store import AttemptResult, DeliveryStore, PendingDelivery
from webhooks.targets import TargetPolicy

# The gateway needs a receiver's status and Retry-After only; the body is read (to reuse
# the connection) up to this many bytes, never stored.
MAX_RESPONSE_BYTES = 64 * 1024

log = logging.getLogger(__name__)


class ResponseTooLarge(Exception):
    pass


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
        targets: TargetPolicy | None = None,
        resolver: AbstractResolver | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """`targets`: where deliveries may connect (default: public addresses only);
        `resolver`: replaces the system resolver (tests)."""
        self._store = store
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._timeout_seconds = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._targets = targets if targets is not None else TargetPolicy()
        self._resolver = resolver
        self._max_response = max_response_bytes
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
            self._session = aiohttp.ClientSession(
                connector=guarded_connector(self._targets, self._resolver),
                timeout=self._timeout,
                auto_decompress=False,  # the body is discarded: no decompression bombs
                trust_env=False,  # no proxy from the environment: we connect ourselves
            )
        now = self._clock()
        hdrs = signing.headers(
            delivery.secrets, delivery.event_id, int(now.timestamp()), delivery.body
        )
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            # One deadline for connect, headers and body: a slow receiver cannot hold
            # the worker past it.
            async with asyncio.timeout(self._timeout_seconds):
                async with self._session.post(
                    delivery.url, data=delivery.body, headers=hdrs, allow_redirects=False
                ) as resp:
                    status = resp.status
                    ra = parse_retry_after(resp.headers.get("Retry-After"), now)
                    retry_after = ra.total_seconds() if ra is not None else None
                    if 300 <= status < 400:
                        error = "redirect"  # never followed
                    await self._discard_body(resp)
        except ResponseTooLarge:
            error = "response_too_large"
        except Exception as exc:  # every failure becomes a logged attempt
            error = error_class(exc)
            if error == "error":
                log.warning("webhook delivery %s: unexpected %s", delivery.event_id,
                            type(exc).__name__, exc_info=True)
        latency = int((time.monotonic() - started) * 1000)
        return AttemptResult(now, classify(status), status, latency, error, retry_after)

    async def _discard_body(self, resp: aiohttp.ClientResponse) -> None:
        """Read and drop the body, at most `max_response_bytes` of it; a bigger one is
        not read further (the connection is closed, not reused)."""
        left = self._max_response
        while True:
            chunk = await resp.content.read(left + 1)
            if not chunk:
                return
            left -= len(chunk)
            if left < 0:
                resp.close()
                raise ResponseTooLarge
