"""What the delivery worker needs from storage; the gateway implements it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from webhooks.retry import Outcome


@dataclass(frozen=True)
class PendingDelivery:
    id: str
    event_id: str  # the webhook-id: identical on every attempt
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempts: int  # attempts made before this one


@dataclass(frozen=True)
class AttemptResult:
    at: datetime
    outcome: Outcome
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after_seconds: float | None = None


class DeliveryStore(Protocol):
    async def claim(self, now: datetime, limit: int, lease_seconds: float) -> list[PendingDelivery]:
        """Deliveries due now, leased to this worker so no other worker sends them."""
        ...

    async def record(
        self, delivery: PendingDelivery, result: AttemptResult, next_attempt_at: datetime | None
    ) -> None:
        """Log the attempt; schedule the next one, or mark succeeded/failed/disabled."""
        ...
