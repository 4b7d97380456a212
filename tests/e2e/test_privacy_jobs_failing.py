"""Issue 28, items 1 and 2, in a running server: when every erasure fails (the deletion
ledger's place cannot be written), it is not one log line. The metric the alert rule
reads counts it, `gateway doctor` names the ledger and the overdue erasures, and the
staff console's admin page shows the same, while the backup job keeps backing up and
pruning."""

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from tests.e2e.conftest import StackFactory
from tests.e2e.test_staff_console import add_staff_members, console, staff_stack
from tests.support.stack import run_cli

STAFF_PASSWORD = "staff password 123"


async def test_failing_erasures_show_in_the_metric_doctor_and_admin_page(
    make_stack: StackFactory, tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the ledger's folder should be")
    backups = tmp_path / "backups"
    backups.mkdir()
    ancient = backups / "gateway-20200101T000000Z.sqlite.enc"
    ancient.write_bytes(b"old")
    stack = await staff_stack(make_stack, register_endpoint=False,
                              GATEWAY_RETENTION__INTERVAL_SECONDS="1",
                              GATEWAY_BACKUP__DIR=str(backups),
                              GATEWAY_BACKUP__DELETION_LEDGER=str(blocker / "ledger.txt"))
    gone = [await stack.signup(f"gone{i}@example.org") for i in range(2)]
    stays = await stack.signup("stays@example.org")
    # Deletion requested, grace over a day ago: overdue for the first run to erase.
    due = datetime.now(UTC) - timedelta(days=1)
    await stack.rows("UPDATE accounts SET deletion_due_at = :at WHERE id IN (:a, :b)",
                     at=due.replace(tzinfo=None) if stack.db_url.startswith("sqlite")
                     else due, a=gone[0]["id"], b=gone[1]["id"])

    def metric(text: str, name: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    deadline = time.monotonic() + 30
    while True:  # two failing runs at least: the job goes on failing, and says so
        async with stack.api.http.get(f"{stack.gateway.ops_url}/metrics") as resp:
            metrics = (await resp.read()).decode()
        if metric(metrics, "gateway_retention_erasure_failures_total") >= 6:
            break
        assert time.monotonic() < deadline, metrics
        await asyncio.sleep(0.2)
    # Both erasures and the re-application of the unreadable ledger, every run.
    assert metric(metrics, "gateway_retention_erasures_failing") == 3
    assert metric(metrics, "gateway_backup_last_success_timestamp_seconds") > 0
    assert not ancient.exists()  # the backup job is untouched by it
    deleted = {r[0]: r[1] for r in await stack.rows("SELECT id, deleted_at FROM accounts")}
    assert deleted[gone[0]["id"]] is None and deleted[stays["id"]] is None
    assert f"erasing {gone[0]['id']} failed (FileExistsError" in stack.gateway.log()

    by_hand = await asyncio.to_thread(run_cli, stack.gateway.env, "retention", "run")
    assert by_hand.returncode == 1 and "account_deletions: removed 0" in by_hand.stdout
    assert by_hand.stderr.strip().endswith(
        "3 erasure(s) failed and are still due (the log says why); the next run retries "
        "them"), by_hand.stderr

    doctor = await asyncio.to_thread(run_cli, stack.gateway.env, "doctor")
    assert doctor.returncode == 1
    problems = [x for x in doctor.stdout.splitlines() if x.startswith("PROBLEM")]
    assert any("deletion ledger:" in x and "is not a directory" in x for x in problems), \
        doctor.stdout
    assert any("account erasures: 2 overdue" in x for x in problems), doctor.stdout
    assert not any("backups in" in x for x in problems), doctor.stdout

    page = await admin_page(stack)
    table = page[page.index('id="promises"'):]
    table = table[:table.index("</table>")]
    assert re.search(r"account erasures</td><td>PROBLEM</td><td>2 overdue", table), table
    assert re.search(r"deletion ledger</td><td>PROBLEM</td>", table), table


async def admin_page(stack: Any) -> str:
    """An admin's first login over HTTP (password, then TOTP enrolment), then /admin."""
    await add_staff_members(stack, ("ada", "admin"))
    base = console(stack)
    jar: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        async def get(path: str) -> str:
            headers = {"Cookie": f"__Secure-staff={jar['v']}"} if jar else {}
            async with http.get(base + path, headers=headers) as resp:
                assert resp.status == 200, path
                return await resp.text()

        async def post(path: str, page: str, **fields: str) -> str:
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            headers = {"Cookie": f"__Secure-staff={jar['v']}"} if jar else {}
            async with http.post(base + path, data={"csrf": token.group(1), **fields},
                                 headers=headers, allow_redirects=False) as resp:
                cookie = resp.cookies.get("__Secure-staff")
                if cookie is not None:
                    jar["v"] = cookie.value
                assert resp.status in (200, 303), (path, resp.status)
                return await resp.text()

        await post("/login", await get("/login"), name="ada", password=STAFF_PASSWORD)
        shown = await post("/enrol", await get("/enrol"))
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', shown)
        assert secret is not None
        await post("/enrol/confirm", await get("/enrol"),
                   code=pyotp.TOTP(secret.group(1)).now())
        return await get("/admin")
