"""Caps on open event streams (`/pay/{id}/events`, `/v1/invoices/{id}/events`). Each one
holds a connection (and reads the invoice at every change) for up to 30 minutes; without
a cap anyone could open thousands. In memory, per instance; a client is an IPv4 address
or an IPv6 /64. Capped per account too (whose invoices they watch): one account's many
invoices, watched from many addresses, cannot take the server's whole allowance."""

from collections.abc import Callable

from gateway.http.client_ip import limit_key
from gateway.i18n import N_
from gateway.services.errors import ServiceUnavailable, TooManyRequests

RETRY_SECONDS = 15


class StreamSlots:
    def __init__(self, per_client: int, total: int, per_account: int | None = None) -> None:
        self._per_client = per_client
        self._per_account = per_account if per_account is not None else total
        self._total = total
        self._open: dict[str, int] = {}
        self._count = 0

    @property
    def open(self) -> int:
        return self._count

    def take(self, client_ip: str, account_id: str | None = None) -> Callable[[], None]:
        """A slot for this client watching an invoice of `account_id`, or TooManyRequests
        (this client, or that account's invoices, have too many open) or
        ServiceUnavailable (the server has too many open). Returns the release."""
        key = limit_key(client_ip)
        if self._open.get(key, 0) >= self._per_client:
            raise TooManyRequests(
                f"too many open event streams from your address (at most {self._per_client}); "
                "close one, or reload the page later", RETRY_SECONDS)
        account = f"account:{account_id}" if account_id else None
        if account is not None and self._open.get(account, 0) >= self._per_account:
            raise TooManyRequests(
                "too many open event streams for this account's invoices (at most "
                f"{self._per_account}); close one, or reload the page later", RETRY_SECONDS)
        if self._count >= self._total:
            raise ServiceUnavailable(N_("too many open event streams on this server; the page "
                                        "works without one, or retry later"), RETRY_SECONDS)
        keys = [key] if account is None else [key, account]
        for k in keys:
            self._open[k] = self._open.get(k, 0) + 1
        self._count += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._count -= 1
            for k in keys:
                left = self._open[k] - 1
                if left:
                    self._open[k] = left
                else:
                    del self._open[k]

        return release
