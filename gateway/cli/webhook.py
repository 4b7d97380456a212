"""`gateway webhook create|list|delete|enable|rotate|redeliver`: webhook endpoints and
their deliveries."""

import argparse

from gateway.cli.support import Commands, when, with_gateway


def cmd_webhook_create(args: argparse.Namespace) -> int:
    created = with_gateway(args, lambda gw: gw.services.endpoints.create(
        args.url, args.event_type, args.description))
    print(f"{created.record.id} {created.record.url}")
    print(f"secret (shown once): {created.secret}")
    return 0


def cmd_webhook_list(args: argparse.Namespace) -> int:
    for rec in with_gateway(args, lambda gw: gw.services.endpoints.list()):
        types = ",".join(rec.event_types) or "*"
        state = "enabled" if rec.enabled else "DISABLED"
        print(f"{rec.id}\t{state}\t{types}\t{rec.url}\t{rec.description}")
    return 0


def cmd_webhook_delete(args: argparse.Namespace) -> int:
    with_gateway(args, lambda gw: gw.services.endpoints.delete(args.id))
    print(f"deleted {args.id}")
    return 0


def cmd_webhook_enable(args: argparse.Namespace) -> int:
    with_gateway(args, lambda gw: gw.services.endpoints.set_enabled(args.id, True))
    print(f"enabled {args.id}")
    return 0


def cmd_webhook_rotate(args: argparse.Namespace) -> int:
    secret, until = with_gateway(args, lambda gw: gw.services.endpoints.rotate(args.id))
    print(f"new secret (shown once): {secret}")
    print(f"the previous secret also signs until {until.isoformat()}")
    return 0


def cmd_webhook_redeliver(args: argparse.Namespace) -> int:
    since = when(args.failed_since)
    queued = with_gateway(args, lambda gw: gw.services.events.redeliver_failed(since))
    print(f"{queued} failed deliveries queued again (same webhook-id each)")
    return 0


def register(cli: Commands) -> None:
    hook = cli.group("webhook", help="webhook endpoints and deliveries",
                     example="gateway webhook list")
    create = hook.command(
        "create", cmd_webhook_create, old=("add",),
        help="register an endpoint and print its secret once",
        example="gateway webhook create --url https://provisioning.example/hooks "
                "--event-type account.activated --description provisioning")
    create.add_argument("--url", required=True, help="where events are posted")
    create.add_argument("--event-type", action="append", default=[],
                        help="repeat to subscribe to several; default: every type")
    create.add_argument("--description", default="")
    hook.command("list", cmd_webhook_list, help="every endpoint: id, state, types, URL",
                 example="gateway webhook list")
    for name, func, text in (
            ("delete", cmd_webhook_delete, "delete an endpoint"),
            ("enable", cmd_webhook_enable, "re-enable an endpoint (disabled after a 410)"),
            ("rotate", cmd_webhook_rotate,
             "new secret; the old one keeps signing for the overlap")):
        hook.command(name, func, help=text, example=f"gateway webhook {name} whe_8Kq2..."
                     ).add_argument("id", help="the endpoint's id (whe_...)")
    again = hook.command("redeliver", cmd_webhook_redeliver,
                         help="queue failed deliveries again",
                         example="gateway webhook redeliver --failed-since "
                                 "2026-12-01T00:00:00Z")
    again.add_argument("--failed-since", required=True, help="ISO 8601 time with zone")
