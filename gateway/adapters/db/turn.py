"""A turn to write with two queues: the watcher's and the webhook deliveries' writers go
before the requests' (SQLite has one writer at a time, `engine.write_turn`).

Under a flood of invoice creation, dozens of request handlers wait for the turn; a plain
FIFO lock puts the block that settles an invoice, and each step of delivering
`invoice.settled`, behind all of them, every time. Urgent writers are few and short, so
serving them first costs the requests little and keeps settlement prompt whatever the
load. Within each queue the order is first come, first served."""

import asyncio
from collections import deque


class WriteTurn:
    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._held

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the turn as it was cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        """To the first urgent waiter, else the first other one; else the turn is free."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # still held: handed over
                    return
        self._held = False
