"""argon2id password hashing (OWASP minimum: m=19456 KiB, t=2, p=1), off the event loop.

Each hash costs about 19 MiB and a few tens of milliseconds of one core. It runs in a
small thread pool (argon2 releases the GIL), so the event loop that also serves checkout
pages, follows the chains and delivers webhooks is never blocked by it. At most
`concurrency` hashes run at once; a bounded number of callers may wait for a slot, and
only for so long: beyond that the answer is 503 with Retry-After, never an unbounded
queue of 19 MiB jobs."""

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.services.errors import ServiceUnavailable

T = TypeVar("T")
NICENESS = 10


def default_concurrency() -> int:
    """Half the CPU cores, at least one: the other half serves everything else."""
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class HashCost:
    """argon2id's cost: OWASP's minimum by default. Production never lowers it (it is no
    setting); the suite's in-process gateways take a cheaper one where no test measures
    the hashing itself."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


class Argon2Passwords:
    def __init__(self, *, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1,
                 concurrency: int = 2, max_waiting: int = 64,
                 max_wait_seconds: float = 5.0) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Verified against when the account does not exist, so an unknown email costs the
        # same time as a wrong password. Made on first need, in a hashing thread: a
        # process that never checks a password (a CLI command) never pays for it.
        self._dummy: str | None = None
        self._dummy_made = threading.Lock()
        self._concurrency = concurrency
        self._max_waiting = max_waiting
        self._max_wait = max_wait_seconds
        # Threads start on first use, never at construction.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="argon2", initializer=_lower_priority)
        self._running = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        return await self._run(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _dummy_hash(self) -> str:
        with self._dummy_made:
            if self._dummy is None:
                self._dummy = self._hasher.hash("not-a-real-password-but-same-cost")
            return self._dummy

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return (self._hasher.verify(stored or self._dummy_hash(), password)
                    and stored is not None)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _run(self, fn: Callable[..., T], *args: str | None) -> T:
        await self._acquire()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, *args)
        # The slot is freed when the thread is done, not when the caller stops waiting: a
        # cancelled request must not let more hashes run than the cap.
        future.add_done_callback(lambda _: self._release())
        return await asyncio.shield(future)

    async def _acquire(self) -> None:
        if self._running < self._concurrency and not self._waiters:
            self._running += 1
            return
        if len(self._waiters) >= self._max_waiting:
            raise _busy()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._max_wait)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # granted just as the wait ended: the slot is ours
            waiter.cancel()
            raise _busy() from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted, but the caller is gone: pass the slot on
            else:
                waiter.cancel()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self) -> None:
        # Hand the slot straight to the longest waiter still waiting, or give it back.
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._running -= 1


def _lower_priority() -> None:
    """Hashing threads run niced: when the CPU is short, the event loop and the database
    come first, and logins wait (or get 503) rather than everything else."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as is
        pass


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable("the server is busy checking passwords; retry in a moment",
                              retry_after_seconds=2)
