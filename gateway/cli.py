"""`gateway ...` commands. Errors are one clear line on stderr and a non-zero exit."""

import argparse
import asyncio
import errno
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway import cli_finance, cli_legal, cli_ops, cli_privacy, cli_staff, logs
from gateway.cli_support import EXIT_CONFIG, fail, settings_or_exit, when, with_gateway
from gateway.domain.timestamps import rfc3339

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway


def cmd_serve(args: argparse.Namespace) -> int:
    import socket
    import ssl

    from aiohttp import web

    from gateway.bootstrap import (
        ListenError,
        SchemaNotReady,
        build,
        build_app,
        listen_error,
        startup_problems,
    )

    settings = settings_or_exit(args)
    warning = settings.server.plaintext_warning()
    if warning is not None:
        print(f"gateway: {warning}", file=sys.stderr)
    gw = build(settings)

    async def check() -> None:
        try:
            await gw.check_schema()
        finally:
            await gw.engine.dispose()

    try:
        asyncio.run(check())
    except SchemaNotReady as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway: database unavailable: {exc.strerror or exc}", file=sys.stderr)
        return 1
    fatal, warnings = asyncio.run(startup_problems(settings))
    for line in warnings:
        print(f"gateway: warning: {line}", file=sys.stderr)
    if fatal:
        for line in fatal:
            print(f"gateway: {line}", file=sys.stderr)
        return 1
    logs.configure(settings.server.log_level)
    ssl_context = None
    server = settings.server
    if server.tls_cert and server.tls_key:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_3
        ssl_context.load_cert_chain(server.tls_cert, server.tls_key)
    # The public socket first: a port that is taken stops the start before any watcher,
    # worker or database connection has started (they would be cut off mid-way).
    try:
        sock = socket.create_server((server.host, server.port))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        said = listen_error("[server] port", f"{server.port} (host {server.host})", exc)
        print(f"gateway: {said}", file=sys.stderr)
        return 1
    try:
        web.run_app(build_app(gw), sock=sock, ssl_context=ssl_context, access_log=None,
                    print=None)
    except ListenError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from alembic import command

    from gateway.adapters.db.engine import alembic_config

    settings = settings_or_exit(args)
    logs.configure("WARNING")
    command.upgrade(alembic_config(settings.database.url), "head")
    print("database is up to date")
    # Migrations never see the data keys, so fields written before they were bound to
    # their column are rewritten by `keys rotate-data`, not here: say so when it is due.
    old = asyncio.run(_format1_rows(settings.database.url))
    if old:
        print(f"{old} rows hold personal fields bound to their record only (written by an "
              "older version): run `gateway keys rotate-data`, then set [security] "
              "read_legacy_ciphertexts = false once links mailed before the upgrade have "
              "expired, 7 days (OPERATIONS.md, Keys)")
    return 0


async def _format1_rows(url: str) -> int:
    from gateway.adapters.db.engine import dispose, make_engine
    from gateway.adapters.db.field_rotation import count_format1

    engine = make_engine(url, hide_parameters=True)
    try:
        return await count_format1(engine)
    finally:
        await dispose(engine)


