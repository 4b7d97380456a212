"""Two coins sharing one address space (as ETH and its tokens will), invoices created
concurrently by two processes on PostgreSQL: every address is distinct, every index of
the space handed out once."""

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.databases import fresh_database

PER_PROCESS = 30


async def test_two_processes_two_coins_one_space_never_share_an_address(
    tmp_path: Path,
) -> None:
    with fresh_database("postgresql", tmp_path) as db_url:
        engine = create_async_engine(db_url, poolclass=NullPool)
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO accounts (id, email_index, email_ct, password_hash, "
                "created_at, policy_version) VALUES ('acc_space', 'idx', :ct, 'h', now(), 'v')"
            ), {"ct": b"x"})
        start_at = time.time() + 3  # both import and build first, then create at once
        procs = [subprocess.Popen(
            [sys.executable, "-m", "tests.support.alloc_worker", db_url, "shared-node",
             "acc_space", str(PER_PROCESS), str(start_at), *coins],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for coins in (["FAK", "FTK"], ["FTK", "FAK"])]
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out.split())
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT coin, address, address_space, derivation_index FROM invoices"
                ))).all()
        finally:
            await engine.dispose()
    addresses = outputs[0] + outputs[1]
    assert len(addresses) == 2 * PER_PROCESS == len(set(addresses)) == len(rows)
    assert {r.coin for r in rows} == {"FAK", "FTK"}
    assert len({r.address_space for r in rows}) == 1
    assert sorted(r.derivation_index for r in rows) == list(range(2 * PER_PROCESS))
