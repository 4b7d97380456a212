"""What the delivery worker needs from storage; the gateway implements it."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from webhooks.retry import Outcome


class DeliveryStatus(StrEnum):
    """Where one delivery (an event to one endpoint) stands; the string the store keeps."""

    PENDING = "pending"  # due, waiting for a retry, or in flight
    SUCCEEDED = "succeeded"  # a 2xx answer
    FAILED = "failed"  # retries exhausted (or its secret unreadable); may be redelivered
    DISABLED = "disabled"  # its endpoint was disabled (410 Gone) or deleted

    @classmethod
    def after(cls, outcome: Outcome, next_attempt_at: datetime | None) -> "DeliveryStatus":
        """The status an attempt leaves the delivery in."""
        if outcome is Outcome.SUCCEEDED:
            return cls.SUCCEEDED
        if outcome is Outcome.DISABLE:
            return cls.DISABLED
        return cls.PENDING if next_attempt_at is not None else cls.FAILED


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


@dataclass(frozen=True)
class Attempt:
    """One finished attempt and what follows it: the next try, or None (done, or given up)."""

    delivery: PendingDelivery
    result: AttemptResult
    next_attempt_at: datetime | None


class DeliveryStore(Protocol):
    async def claim(
        self, now: datetime, limit: int, lease_seconds: float,
        finished: Sequence[Attempt] = (), per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[PendingDelivery]:
        """Deliveries due now, leased to this worker so no other worker sends them, at
        most one per (endpoint, ordering key): a delivery is due only when no earlier
        delivery of the same key to the same endpoint is still pending (in flight or
        waiting for a retry). The store decides the keys (the gateway: an event's
        subject) and which due deliveries go first. With `per_endpoint`, no endpoint
        gets more than that many counting `in_flight` (endpoint id -> deliveries this
        worker already holds). `finished` is recorded first, in the same transaction (as
        `record` would), so the next events of those keys can be claimed at once."""
        ...

    async def record(self, attempts: Sequence[Attempt]) -> None:
        """Log the attempts, in one transaction; schedule each next try, or mark the
        delivery succeeded/failed/disabled (a 410 disables its endpoint)."""
        ...

    async def renew(self, ids: Sequence[str], until: datetime) -> None:
        """Extend the leases of deliveries this worker still holds (queued or in flight)."""
        ...
