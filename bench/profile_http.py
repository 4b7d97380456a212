"""Where a request's time goes: `py-spy record` on `gateway serve` (SQLite, fake family, as
P3 runs it) under P3's load of 64 connections, POST /v1/invoices and then
GET /v1/invoices/{id}; prints the top frames of each (self time, and the inclusive time
of the gateway's frames and SQLAlchemy's entry points) and keeps the raw stacks.
py-spy is not a dependency of the project: install it into a virtualenv of your own
(`python3 -m venv ~/pyspy && ~/pyspy/bin/pip install py-spy`) and name it in $PYSPY
(default: `py-spy` on the PATH).
Run: `.venv/bin/python bench/profile_http.py OUTDIR [seconds]` (not part of `make bench`)."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api_http import CONNECTIONS, EngineConnect, Target, add_account  # noqa: E402
from http_load import run_load  # noqa: E402

PYSPY = os.environ.get("PYSPY", "py-spy")
SHOWN = ("(gateway/", "sqlalchemy/engine/base.py", "(webhooks/")


def top_frames(raw: Path, self_rows: int = 10, inclusive_rows: int = 25) -> str:
    """py-spy's raw output (one `frame;frame;... count` line per stack) summed by frame."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples; self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(self_rows)]
    out.append("inclusive:")
    chosen = [(f, n) for f, n in inclusive.most_common() if any(s in f for s in SHOWN)]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in chosen[:inclusive_rows]]
    return "\n".join(out)


async def main(out: Path, seconds: float) -> None:
    from sqlalchemy import text

    from tests.support.databases import fresh_database
    from tests.support.fake_gateway import fake_env
    from tests.support.nodes import free_port
    from tests.support.stack import GatewayProcess, run_cli

    tmp = Path(tempfile.mkdtemp(prefix="profile-http-"))
    with fresh_database("sqlite", tmp) as url:
        port = free_port()
        env = fake_env(url, "bench-node", ("FAK",), GATEWAY_SERVER__PORT=str(port),
                       GATEWAY_SERVER__PUBLIC_URL=f"http://127.0.0.1:{port}",
                       GATEWAY_SERVER__METRICS_LISTEN=f"127.0.0.1:{free_port()}",
                       GATEWAY_COINS__FAK__POLL_INTERVAL_SECONDS="1",
                       GATEWAY_INVOICES__MAX_OPEN_PER_ACCOUNT="1000")
        key = run_cli(env, "apikey", "create", "--name", "bench", "--scope",
                      "invoices:write", "--scope", "invoices:read").stdout.strip()
        await add_account(env, "acc_bench")
        gateway = await GatewayProcess(env, tmp / "gateway.log").start()
        assert gateway.proc is not None
        try:
            target = Target(gateway.base, key, "acc_bench")
            await run_load(target.create, 1, 0.5, target.headers)  # warm-up
            async with EngineConnect(url) as conn:
                target.invoice_id = (await conn.execute(text(
                    "SELECT id FROM invoices LIMIT 1"))).scalar_one()
            for name, make in (("post", target.create), ("get", target.get)):
                raw = out / f"{name}.txt"
                spy = subprocess.Popen(  # noqa: ASYNC220
                    [PYSPY, "record", "-p", str(gateway.proc.pid), "-d", str(int(seconds)),
                     "-r", "200", "-f", "raw", "-o", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(0.5)
                load = await run_load(make, CONNECTIONS, seconds - 1, target.headers)
                await asyncio.to_thread(spy.wait)
                print(f"== {name}: {load.rate:.0f} req/s, p50 {load.p50_ms:.1f} ms, "
                      f"p99 {load.p99_ms:.1f} ms, statuses {load.statuses}")
                print(top_frames(raw))
        finally:
            await gateway.stop()


if __name__ == "__main__":
    where = Path(sys.argv[1])
    where.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(where, float(sys.argv[2]) if len(sys.argv) > 2 else 6.0))
