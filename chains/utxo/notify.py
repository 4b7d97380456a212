"""Optional ZMQ notifications from Bitcoin Core / Litecoin Core (`-zmqpubhashblock`,
`-zmqpubrawtx`): they only wake the follower early. A `hashblock` always wakes it; a
`rawtx` wakes it when the transaction pays a watched script (the mempool pass then
reports it). Nothing is read from a notification that the follower does not then ask the
node itself, so a lost, late or forged message costs at most a poll interval."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from chains.base import Watched
from chains.utxo.rawblock import scan_transaction

log = logging.getLogger(__name__)

TOPICS = (b"hashblock", b"rawtx")


class Wakeup:
    """Subscribes to `urls` (each a node's `tcp://host:port`) on first use."""

    def __init__(self, urls: Sequence[str], watched: Watched) -> None:
        self._urls = tuple(dict.fromkeys(urls))
        self._watched = watched
        self._event = asyncio.Event()
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
                self._event.set()
            elif topic == b"rawtx":
                try:
                    if scan_transaction(body, "", self._watched):
                        self._event.set()
                except ValueError:
                    continue

    async def wait(self, seconds: float) -> None:
        """Until a notification worth a look arrives, or `seconds` pass."""
        if self._task is None:
            self._start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()

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
