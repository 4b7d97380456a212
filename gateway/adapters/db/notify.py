"""Change notices across instances on PostgreSQL: a committing unit of work sends its
keys with `pg_notify` in its own transaction (delivered only if it commits); every
instance LISTENs on one connection of its own and hands them to its `ChangeHub`."""

import asyncio
import logging
from collections.abc import Callable, Iterable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

CHANNEL = "gateway_changes"
MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes per notice


def payloads(keys: Iterable[str]) -> list[str]:
    """The keys, comma-separated, in notices under the size limit."""
    out: list[str] = []
    current = ""
    for key in sorted(set(keys)):
        if current and len(current) + len(key) + 1 > MAX_PAYLOAD:
            out.append(current)
            current = ""
        current = f"{current},{key}" if current else key
    if current:
        out.append(current)
    return out


async def send(conn: AsyncConnection, keys: Iterable[str]) -> None:
    for payload in payloads(keys):
        await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


async def listen(url: str, publish: Callable[[list[str]], None],
                 retry_seconds: float = 2.0) -> None:
    """Runs until cancelled: LISTEN, hand every notice's keys to `publish`; reconnects
    after a lost connection. After a reconnect every stream looks again (a notice may
    have been missed meanwhile): `publish` gets the key "*"."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    first = True
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(dsn)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(
                CHANNEL, lambda _c, _pid, _ch, payload: publish(payload.split(",")))
            if not first:
                publish(["*"])
            first = False
            await lost.wait()
            log.warning("change notices: connection lost; reconnecting")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("change notices: %s; retrying in %.0f s", type(exc).__name__,
                        retry_seconds)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()
        await asyncio.sleep(retry_seconds)
