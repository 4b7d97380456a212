"""Moving a stored moment into the past, so a test sees what the gateway does once that
much time has passed without waiting for it (the gateway compares stored times with its
own clock on every read)."""

from datetime import UTC, datetime

# SQLAlchemy's own text form of a DateTime on SQLite (UTC, naive, microseconds always).
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def db_time(db_url: str, when: datetime) -> datetime | str:
    """`when` as a parameter of raw SQL on this store: SQLite keeps UTC times as naive
    text, PostgreSQL as timestamptz."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    if db_url.startswith("sqlite"):
        return when.astimezone(UTC).strftime(SQLITE_FORMAT)
    return when
