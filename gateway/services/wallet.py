from collections.abc import Callable, Mapping

from gateway.domain.errors import InvalidInput
from gateway.domain.wallet import Gap, longest_unused_run
from gateway.services.ports import WalletUnit


class WalletService:
    def __init__(self, uow: Callable[[], WalletUnit], spaces: Mapping[str, str],
                 reader: Callable[[], WalletUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._spaces = dict(spaces)  # coin -> its address space
        self._coins = tuple(sorted(spaces))

    async def gap(self, coin: str) -> Gap:
        if coin not in self._coins:
            raise InvalidInput("coin", f"{coin!r} is not configured; configured: "
                               f"{', '.join(self._coins) or 'none'}")
        async with self._reader() as uow:
            derived, used = await uow.invoices.address_usage(self._spaces[coin])
        return longest_unused_run(derived, used)
