"""What an area opens and must close: one cleanup context each in the aiohttp app
(`gateway.bootstrap.app`), or closed in reverse order by `Gateway.aclose` where no app
runs (the CLI). Closed once, whichever comes first."""

from collections.abc import Awaitable, Callable


class Resource:
    def __init__(self, name: str, close: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._close = close
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._close()
