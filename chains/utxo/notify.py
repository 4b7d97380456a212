"""Optional ZMQ notifications from Bitcoin Core / Litecoin Core (`-zmqpubhashblock`,
`-zmqpubrawtx`): they only wake the follower early. A `hashblock` always wakes it; the
serialized transactions of `rawtx` are handed to the follower, which brings its watched
set up to date (a `MatchPoint`: the invoice may be a second old) and wakes when one pays a
watched script (the mempool pass then reports it). Nothing is read from a notification
that the follower does not then ask the node itself, so a lost, late or forged message
costs at most a poll interval."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

TOPICS = (b"hashblock", b"rawtx")
MAX_HELD = 10_000  # transactions held between two waits; more: treated as a block
GATHER_SECONDS = 0.05  # a transaction waits this long for others, matched together


class Wakeup:
    """Subscribes to `urls` (each a node's `tcp://host:port`) on first use."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls = tuple(dict.fromkeys(urls))
        self._event = asyncio.Event()
        self._block = False
        self._txs: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._socket: Any = None
        self._context: Any = None

    def _start(self) -> None:
        import zmq
        import zmq.asyncio

        self._context = zmq.asyncio.Context()
        sock = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.LINGER, 0)
        for topic in TOPICS:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        for url in self._urls:
            sock.connect(url)  # ZMQ reconnects by itself when the node restarts
        self._socket = sock
        self._task = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        while True:
            try:
                parts = await self._socket.recv_multipart()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a closed socket, a broken message
                log.warning("zmq notifications stopped (%s); polling only",
                            type(exc).__name__)
                return
            if len(parts) < 2:
                continue
            topic, body = parts[0], parts[1]
            if topic == b"hashblock":
                self._block = True
            elif topic == b"rawtx":
                if len(self._txs) < MAX_HELD:
                    self._txs.append(bytes(body))
                else:
                    self._block = True  # too many to look at: do a whole pass
            else:
                continue
            self._event.set()

    async def wait(self, seconds: float) -> tuple[bool, list[bytes]]:
        """Until a notification arrives, or `seconds` pass: whether a block was announced
        (or too much came to sort), and the serialized transactions announced."""
        if self._task is None:
            self._start()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives as the event is set (the watcher would not stop).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        if self._txs and not self._block:
            await asyncio.sleep(GATHER_SECONDS)
        block, txs = self._block, self._txs
        self._block, self._txs = False, []
        self._event.clear()
        return block, txs

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None
