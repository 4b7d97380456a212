"""Everything a database holds, as bytes to search: what a stolen disk (SQLite: the file and
its write-ahead log) or a dump (PostgreSQL: every row of every table as text, byte
columns in hex) would show. Tests of "never stored" search this for the value itself."""

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def sqlite_bytes(url: str) -> bytes:
    """The SQLite file, its write-ahead log and any rollback journal, as bytes."""
    path = url.split("///", 1)[1]
    raw = b""
    for suffix in ("", "-wal", "-journal"):
        try:
            with open(path + suffix, "rb") as f:
                raw += f.read()
        except FileNotFoundError:
            pass
    return raw


async def database_bytes(url: str) -> bytes:
    if url.startswith("sqlite"):
        return sqlite_bytes(url)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            out = []
            for table in tables:
                # A row as text holds every column; bytea columns show as \x + hex.
                result = await conn.execute(text(f'SELECT t::text FROM "{table}" t'))
                out.extend(row[0] for row in result)
        return "\n".join(out).encode()
    finally:
        await engine.dispose()


def holds(raw: bytes, value: str) -> bool:
    """`value` in the bytes, as UTF-8 or as the hex a PostgreSQL bytea shows."""
    plain = value.encode()
    return plain in raw or plain.hex().encode() in raw.lower()
