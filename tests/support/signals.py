"""Positive signals for "nothing more happens": instead of waiting a while for something
that should not come, wait until the gateway has decided, and look at what it decided."""

import asyncio
import json
import time
from typing import Any

from tests.support.stack import Api


async def decided_event(api: Api, key: str, event_type: str, account_id: str,
                        timeout: float = 20) -> dict[str, Any]:
    """The account's one event of this type, once the gateway has decided about each of
    its deliveries (none is pending): whatever it was going to send has been sent."""
    deadline = time.monotonic() + timeout
    while True:
        page = await api.ok("GET", f"/v1/events?type={event_type}", token=key)
        ids = [e["id"] for e in page["data"] if account_id in json.dumps(e["payload"]["data"])]
        if ids:
            [event_id] = ids
            doc = await api.ok("GET", f"/v1/events/{event_id}", token=key)
            if all(d["status"] != "pending" for d in doc.get("deliveries", [])):
                return doc
        assert time.monotonic() < deadline, \
            f"timed out waiting for the {event_type} event of {account_id} to have no " \
            "pending delivery"
        await asyncio.sleep(0.2)
