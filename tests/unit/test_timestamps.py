from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.timestamps import parse_time, rfc3339


def test_zoned_times_parse_and_round_trip() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    plus_two = parse_time("2026-01-01T02:00:00+02:00")
    assert plus_two.utcoffset() == timedelta(hours=2)
    assert rfc3339(plus_two) == "2026-01-01T00:00:00Z"
    assert parse_time(" 2026-01-01T00:00:00.5Z ") == datetime(2026, 1, 1, 0, 0, 0, 500000,
                                                               tzinfo=UTC)


@pytest.mark.parametrize(("text", "message"), [
    ("2026-01-01T00:00:00", "needs a time zone"),
    ("yesterday", "is not an ISO 8601 time"),
    ("", "is not an ISO 8601 time"),
])
def test_times_without_zone_or_shape_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text)
