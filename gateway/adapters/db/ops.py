"""Operational numbers read from the database for /metrics."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import read_transaction
from gateway.adapters.db.tables import chain_cursors, deliveries, mail_queue, webhook_endpoints
from webhooks.store import DeliveryStatus


@dataclass(frozen=True)
class OpsSnapshot:
    pending_deliveries: int
    failing_endpoints: int
    processed_heights: dict[str, int]
    queued_mail: int = 0
    oldest_pending: datetime | None = None  # created_at of the oldest pending delivery
    # When each feed's cursor last moved (a block processed), by our clock.
    processed_at: dict[str, datetime] = field(default_factory=dict)
    failing_endpoint_ids: tuple[str, ...] = ()
    # Feeds whose follower's node is catching up: what it reported, and since when.
    catching_up: dict[str, tuple[str, datetime]] = field(default_factory=dict)


async def snapshot(engine: AsyncEngine) -> OpsSnapshot:
    d, w = deliveries, webhook_endpoints
    async with read_transaction(engine) as conn:
        pending = (await conn.execute(
            select(func.count()).select_from(d)
            .where(d.c.status == DeliveryStatus.PENDING))).scalar_one()
        oldest = (await conn.execute(
            select(func.min(d.c.created_at))
            .where(d.c.status == DeliveryStatus.PENDING))).scalar_one()
        troubled = select(d.c.endpoint_id).where(
            or_(d.c.status == DeliveryStatus.FAILED,
                (d.c.status == DeliveryStatus.PENDING) & (d.c.attempts > 0)))
        failing = tuple((await conn.execute(
            select(w.c.id).where(
                w.c.deleted_at.is_(None),
                or_(w.c.enabled.is_(False), w.c.id.in_(troubled))).order_by(w.c.id)
        )).scalars())
        cursors = (await conn.execute(select(chain_cursors))).all()
        queued = (await conn.execute(
            select(func.count()).select_from(mail_queue))).scalar_one()
    return OpsSnapshot(int(pending), len(failing), {c.feed: c.height for c in cursors},
                       int(queued), oldest, {c.feed: c.updated_at for c in cursors}, failing,
                       {c.feed: (c.catch_up, c.catch_up_since) for c in cursors
                        if c.catch_up is not None and c.catch_up_since is not None})
