"""The delivery loop: claim due deliveries, POST them signed and concurrently, record the
attempts in batches."""

import asyncio
import contextlib
import logging
import random
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
from aiohttp.abc import AbstractResolver

from webhooks import signing
from webhooks.connect import error_class, guarded_connector
from webhooks.retry import Outcome, RetryPolicy, classify, parse_retry_after
from webhooks.store import Attempt, AttemptResult, DeliveryStore, PendingDelivery
from webhooks.targets import TargetPolicy

# The gateway needs a receiver's status and Retry-After only; the body is read (to reuse
# the connection) up to this many bytes, never stored.
MAX_RESPONSE_BYTES = 64 * 1024
MIN_IDLE_SECONDS = 0.05  # the idle poll never runs more often than this

log = logging.getLogger(__name__)


def failure(exc: BaseException) -> str:
    """An exception for the log as gateway.logs.failure writes it (webhooks never imports
    gateway): the kind of it and of each exception it came from, with their traceback's
    frames, never their message: a database error's message quotes the statement's
    parameters (a secret's ciphertext, an event's body), which no redaction recognises."""
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        frames = "".join(traceback.format_tb(cur.__traceback__)).rstrip()
        parts.append(f"{type(cur).__name__}\n{frames}" if frames else type(cur).__name__)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return "\nwhich came from: ".join(parts)


class ResponseTooLarge(Exception):
    pass


