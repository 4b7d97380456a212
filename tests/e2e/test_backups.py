"""Encrypted backups of the running gateway's database: restore gives identical rows, the
file shows nothing in plaintext, and nothing older than 30 days is kept."""

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gateway.adapters.db.tables import metadata
from tests.e2e.conftest import DEFAULT_DB, StackFactory
from tests.support.databases import fresh_database
from tests.support.stack import run_cli


async def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url, poolclass=NullPool)
    found: dict[str, list[tuple[Any, ...]]] = {}
    try:
        async with engine.connect() as conn:
            for table in [*metadata.sorted_tables, "alembic_version"]:
                name = getattr(table, "name", table)
                rows = await conn.execute(text(f"SELECT * FROM {name}"))
                found[str(name)] = sorted((tuple(r) for r in rows), key=repr)
    finally:
        await engine.dispose()
    return found


async def test_backup_restores_identical_rows_and_hides_everything(
    make_stack: StackFactory, tmp_path: Path,
) -> None:
    stack = await make_stack()
    email = "backed-up@example.org"
    account = await stack.signup(email, "backup pw 1234", display_name="Backup Person")
    invoice = await stack.invoice(account["id"], "3.00")
    stack.node.send(invoice["address"], invoice["amount_due"])
    stack.node.mine(3)
    await stack.wait_status(invoice["id"], "settled")
    await stack.receiver.wait_for("account.activated")
    await stack.receiver.wait_for("invoice.settled")

    out = tmp_path / "backups"
    made = run_cli(stack.gateway.env, "backup", "create", "--out", str(out))  # while serving
    assert made.returncode == 0, made.stderr
    [backup] = [p for p in out.iterdir()]
    assert backup.name.startswith("gateway-") and backup.name.endswith(".enc")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    raw = backup.read_bytes()
    for plain in (email.encode(), b"Backup Person", b"SQLite format 3", b"PGDMP",
                  invoice["id"].encode(), b"127.0.0.1"):
        assert plain not in raw
    await stack.gateway.stop()
    source = await every_row(stack.db_url)
    assert source["payments"] and source["events"] and source["security_log"]

    with fresh_database(DEFAULT_DB, tmp_path, migrate=False) as empty_url:
        env = {**stack.gateway.env, "GATEWAY_DATABASE__URL": empty_url}
        restored = run_cli(env, "backup", "restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        assert await every_row(empty_url) == source

        again = run_cli(env, "backup", "restore", str(backup))
        assert again.returncode == 1 and "already holds" in again.stderr
        assert await every_row(empty_url) == source  # the refusal changed nothing

    with fresh_database(DEFAULT_DB, tmp_path, migrate=False) as other_url:
        wrong_key = {**stack.gateway.env, "GATEWAY_DATABASE__URL": other_url,
                     "GATEWAY_BACKUP__KEY": "A" * 43 + "="}
        refused = run_cli(wrong_key, "backup", "restore", str(backup))
        assert refused.returncode == 1 and "wrong [backup] key" in refused.stderr


def test_prune_leaves_nothing_older_than_30_days(tmp_path: Path) -> None:
    from tests.support.keys import security_env

    folder = tmp_path / "b"
    folder.mkdir()
    now = datetime.now(UTC)
    ages = {"old": 31, "edge": 30.01, "recent": 29.9, "new": 0}
    for label, days in ages.items():
        taken = now - timedelta(days=days)
        (folder / f"gateway-{taken:%Y%m%dT%H%M%SZ}.sqlite.enc").write_bytes(label.encode())
    (folder / "README.txt").write_text("not a backup")
    stale_partial = folder / "gateway-20200101T000000Z.sqlite.enc.partial"
    stale_partial.write_bytes(b"x")
    os.utime(stale_partial, (0, 0))
    crashed = folder / ".gateway-backup-abc123"  # a killed run's plaintext copy
    crashed.mkdir()
    (crashed / "copy.sqlite").write_bytes(b"plain")
    os.utime(crashed, (0, 0))
    env = {"GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}",
           **security_env()}
    refused = run_cli(env, "backup", "prune", "--days", "0", "--dir", str(folder))
    assert refused.returncode == 2 and "at least 1" in refused.stderr
    pruned = run_cli(env, "backup", "prune", "--days", "30", "--dir", str(folder))
    assert pruned.returncode == 0, pruned.stderr
    left = sorted(p.read_bytes() for p in folder.iterdir() if p.suffix == ".enc")
    assert left == [b"new", b"recent"]
    assert (folder / "README.txt").exists() and not stale_partial.exists()
    assert not crashed.exists()
    assert "4 removed" in pruned.stdout


async def test_the_server_backs_up_on_schedule_and_prunes(
    make_stack: StackFactory, tmp_path: Path,
) -> None:
    folder = tmp_path / "scheduled"
    folder.mkdir()
    ancient = folder / "gateway-20200101T000000Z.sqlite.enc"
    ancient.write_bytes(b"old")
    stack = await make_stack(GATEWAY_BACKUP__DIR=str(folder),
                             GATEWAY_BACKUP__INTERVAL_HOURS="0.0005")  # every 1.8 s
    deadline = asyncio.get_running_loop().time() + 20
    def fresh() -> list[Path]:
        return [p for p in folder.glob("gateway-*.enc") if p != ancient]

    while len(fresh()) < 2:
        assert asyncio.get_running_loop().time() < deadline, list(folder.iterdir())
        await asyncio.sleep(0.2)
    assert not ancient.exists()
    async with stack.api.http.get(f"{stack.gateway.ops_url}/metrics") as resp:
        status, metrics = resp.status, await resp.read()
    line = next(x for x in metrics.decode().splitlines()
                if x.startswith("gateway_backup_last_success_timestamp_seconds "))
    assert status == 200 and float(line.split()[1]) > 0
    with fresh_database(DEFAULT_DB, tmp_path, migrate=False) as empty_url:
        env = {**stack.gateway.env, "GATEWAY_DATABASE__URL": empty_url}
        newest = max(fresh())
        restored = run_cli(env, "backup", "restore", str(newest))
        assert restored.returncode == 0, restored.stderr
        assert (await every_row(empty_url))["api_keys"] == \
            (await every_row(stack.db_url))["api_keys"]
