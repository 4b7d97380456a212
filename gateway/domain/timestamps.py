from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; refuses naive datetimes so a local time never leaks in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 time that names its zone (`Z` or an offset). A time without
    one is refused: it would silently mean the server's local time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not an ISO 8601 time such as 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-01-01T00:00:00Z")
    return moment