class DeliveryWorker:
    """Sends deliveries concurrently on one shared keep-alive session: at most
    `concurrency` in flight in all and `per_endpoint` per endpoint. One loop talks to the
    store: it writes the results gathered meanwhile in one transaction, then claims as
    many deliveries as there are free slots. The store hands out at most one delivery
    per (endpoint, ordering key) at a time, so one subject's events (an invoice's, say)
    arrive in order, and it hands out urgent ones first."""

    def __init__(
        self, store: DeliveryStore, clock: Callable[[], datetime], *,
        policy: RetryPolicy | None = None,
        timeout: float = 15.0,
        concurrency: int = 64,
        per_endpoint: int = 16,
        lease_seconds: float = 10.0,
        idle_interval: float | None = None,
        on_attempt: Callable[[AttemptResult], None] | None = None,
        targets: TargetPolicy | None = None,
        resolver: AbstractResolver | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        tls_cafile: str | None = None,
    ) -> None:
        """`targets`: where deliveries may connect (default: public addresses only);
        `resolver`: replaces the system resolver (tests); `tls_cafile`: certificates
        trusted instead of the system's (tests)."""
        if concurrency < 1 or per_endpoint < 1:
            raise ValueError("concurrency and per_endpoint must be at least 1")
        self._store = store
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._timeout_seconds = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._targets = targets if targets is not None else TargetPolicy()
        self._resolver = resolver
        self._tls_cafile = tls_cafile
        self._max_response = max_response_bytes
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        # Up to twice `concurrency` deliveries (twice `per_endpoint` for one endpoint)
        # are claimed ahead, so the next ones are ready while the store writes results;
        # an endpoint's are refilled in batches (`_stocked`).
        # Leases are short and renewed while a delivery is held here (queued, in flight
        # or not yet recorded): after a crash, another worker (or this one, restarted)
        # takes over within `lease_seconds`; the lane's later events wait until then.
        self._claim_ahead = 2 * concurrency
        self._hold_per_endpoint = 2 * per_endpoint
        self._lease = lease_seconds
        self._held: set[str] = set()
        self._renewed_at = 0.0
        self._sending = asyncio.Semaphore(concurrency)
        self._slots: dict[str, asyncio.Semaphore] = {}  # per endpoint
        # Idle, it looks for retries that fell due this often: every second, or as often
        # as the shortest retry delay when that is shorter (a test's half-second schedule
        # is kept, not stretched to the poll).
        shortest = min(self._policy.schedule, default=timedelta(seconds=1)).total_seconds()
        self._idle = (idle_interval if idle_interval is not None
                      else min(1.0, max(MIN_IDLE_SECONDS, shortest)))
        self._wake = asyncio.Event()
        self._rung = False  # `wake` was called: new deliveries may be due
        self._claimed_at = 0.0  # monotonic time of the last claim
        self._session: aiohttp.ClientSession | None = None
        # Plain http goes only to listed private targets: its own connector refuses
        # every other address, whatever the name resolves to at send time.
        self._plain_session: aiohttp.ClientSession | None = None
        self._on_attempt = on_attempt
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: dict[str, int] = {}  # endpoint id -> deliveries in flight here
        self._done: list[Attempt] = []  # finished, not yet written

    @property
    def idle_interval(self) -> float:
        return self._idle

    def wake(self) -> None:
        """Called after a commit that wrote to the outbox, so delivery is not left to poll."""
        self._rung = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    more = await self._step()
                except Exception as exc:
                    log.error("webhook delivery round failed: %s", failure(exc))
                    more = False
                if not more:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that arrives as the event is set, and this loop went
                    # on after shutdown had cancelled it: a graceful stop never ended.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._idle):
                            await self._wake.wait()
        finally:
            await self._shutdown()

    async def run_once(self) -> int:
        """One round, to the end: claim what is due, send it, write the results."""
        deliveries = await self._claim(self._concurrency)
        await asyncio.gather(*self._tasks)
        await self._flush()
        return deliveries

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._plain_session is not None:
            await self._plain_session.close()
            self._plain_session = None

    async def _step(self) -> bool:
        """Write what finished and, when there is room for a good batch, claim for the
        free slots in the same transaction. True when there may be more due right now
        (every slot asked for was filled)."""
        await self._renew()
        done, self._done = self._done, []
        free = self._claim_ahead - len(self._tasks)
        if (free < self._concurrency or self._stocked()) and self._tasks:
            await self._record(done)  # enough queued here; a finishing one wakes us
            return False
        self._rung = False
        self._claimed_at = time.monotonic()
        return await self._claim(free, done) == free

    def _stocked(self) -> bool:
        """No claim needed yet: nothing new was committed (`wake`), every endpoint held
        here still has more than half of its share queued, and the last claim is recent
        (within the idle interval: retries that fell due elsewhere wait no longer). A
        burst to one endpoint is then refilled in batches of half its share, not a claim
        (a statement that walks the due deliveries) after every finished delivery."""
        if self._rung or time.monotonic() - self._claimed_at >= self._idle:
            return False
        return all(n > self._hold_per_endpoint // 2 for n in self._busy.values())

    async def _renew(self) -> None:
        now = time.monotonic()
        if not self._held or now - self._renewed_at < self._lease / 3:
            return
        self._renewed_at = now
        await self._store.renew(sorted(self._held),
                                self._clock() + timedelta(seconds=self._lease))

    async def _claim(self, limit: int, done: list[Attempt] | None = None) -> int:
        try:
            deliveries = await self._store.claim(self._clock(), limit, self._lease,
                                                 done or (), self._hold_per_endpoint,
                                                 self._busy)
        except Exception as exc:
            if done:
                self._lost(done, exc)
            raise
        if done:
            self._recorded(done)
        if deliveries and not self._held:
            self._renewed_at = time.monotonic()
        for d in deliveries:
            self._held.add(d.id)
            self._busy[d.endpoint_id] = self._busy.get(d.endpoint_id, 0) + 1
            task = asyncio.create_task(self._deliver(d))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(deliveries)

    async def _flush(self) -> int:
        done, self._done = self._done, []
        await self._record(done)
        return len(done)

    async def _record(self, done: list[Attempt]) -> None:
        if not done:
            return
        try:
            await self._store.record(done)
        except Exception as exc:
            self._lost(done, exc)
            return
        self._recorded(done)

    def _lost(self, done: list[Attempt], exc: BaseException) -> None:
        # Unrecorded attempts are sent again when their leases end (same webhook-id).
        log.error("could not record %d webhook attempts: %s", len(done), failure(exc))
        self._held.difference_update(a.delivery.id for a in done)

    def _recorded(self, done: list[Attempt]) -> None:
        for a in done:
            self._held.discard(a.delivery.id)
            if self._on_attempt is not None:
                self._on_attempt(a.result)
            log.info(
                "webhook delivery %s to %s: %s (%s) in %d ms",
                a.delivery.event_id,
                a.delivery.endpoint_id,
                a.result.outcome.value,
                a.result.status_code,
                a.result.latency_ms,
            )

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.shield(self._flush())
        except BaseException:
            log.warning("webhook results not recorded at shutdown; they are resent")
        await self.aclose()

    async def _deliver(self, delivery: PendingDelivery) -> None:
        endpoint = delivery.endpoint_id
        slot = self._slots.get(endpoint)
        if slot is None:
            slot = self._slots[endpoint] = asyncio.Semaphore(self._per_endpoint)
        try:
            async with slot, self._sending:
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
            self._done.append(Attempt(delivery, result, next_at))
        except BaseException:
            self._held.discard(delivery.id)  # no result: its lease ends, it is sent again
            raise
        finally:
            left = self._busy[endpoint] - 1
            if left:
                self._busy[endpoint] = left
            else:
                del self._busy[endpoint]
                del self._slots[endpoint]  # nobody here waits on it any more
            self._wake.set()

    def _new_session(self, targets: TargetPolicy) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=guarded_connector(targets, self._resolver, limit=self._concurrency,
                                        cafile=self._tls_cafile),
            timeout=self._timeout,
            auto_decompress=False,  # the body is discarded: no decompression bombs
            trust_env=False,  # no proxy from the environment: we connect ourselves
        )

    def _session_for_send(self, url: str = "https:") -> aiohttp.ClientSession:
        if url.lower().startswith("http:"):
            if self._plain_session is None:
                self._plain_session = self._new_session(self._targets.for_scheme("http"))
            return self._plain_session
        if self._session is None:
            self._session = self._new_session(self._targets)
        return self._session

    async def _send(self, delivery: PendingDelivery) -> AttemptResult:
        session = self._session_for_send(delivery.url)
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
                async with session.post(
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