def cmd_apikey_create(args: argparse.Namespace) -> int:
    created = with_gateway(args, lambda gw: gw.services.api_keys.create(args.name, args.scope))
    # The key is printed once, to stdout only; only its hash is stored.
    print(created.secret)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    for key in with_gateway(args, lambda gw: gw.services.api_keys.list()):
        state = f"revoked {rfc3339(key.revoked_at)}" if key.revoked_at else "live"
        print(f"{key.id}  {key.name}  {','.join(sorted(key.scopes))}  "
              f"created {rfc3339(key.created_at)}  {state}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    with_gateway(args, lambda gw: gw.services.api_keys.revoke(args.id))
    print(f"{args.id} revoked")
    return 0


def cmd_wallet_gap(args: argparse.Namespace) -> int:
    gap = with_gateway(args, lambda gw: gw.services.wallet.gap(args.coin))
    if args.json:
        import json

        print(json.dumps({"coin": args.coin, "derived": gap.derived, "longest_gap": gap.longest,
                          "start_index": gap.start, "end_index": gap.end}))
        return 0
    where = f" (indexes {gap.start}-{gap.end})" if gap.start is not None else ""
    print(f"{args.coin}: {gap.derived} addresses derived; longest run of addresses that "
          f"never received a confirmed payment: {gap.longest}{where}")
    print(f"Scan at least {max(gap.longest + 1, 20)} addresses ahead (gap limit) in the "
          "wallet that holds the keys, or it will not see every payment.")
    return 0


def cmd_webhook(args: argparse.Namespace) -> int:
    action = args.webhook
    if action == "add":
        created = with_gateway(args, lambda gw: gw.services.endpoints.create(
            args.url, args.event_type, args.description))
        print(f"{created.record.id} {created.record.url}")
        print(f"secret (shown once): {created.secret}")
    elif action == "list":
        for rec in with_gateway(args, lambda gw: gw.services.endpoints.list()):
            types = ",".join(rec.event_types) or "*"
            state = "enabled" if rec.enabled else "DISABLED"
            print(f"{rec.id}\t{state}\t{types}\t{rec.url}\t{rec.description}")
    elif action == "delete":
        with_gateway(args, lambda gw: gw.services.endpoints.delete(args.id))
        print(f"deleted {args.id}")
    elif action == "enable":
        with_gateway(args, lambda gw: gw.services.endpoints.set_enabled(args.id, True))
        print(f"enabled {args.id}")
    elif action == "rotate":
        secret, until = with_gateway(args, lambda gw: gw.services.endpoints.rotate(args.id))
        print(f"new secret (shown once): {secret}")
        print(f"the previous secret also signs until {until.isoformat()}")
    elif action == "redeliver":
        since = when(args.failed_since)
        queued = with_gateway(args, lambda gw: gw.services.events.redeliver_failed(since))
        print(f"{queued} failed deliveries queued again (same webhook-id each)")
    return 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    counts = with_gateway(args, lambda gw: gw.services.retention.run(dry_run=args.dry_run))
    verb = "would remove" if args.dry_run else "removed"
    failed = counts.pop("erasure_failures", 0)
    prune_failed = counts.pop("prune_failures", 0)
    stage_failed = counts.pop("stage_failures", 0)
    flush_owed = counts.pop("flush_owed", 0)
    for what, n in counts.items():
        print(f"{what}: {verb} {n}")
    if flush_owed:
        print("erased data has not yet left the database files (the log says why); the "
              "next run retries", file=sys.stderr)
    if prune_failed:
        print(f"{prune_failed} register(s) could not be pruned (the log says why); the next "
              "run retries", file=sys.stderr)
    if stage_failed:
        print(f"{stage_failed} retention stage(s) failed (the log says which and why); the "
              "next run retries", file=sys.stderr)
    if failed:  # last: the line that matters most
        print(f"{failed} erasure(s) failed and are still due (the log says why); the next "
              "run retries them", file=sys.stderr)
    return 1 if failed or prune_failed or stage_failed else 0


def cmd_openapi(args: argparse.Namespace) -> int:
    import json

    from gateway.http.openapi import document
    from gateway.http.vocabulary import vocabulary

    settings = settings_or_exit(args)
    print(json.dumps(document(settings.server.path_prefix, vocabulary(settings)), indent=2))
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    import base64
    import json
    import secrets
    from pathlib import Path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    files = {
        "session.key": key(),
        "index.key": key(),
        "data.keys": json.dumps([f"k{secrets.token_hex(2)}:{key()}"]),
        "backup.key": key(),
    }
    for name, value in files.items():
        path = out / name
        if path.exists():
            print(f"{path} exists; left as it is")
            continue
        path.touch(mode=0o600)
        path.write_text(value + "\n")
        print(f"wrote {path}")
    return 0


def cmd_keys_rotate_data(args: argparse.Namespace) -> int:
    from gateway.adapters.db.field_rotation import (
        RotationPolicy,
        TableReport,
        count_stale,
        rotate_data,
    )
    from gateway.cli_support import Bar

    try:
        policy = RotationPolicy(args.batch_size)
    except ValueError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None

    if args.dry_run:
        counts = with_gateway(args, lambda gw: count_stale(gw.engine, gw.cipher))
        for table, n in counts.items():
            print(f"{table}: {n} rows to re-encrypt")
        return 0

    def printed(report: TableReport) -> None:
        print(report.line(), flush=True)
        for f in report.failures:
            print(f"gateway: {f.reason} (row {f.row}): left as it is", file=sys.stderr)

    bar = Bar("re-encrypting", "rows")

    async def run(gw: "Gateway") -> tuple[list[TableReport], str]:
        bar.add_total(sum((await count_stale(gw.engine, gw.cipher)).values()))
        reports = await rotate_data(gw.engine, gw.cipher, policy, bar.advance, printed)
        return reports, gw.cipher.primary_key_id

    try:
        reports, newest = with_gateway(args, run)
    finally:
        bar.close()
    failed = sum(len(r.failures) for r in reports)
    left = sum(r.left for r in reports)
    if left:
        print(f"gateway: {left} rows were written under an older key while this ran (an "
              "instance or job still configured without the newest key?): run it again "
              "once every instance has the new data_keys", file=sys.stderr)
        return 1
    if failed:
        print(f"gateway: {failed} values could not be re-encrypted and still need the key "
              "they were written with; the others are done (run again once fixed)",
              file=sys.stderr)
        return 1
    print(f"every encrypted value is under data key {newest!r}: older keys may be removed "
          "from data_keys (OPERATIONS.md, Keys, says when)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(once=args.once, timeout=args.timeout, coin=args.coin)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description="Packetra payment gateway")
    p.add_argument("-c", "--config", help="TOML configuration file (or GATEWAY_CONFIG)")
    # Also accepted after the subcommand (`gateway serve -c FILE`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "serve", parents=[common], help="run the HTTP API, chain watchers and webhook workers"
    )
    s.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    upgrade = db.add_parser("upgrade", parents=[common], help="apply all migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)

    key = sub.add_parser("apikey", help="service API keys").add_subparsers(
        dest="apikey", required=True
    )
    create = key.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", default=[], required=True)
    create.set_defaults(func=cmd_apikey_create)
    listing = key.add_parser("list", parents=[common], help="every key: id, name, scopes, state")
    listing.set_defaults(func=cmd_apikey_list)
    revoke = key.add_parser("revoke", parents=[common], help="revoke a key at once")
    revoke.add_argument("id", help="the key's id (key_...)")
    revoke.set_defaults(func=cmd_apikey_revoke)

    hook = sub.add_parser("webhook", help="webhook endpoints and deliveries").add_subparsers(
        dest="webhook", required=True)
    add = hook.add_parser("add", parents=[common], help="register an endpoint")
    add.add_argument("--url", required=True)
    add.add_argument("--event-type", action="append", default=[],
                     help="repeat to subscribe to several; default: every type")
    add.add_argument("--description", default="")
    hook.add_parser("list", parents=[common], help="list endpoints")
    for name, text in (("delete", "delete an endpoint"), ("enable", "re-enable an endpoint"),
                       ("rotate", "new secret; the old one keeps signing for the overlap")):
        hook.add_parser(name, parents=[common], help=text).add_argument("id")
    again = hook.add_parser("redeliver", parents=[common], help="queue failed deliveries again")
    again.add_argument("--failed-since", required=True, help="ISO 8601 time with zone")
    hook_cmds = hook.choices.values()
    for p_ in hook_cmds:
        p_.set_defaults(func=cmd_webhook)

    retention = sub.add_parser("retention", help="privacy retention").add_subparsers(
        dest="retention", required=True)
    rrun = retention.add_parser("run", parents=[common],
                                help="delete what is past its retention period")
    rrun.add_argument("--dry-run", action="store_true", help="count only")
    rrun.set_defaults(func=cmd_retention_run)

    wallet = sub.add_parser("wallet", help="the merchant wallet's view").add_subparsers(
        dest="wallet", required=True)
    gap = wallet.add_parser("gap", parents=[common],
                            help="longest run of derived addresses that never received")
    gap.add_argument("--coin", required=True)
    gap.add_argument("--json", action="store_true", help="machine-readable output")
    gap.set_defaults(func=cmd_wallet_gap)

    sub.add_parser("openapi", parents=[common],
                   help="print the OpenAPI 3.1 document for this configuration (no server "
                        "needed): its enums are the configured coins, currencies, plans "
                        "and datacenters").set_defaults(func=cmd_openapi)

    keys = sub.add_parser("keys", help="secrets").add_subparsers(dest="keys", required=True)
    generate = keys.add_parser("generate", help="write new random keys (never overwrites)")
    generate.add_argument("--out", required=True, help="directory for the key files")
    generate.set_defaults(func=cmd_keys_generate)
    rotate = keys.add_parser(
        "rotate-data", parents=[common],
        help="re-encrypt every personal field under the newest data key (the first of "
             "data_keys), so older keys can be removed; resumable, exit 1 if any value "
             "could not be read")
    rotate.add_argument("--batch-size", type=int, default=200,
                        help="rows per transaction (default 200)")
    rotate.add_argument("--dry-run", action="store_true",
                        help="only count, per table, the rows still to re-encrypt")
    rotate.set_defaults(func=cmd_keys_rotate_data)

    cli_privacy.register(sub, common)
    cli_finance.register(sub, common)
    cli_ops.register(sub, common)
    cli_staff.register(sub, common)
    cli_legal.register(sub, common)

    demo = sub.add_parser("demo", help="the whole flow on a local regtest node")
    demo.add_argument("--once", action="store_true", help="exit 0 after account.activated")
    demo.add_argument("--timeout", type=float, default=180.0)
    demo.add_argument("--coin", default="LTC", choices=["LTC", "ETH", "USDC", "XMR"],
                      help="LTC on litecoind; ETH, or a demo USDC token, on anvil; XMR on "
                           "monerod with a view-only wallet")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
