"""`gateway keys generate|rotate-data`: the gateway's own secrets."""

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.support import EXIT_CONFIG, Bar, Commands, fail, with_gateway

if TYPE_CHECKING:
    from gateway.adapters.db.field_rotation import RotationPolicy, TableReport
    from gateway.bootstrap import Gateway


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


def _printed(report: "TableReport") -> None:
    print(report.line(), flush=True)
    for f in report.failures:
        print(f"gateway: {f.reason} (row {f.row}): left as it is", file=sys.stderr)


def _policy(batch_size: int) -> "RotationPolicy":
    from gateway.adapters.db.field_rotation import RotationPolicy

    try:
        return RotationPolicy(batch_size)
    except ValueError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def _rotate(args: argparse.Namespace,
            policy: "RotationPolicy") -> "tuple[list[TableReport], str]":
    from gateway.adapters.db.field_rotation import count_stale, rotate_data

    bar = Bar("re-encrypting", "rows")

    async def run(gw: "Gateway") -> "tuple[list[TableReport], str]":
        bar.add_total(sum((await count_stale(gw.engine, gw.cipher)).values()))
        reports = await rotate_data(gw.engine, gw.cipher, policy, bar.advance, _printed)
        return reports, gw.cipher.primary_key_id

    try:
        return with_gateway(args, run)
    finally:
        bar.close()


def cmd_keys_rotate_data(args: argparse.Namespace) -> int:
    from gateway.adapters.db.field_rotation import count_stale

    policy = _policy(args.batch_size)
    if args.dry_run:
        counts = with_gateway(args, lambda gw: count_stale(gw.engine, gw.cipher))
        for table, n in counts.items():
            print(f"{table}: {n} rows to re-encrypt")
        return 0
    reports, newest = _rotate(args, policy)
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


def register(cli: Commands) -> None:
    keys = cli.group("keys", help="the gateway's own secrets",
                     example="gateway keys generate --out /etc/gateway/secrets")
    generate = keys.command(
        "generate", cmd_keys_generate, config=False,
        help="write new random keys: session, index, data and backup (never overwrites)",
        example="gateway keys generate --out /etc/gateway/secrets")
    generate.add_argument("--out", required=True, help="directory for the key files")
    rotate = keys.command(
        "rotate-data", cmd_keys_rotate_data,
        help="re-encrypt every personal field under the newest data key (the first of "
             "data_keys), so older keys can be removed; resumable, exit 1 if any value "
             "could not be read",
        example=["gateway keys rotate-data --dry-run", "gateway keys rotate-data"])
    rotate.add_argument("--batch-size", type=int, default=200,
                        help="rows per transaction (default 200)")
    rotate.add_argument("--dry-run", action="store_true",
                        help="only count, per table, the rows still to re-encrypt")
