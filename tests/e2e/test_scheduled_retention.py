"""Issue 16, item 5: retention runs by itself in a running server. The gateway serves
with a one-second retention interval; rows past their period disappear with no command
run, while rows within their period stay."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import StackFactory


async def test_the_scheduled_task_removes_rows_past_their_period_without_a_command(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(GATEWAY_RETENTION__INTERVAL_SECONDS="1",
                             register_endpoint=False)
    now = datetime.now(UTC)

    def at(delta: timedelta) -> Any:
        value = now - delta
        return value.replace(tzinfo=None) if stack.db_url.startswith("sqlite") else value

    for event, age in (("old", timedelta(days=31)), ("recent", timedelta(days=1))):
        await stack.rows("INSERT INTO security_log (account_id, event, ip, at) "
                         "VALUES (NULL, :event, NULL, :at)", event=event, at=at(age))
    for key, age in (("old", timedelta(hours=25)), ("recent", timedelta(hours=1))):
        await stack.rows("INSERT INTO login_throttle (key, failures, window_started_at) "
                         "VALUES (:key, 3, :at)", key=key, at=at(age))

    async def left() -> tuple[set[str], set[str]]:
        events = {r[0] for r in await stack.rows("SELECT event FROM security_log")}
        keys = {r[0] for r in await stack.rows("SELECT key FROM login_throttle")}
        return events, keys

    seen: list[tuple[set[str], set[str]]] = []

    async def check() -> bool:
        seen.append(await left())
        return "old" not in seen[-1][0] and "old" not in seen[-1][1]

    deadline = asyncio.get_running_loop().time() + 20
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"still there: {seen[-1]}"
        await asyncio.sleep(0.2)
    assert "recent" in seen[-1][0] and "recent" in seen[-1][1]
    # The run reports its counts once all its stages are done, which may be a moment after
    # the purge's own commit (the erased-data flush comes later on PostgreSQL).
    while "retention removed" not in stack.gateway.log():
        assert asyncio.get_running_loop().time() < deadline, "the run never reported"
        await asyncio.sleep(0.2)
