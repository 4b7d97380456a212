"""`gateway legal create|list|lift-hold|notify-pending|notify-again`: the register of
legal requests for customer data."""

import argparse
import getpass
from typing import TYPE_CHECKING

from gateway.cli.support import Commands, when, with_gateway

if TYPE_CHECKING:
    from gateway.services.ports import LegalRequest


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _line(r: "LegalRequest") -> str:
    state = ("notify allowed" if r.notify_allowed
             else f"hold lifted {r.hold_lifted_at.isoformat()}" if r.hold_lifted_at
             else "HELD: not shown to the customers")
    mailed = (f"mailed {r.notice_queued_at.isoformat()}" if r.notice_queued_at
              else "not mailed" if r.visible else "")
    return (f"{r.id}  received {r.received_at.isoformat()}  {state}  "
            + (f"{mailed}  " if mailed else "")
            + f"accounts {','.join(r.account_ids)}  {r.summary}")


def _unmailed(r: "LegalRequest") -> None:
    if r.visible and r.notice_queued_at is None:
        print("not mailed (no [smtp] configured): run `gateway legal notify-pending` "
              "once it is")


def cmd_legal_create(args: argparse.Namespace) -> int:
    received = when(args.received)
    request = with_gateway(args, lambda gw: gw.services.legal.record(
        _actor(), args.account, received, args.summary, args.notify == "allowed"))
    print(_line(request))
    _unmailed(request)
    if not request.notify_allowed:
        print("held: run `gateway legal lift-hold "
              f"{request.id}` once the customers may be told")
    return 0


def cmd_legal_lift_hold(args: argparse.Namespace) -> int:
    request = with_gateway(args, lambda gw: gw.services.legal.lift_hold(_actor(), args.id))
    print(_line(request))
    _unmailed(request)
    return 0


def cmd_legal_notify_again(args: argparse.Namespace) -> int:
    request = with_gateway(args, lambda gw: gw.services.legal.notify_again(args.id))
    print(_line(request))
    return 0


def cmd_legal_notify_pending(args: argparse.Namespace) -> int:
    done = with_gateway(args, lambda gw: gw.services.legal.notify_pending())
    for request in done:
        print(_line(request))
    print(f"{len(done)} request(s) mailed")
    return 0


def cmd_legal_list(args: argparse.Namespace) -> int:
    for request in with_gateway(args, lambda gw: gw.services.legal.all()):
        print(_line(request))
    return 0


def register(cli: Commands) -> None:
    legal = cli.group("legal", help="the register of legal requests for customer data",
                      example="gateway legal list")
    create = legal.command(
        "create", cmd_legal_create, old=("add",), help="record a legal request (audited)",
        example="gateway legal create --account acc_7Hk2... --received "
                "2026-12-01T09:30:00Z --summary 'court order 12/2026, district court' "
                "--notify held")
    create.add_argument("--account", action="append", required=True,
                        help="an account concerned, acc_... (repeat for several)")
    create.add_argument("--received", required=True,
                        help="when it was received, ISO 8601 with zone")
    create.add_argument("--summary", required=True,
                        help="what was asked and by whom (stored encrypted)")
    create.add_argument("--notify", choices=("allowed", "held"), required=True,
                        help="may the customers concerned be told now")
    legal.command("list", cmd_legal_list, help="every recorded legal request",
                  example="gateway legal list")
    legal.command("lift-hold", cmd_legal_lift_hold,
                  help="allow notification of a held request (audited)",
                  example="gateway legal lift-hold lr_5Tq1...").add_argument("id")
    legal.command("notify-pending", cmd_legal_notify_pending,
                  help="mail the customers of requests they may be told of but were "
                       "never mailed about (once each)",
                  example="gateway legal notify-pending")
    legal.command("notify-again", cmd_legal_notify_again,
                  help="queue a request's mail once more (after the mail queue dropped it "
                       "undelivered)",
                  example="gateway legal notify-again lr_5Tq1...").add_argument("id")
