"""Column types that keep money exact and time in UTC on both SQLite and PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class BaseUnits(TypeDecorator[int]):
    """Non-negative integer up to 2**256-1 (wei does not fit in 64 bits).

    NUMERIC(78,0) on PostgreSQL; on SQLite a zero-padded 78-digit TEXT, so the value is
    lossless and text comparison orders like the number."""

    impl = String(78)
    cache_ok = True
    WIDTH = 78

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(self.WIDTH))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, int) or value < 0 or value >= 10**self.WIDTH:
            raise ValueError("base units must be a non-negative integer below 10**78")
        if dialect.name == "postgresql":
            return Decimal(value)
        return str(value).rjust(self.WIDTH, "0")

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; refuses naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
