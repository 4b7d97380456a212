"""Operational numbers read from the database for /metrics."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import read_transaction
from gateway.adapters.db.tables import chain_cursors, deliveries, mail_queue, webhook_endpoints


@dataclass(frozen=True)
class OpsSnapshot:
    pending_deliveries: int
    failing_endpoints: int
    processed_heights: dict[str, int]
    queued_mail: int = 0
    oldest_pending: datetime | None = None  # created_at of the oldest pending delivery


async def snapshot(engine: AsyncEngine) -> OpsSnapshot:
    d, w = deliveries, webhook_endpoints
    async with read_transaction(engine) as conn:
        pending = (await conn.execute(
            select(func.count()).select_from(d).where(d.c.status == "pending"))).scalar_one()
        oldest = (await conn.execute(
            select(func.min(d.c.created_at)).where(d.c.status == "pending"))).scalar_one()
        troubled = select(d.c.endpoint_id).where(
            or_(d.c.status == "failed", (d.c.status == "pending") & (d.c.attempts > 0)))
        failing = (await conn.execute(
            select(func.count()).select_from(w).where(
                w.c.deleted_at.is_(None),
                or_(w.c.enabled.is_(False), w.c.id.in_(troubled))))).scalar_one()
        heights = {row.feed: row.height
                   for row in await conn.execute(select(chain_cursors))}
        queued = (await conn.execute(
            select(func.count()).select_from(mail_queue))).scalar_one()
    return OpsSnapshot(int(pending), int(failing), heights, int(queued), oldest)
