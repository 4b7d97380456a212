"""A process that creates invoices concurrently in the coins of one fake address space:
`python -m tests.support.alloc_worker DB_URL NODE ACCOUNT COUNT COIN...`. Prints the
addresses it got, one a line."""

import asyncio
import sys
import time

from gateway.bootstrap import build
from gateway.config import load
from gateway.domain.money import Fiat
from tests.support.fake_gateway import fake_env


async def main(db_url: str, node: str, account: str, count: int, coins: list[str],
               start_at: float) -> None:
    gw = build(load(None, fake_env(db_url, node, tuple(coins))))
    try:
        await asyncio.sleep(max(start_at - time.time(), 0))  # both processes at once

        async def one(i: int) -> str:
            view = await gw.services.invoices.create(account, Fiat(800, "EUR"),
                                                     coins[i % len(coins)])
            return str(view.record.address)

        for address in await asyncio.gather(*(one(i) for i in range(count))):
            print(address)
    finally:
        await gw.aclose()


if __name__ == "__main__":
    db, name, acc, n, start, *codes = sys.argv[1:]
    asyncio.run(main(db, name, acc, int(n), codes, float(start)))
