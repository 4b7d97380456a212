"""Issue 16, item 3: a restored backup does not bring an erased customer back. Erasures
are recorded in a deletion ledger outside the database (account id and time, nothing
else); `gateway backup restore` re-applies it and says how many, and so does every
retention run. A backup written by hand outside [backup] dir is flagged as the
operator's to prune."""

from pathlib import Path
from typing import Any

from tests.e2e.conftest import DEFAULT_DB, StackFactory
from tests.support.databases import fresh_database
from tests.support.stack import run_cli

PASSWORD = "ledger pw 1234"


async def test_restore_re_applies_erasures_made_after_the_backup(
    make_stack: StackFactory, tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger" / "deletions.txt"
    configured = tmp_path / "backups"
    stack = await make_stack(register_endpoint=False,
                             GATEWAY_BACKUP__DELETION_LEDGER=str(ledger),
                             GATEWAY_BACKUP__DIR=str(configured),
                             GATEWAY_BACKUP__INTERVAL_HOURS="168",
                             # A weekly backup fits the 30 days with two weeks' keep.
                             GATEWAY_RETENTION__BACKUP_DAYS="14")
    gone = await stack.signup("gone@example.org", PASSWORD, display_name="Gone Person")
    stays = await stack.signup("stays@example.org", PASSWORD)
    env = stack.gateway.env

    by_hand = tmp_path / "elsewhere"
    made = run_cli(env, "backup", "create", "--out", str(by_hand))
    assert made.returncode == 0, made.stderr
    assert "not [backup] dir" in made.stderr and "prune" in made.stderr
    in_configured = run_cli(env, "backup", "create", "--out", str(configured))
    assert in_configured.returncode == 0 and "not [backup] dir" not in in_configured.stderr
    [backup] = list(by_hand.iterdir())

    token = await stack.login("gone@example.org", PASSWORD)
    await stack.api.ok("DELETE", "/v1/me", {"password": PASSWORD}, token)
    await stack.rows("UPDATE accounts SET deletion_due_at = created_at WHERE id = :a",
                     a=gone["id"])
    done = run_cli(env, "retention", "run")
    assert done.returncode == 0 and "account_deletions: removed 1" in done.stdout
    # The ledger: the account id and the erasure time, nothing else.
    [line] = ledger.read_text().splitlines()
    account_id, at = line.split(" ")
    assert account_id == gone["id"] and at.endswith("Z")
    assert (ledger.stat().st_mode & 0o777) == 0o600

    with fresh_database(DEFAULT_DB, tmp_path, migrate=False) as restored_url:
        restored_env = {**env, "GATEWAY_DATABASE__URL": restored_url}
        restored = run_cli(restored_env, "backup", "restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        assert "deletion ledger re-applied: 1 account(s)" in restored.stdout
        rows = {r.id: r for r in await _accounts(restored_url)}
        assert rows[gone["id"]].deleted_at is not None
        assert bytes(rows[gone["id"]].email_ct) == b""
        assert rows[stays["id"]].deleted_at is None
        again = run_cli(restored_env, "retention", "run")
        assert "ledger_reapplied: removed 0" in again.stdout

    # Without a ledger the restore says so; the next retention run with it catches up.
    with fresh_database(DEFAULT_DB, tmp_path, migrate=False) as bare_url:
        bare_env = {k: v for k, v in env.items()
                    if k not in ("GATEWAY_BACKUP__DELETION_LEDGER", "GATEWAY_BACKUP__DIR")}
        bare_env["GATEWAY_DATABASE__URL"] = bare_url
        warned = run_cli(bare_env, "backup", "restore", str(backup))
        assert warned.returncode == 0 and "no deletion ledger" in warned.stdout
        back = {r.id: r for r in await _accounts(bare_url)}
        assert back[gone["id"]].deleted_at is None  # the backup brought it back
        caught_up = run_cli({**env, "GATEWAY_DATABASE__URL": bare_url}, "retention", "run")
        assert "ledger_reapplied: removed 1" in caught_up.stdout, caught_up.stdout
        back = {r.id: r for r in await _accounts(bare_url)}
        assert back[gone["id"]].deleted_at is not None


async def _accounts(url: str) -> list[Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text("SELECT * FROM accounts"))).all())
    finally:
        await engine.dispose()
