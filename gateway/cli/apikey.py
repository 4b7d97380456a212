"""`gateway apikey create|list|revoke`: service API keys."""

import argparse

from gateway.cli.support import Commands, with_gateway
from gateway.domain.timestamps import rfc3339


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


def register(cli: Commands) -> None:
    key = cli.group("apikey", help="service API keys (for the provisioning system)",
                    example="gateway apikey list")
    create = key.command(
        "create", cmd_apikey_create, help="create a key and print it once",
        example="gateway apikey create --name provisioning --scope invoices:write "
                "--scope invoices:read")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--scope", action="append", default=[], required=True,
                        help="a scope, such as invoices:write (repeat for several)")
    key.command("list", cmd_apikey_list, help="every key: id, name, scopes, state",
                example="gateway apikey list")
    revoke = key.command("revoke", cmd_apikey_revoke, help="revoke a key at once",
                         example="gateway apikey revoke key_3Jx9...")
    revoke.add_argument("id", help="the key's id (key_...)")
