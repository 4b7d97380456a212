from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; refuses naive datetimes so a local time never leaks in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
