"""Operations: readiness (the database and each chain's lag), the schema check, and the
Prometheus metrics, each an object of its own."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chains.base import Restorable, describe_failure
from gateway.adapters.chain_directory import ChainDirectory
from gateway.adapters.db.engine import current_revision, head_revision, read_transaction
from gateway.adapters.db.ops import OpsSnapshot, snapshot
from gateway.adapters.metrics import CONTENT_TYPE, Metrics
from gateway.bootstrap.core import Clock
from gateway.domain.timestamps import rfc3339

log = logging.getLogger("gateway.bootstrap")


class SchemaNotReady(Exception):
    pass


def _catching_up(coins: tuple[str, ...], catching: tuple[str, datetime],
                 processed: int | None) -> dict[str, dict[str, Any]]:
    return {coin: {"status": f"catching up: {catching[0]}",
                   "catching_up_since": rfc3339(catching[1]),
                   "processed_height": processed} for coin in coins}


class Readiness:
    """Per coin the node's tip, the height processed and the lag; the database's
    answer. The one place readiness, metrics and the console read chain lag from."""

    def __init__(self, *, engine: AsyncEngine, database_url: str,
                 chains: ChainDirectory) -> None:
        self._engine = engine
        self._url = database_url
        self._chains = chains

    async def chain_status(self, tip_timeout: float, snap: OpsSnapshot | None = None
                           ) -> dict[str, dict[str, Any]]:
        """Per coin: the node's tip, the height processed (the stored cursor of its feed,
        whichever instance follows it) and the lag. `snap`: one just read (metrics), not
        read again."""
        moved: dict[str, datetime] = {}
        recorded: dict[str, tuple[str, datetime]] = {}
        try:
            snap = snap or await snapshot(self._engine)
            heights, moved = snap.processed_heights, snap.processed_at
            recorded = snap.catching_up
        except Exception as exc:  # the database is down: readiness says so on its own
            log.debug("processed heights unavailable (%s)", type(exc).__name__)
            heights = {}
        status: dict[str, dict[str, Any]] = {}
        for follower in self._chains.followers():
            processed = heights.get(follower.feed)
            # A node catching up (here, or as the instance that follows it recorded) is
            # not ready, and is busy: say what it does rather than wait for its tip.
            here = follower.catching_up if isinstance(follower, Restorable) else None
            catching = ((here.describe(), here.since) if here is not None
                        else recorded.get(follower.feed))
            if catching is not None:
                status.update(_catching_up(follower.coins, catching, processed))
                continue
            try:
                tip = await asyncio.wait_for(follower.tip(), tip_timeout)
            except Exception as exc:
                for coin in follower.coins:
                    status[coin] = {"status": describe_failure(exc),
                                    "processed_height": processed}
                continue
            at = moved.get(follower.feed)
            for coin in follower.coins:
                status[coin] = {
                    "status": "ok",
                    "tip_height": tip.height,
                    "processed_height": processed,
                    "lag_blocks": None if processed is None else max(tip.height - processed, 0),
                    # When the last block was processed (by our clock), for the console.
                    "processed_at": rfc3339(at) if at is not None else None,
                }
        return dict(sorted(status.items()))

    async def recorded_catch_ups(self) -> dict[str, tuple[str, datetime]]:
        """Feeds whose node is catching up, as the instance following each recorded it:
        what it reported, and since when."""
        return (await snapshot(self._engine)).catching_up

    async def check_schema(self) -> None:
        head = head_revision(self._url)
        current = await current_revision(self._engine)
        if current != head:
            raise SchemaNotReady(
                f"database schema is at {current or 'nothing'}, this version needs {head}: "
                "run `gateway db upgrade`"
            )

    async def outbox(self) -> tuple[int, tuple[str, ...]]:
        """Pending deliveries, and the endpoints failing (for the console)."""
        snap = await snapshot(self._engine)
        return snap.pending_deliveries, snap.failing_endpoint_ids

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {"database": "ok", "chains": {}}
        ready = True
        try:
            # A read (no lock on SQLite): a probe polled every few seconds must never
            # take the write lock, nor wait for it.
            async with read_transaction(self._engine) as conn:
                await conn.execute(text("SELECT 1 FROM alembic_version"))
        except Exception as exc:
            detail["database"] = f"unavailable ({type(exc).__name__})"
            ready = False
        for coin, state in (await self.chain_status(5)).items():
            if state["status"] != "ok":
                detail["chains"][coin] = {k: v for k, v in state.items()
                                          if k in ("status", "catching_up_since")}
                ready = False
            else:
                detail["chains"][coin] = state
        return ready, detail


class Monitoring:
    """The metrics registry, with the gauges read at scrape time."""

    def __init__(self, *, metrics: Metrics, engine: AsyncEngine, clock: Clock,
                 readiness: Readiness) -> None:
        self.metrics = metrics
        self._engine = engine
        self._clock = clock
        self._readiness = readiness

    async def render(self) -> tuple[bytes, str]:
        """Refresh the gauges that are read at scrape time, then render."""
        m = self.metrics
        snap = await snapshot(self._engine)
        m.outbox_depth.set(snap.pending_deliveries)
        m.failing_endpoints.set(snap.failing_endpoints)
        m.mail_queue_depth.set(snap.queued_mail)
        oldest = snap.oldest_pending
        m.outbox_oldest.set(
            0 if oldest is None else max((self._clock() - oldest).total_seconds(), 0))
        for coin, state in (await self._readiness.chain_status(2, snap)).items():
            m.node_up.labels(coin).set(1 if state["status"] == "ok" else 0)
            if state["processed_height"] is None:
                continue
            m.watcher_height.labels(coin).set(state["processed_height"])
            if state["status"] != "ok":  # node down: the lag gauge keeps its last value
                log.debug("%s tip unavailable for metrics (%s)", coin, state["status"])
                continue
            m.watcher_lag.labels(coin).set(state["lag_blocks"])
        return m.render(), CONTENT_TYPE

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.metrics.http_latency.labels(method, route, str(status)).observe(seconds)


@dataclass(frozen=True, kw_only=True)
class OpsArea:
    readiness: Readiness
    monitoring: Monitoring
