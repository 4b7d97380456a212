"""Caps on open event streams (`/pay/{id}/events`, `/v1/invoices/{id}/events`). Each one
holds a connection (and reads the invoice at every change) for up to 30 minutes; without
a cap anyone could open thousands. In memory, per instance; a client is an IPv4 address
or an IPv6 /64."""

from collections.abc import Callable

from gateway.http.client_ip import limit_key
from gateway.services.errors import ServiceUnavailable, TooManyRequests

RETRY_SECONDS = 15


class StreamSlots:
    def __init__(self, per_client: int, total: int) -> None:
        self._per_client = per_client
        self._total = total
        self._open: dict[str, int] = {}
        self._count = 0

    @property
    def open(self) -> int:
        return self._count

    def take(self, client_ip: str) -> Callable[[], None]:
        """A slot for this client, or TooManyRequests (this client has too many open) or
        ServiceUnavailable (the server has too many open). Returns the release."""
        key = limit_key(client_ip)
        if self._open.get(key, 0) >= self._per_client:
            raise TooManyRequests(
                f"too many open event streams from your address (at most {self._per_client}); "
                "close one, or reload the page later", RETRY_SECONDS)
        if self._count >= self._total:
            raise ServiceUnavailable("too many open event streams on this server; the page "
                                     "works without one, or retry later", RETRY_SECONDS)
        self._open[key] = self._open.get(key, 0) + 1
        self._count += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._count -= 1
            left = self._open[key] - 1
            if left:
                self._open[key] = left
            else:
                del self._open[key]

        return release
