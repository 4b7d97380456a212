"""A complete webhook receiver for the provisioning system (docs/deployment.md).

    pip install aiohttp standardwebhooks
    WEBHOOK_SECRET=whsec_... python webhook_receiver.py --port 8000 --db receiver.sqlite

It verifies every delivery with the Standard Webhooks library (signature over the exact
body bytes, timestamp within 5 minutes), then handles each event exactly once: the
`webhook-id` (the event id, the same on every retry) is recorded in the same SQLite
transaction as the work, so a retry of an event already handled is answered 200 and
changes nothing. Replace `provision()` with your own work. During a secret rotation put
both secrets in WEBHOOK_SECRET, separated by a space.
"""

import argparse
import asyncio
import json
import os
import sqlite3
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS handled (webhook_id TEXT PRIMARY KEY, type TEXT NOT NULL,
                                    received_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS servers (account_id TEXT PRIMARY KEY, datacenter TEXT,
                                    invoice_id TEXT);
"""


def provision(db: sqlite3.Connection, event: dict[str, Any]) -> None:
    """Your work, inside the transaction that records the webhook-id."""
    data = event["data"]
    if event["type"] == "account.activated":
        db.execute("INSERT OR IGNORE INTO servers VALUES (?, ?, ?)",
                   (data["account_id"], data.get("datacenter"), data["invoice_id"]))
    elif event["type"] == "account.deleted":
        db.execute("DELETE FROM servers WHERE account_id = ?", (data["account_id"],))


def make_app(secrets: list[str], db_path: str) -> web.Application:
    verifiers = [Webhook(secret) for secret in secrets]
    db = sqlite3.connect(db_path, isolation_level=None)  # explicit transactions below
    db.executescript(SCHEMA)
    lock = asyncio.Lock()  # one writer at a time on this connection

    def verify(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        for verifier in verifiers:
            try:
                verified: dict[str, Any] = verifier.verify(body, headers)
                return verified
            except WebhookVerificationError:
                continue
        raise web.HTTPUnauthorized(text="bad signature or timestamp")

    async def hooks(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event = verify(body, headers)
        webhook_id = headers["webhook-id"]
        async with lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                seen = db.execute("INSERT OR IGNORE INTO handled (webhook_id, type) "
                                  "VALUES (?, ?)", (webhook_id, event["type"])).rowcount == 0
                if not seen:
                    provision(db, event)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise  # answered 500: the gateway retries with the same webhook-id
        return web.json_response({"webhook_id": webhook_id, "duplicate": seen})

    async def close(_app: web.Application) -> None:
        db.close()

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/hooks", hooks)
    app.on_cleanup.append(close)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="receiver.sqlite")
    args = parser.parse_args()
    secrets = os.environ["WEBHOOK_SECRET"].split()
    print(json.dumps({"listening": f"http://{args.host}:{args.port}/hooks"}), flush=True)
    web.run_app(make_app(secrets, args.db), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
