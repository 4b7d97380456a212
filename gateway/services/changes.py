"""In-process change notices: whoever commits a change to an invoice (or advances a feed's
tip) publishes its keys; open checkout streams wait on them instead of polling the
database. Across instances (PostgreSQL) the same keys travel by NOTIFY
(`gateway.adapters.db.notify`). A notice only says "look again": a reader always reads
the database, so a lost or duplicate notice costs a heartbeat's delay at worst."""

import asyncio
from collections.abc import Callable, Iterable

# An API key was revoked: every instance's key cache (`api_keys.KeyCache`) empties.
API_KEYS = "api-keys"


def invoice_key(invoice_id: str) -> str:
    return f"invoice:{invoice_id}"


def feed_key(feed: str) -> str:
    """A feed's tip moved: every invoice in its coins may show other confirmations."""
    return f"feed:{feed}"


class Subscription:
    def __init__(self, hub: "ChangeHub", keys: tuple[str, ...]) -> None:
        self._hub = hub
        self.keys = keys
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True when a change came (and clears it), False after `seconds` without one."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True

    @property
    def hub_closed(self) -> bool:
        """The server is stopping: the stream waiting here should end."""
        return self._hub.closed

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChangeHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        # Called at once with the keys, for a key and for "*" (caches, not streams).
        self._watchers: dict[str, list[Callable[[Iterable[str]], None]]] = {}
        # Set when the server stops: every waiting stream wakes and ends (its browser
        # reconnects, to another instance or to this one restarted), rather than holding
        # the shutdown until its customer closes the page.
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.publish(["*"])

    def subscribe(self, *keys: str) -> Subscription:
        sub = Subscription(self, keys)
        for key in keys:
            self._subs.setdefault(key, set()).add(sub)
        return sub

    def watch(self, key: str, callback: Callable[[Iterable[str]], None]) -> None:
        """Call `callback` whenever `key` (or "*": a notice may have been missed) is
        published."""
        self._watchers.setdefault(key, []).append(callback)

    def publish(self, keys: Iterable[str]) -> None:
        """Wake the subscribers of these keys; the key "*" wakes every subscriber."""
        keys = list(keys)
        if self._watchers:
            self._tell_watchers(keys)
        for key in keys:
            if key == "*":
                for subs in list(self._subs.values()):
                    for sub in subs:
                        sub.notify()
                continue
            for sub in self._subs.get(key, ()):
                sub.notify()

    def _tell_watchers(self, keys: list[str]) -> None:
        every = "*" in keys
        for key, callbacks in self._watchers.items():
            if every or key in keys:
                for callback in callbacks:
                    callback(keys)

    def _remove(self, sub: Subscription) -> None:
        for key in sub.keys:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[key]

    @property
    def subscribers(self) -> int:
        return len({s for subs in self._subs.values() for s in subs})
