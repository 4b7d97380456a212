"""`gateway legal add|list|lift-hold|notify-pending|notify-again`: the register of legal
requests for customer data."""

import argparse
import getpass
from typing import TYPE_CHECKING

from gateway.cli_support import when, with_gateway

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


def cmd_legal(args: argparse.Namespace) -> int:
    if args.legal == "add":
        received = when(args.received)
        request = with_gateway(args, lambda gw: gw.services.legal.record(
            _actor(), args.account, received, args.summary, args.notify == "allowed"))
        print(_line(request))
        _unmailed(request)
        if not request.notify_allowed:
            print("held: run `gateway legal lift-hold "
                  f"{request.id}` once the customers may be told")
    elif args.legal == "lift-hold":
        request = with_gateway(args, lambda gw: gw.services.legal.lift_hold(_actor(), args.id))
        print(_line(request))
        _unmailed(request)
    elif args.legal == "notify-again":
        request = with_gateway(args, lambda gw: gw.services.legal.notify_again(args.id))
        print(_line(request))
    elif args.legal == "notify-pending":
        done = with_gateway(args, lambda gw: gw.services.legal.notify_pending())
        for request in done:
            print(_line(request))
        print(f"{len(done)} request(s) mailed")
    else:
        for request in with_gateway(args, lambda gw: gw.services.legal.all()):
            print(_line(request))
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
             common: argparse.ArgumentParser) -> None:
    legal = sub.add_parser("legal", help="the register of legal requests").add_subparsers(
        dest="legal", required=True)
    add = legal.add_parser("add", parents=[common], help="record a legal request (audited)")
    add.add_argument("--account", action="append", required=True,
                     help="an account concerned, acc_... (repeat for several)")
    add.add_argument("--received", required=True, help="when it was received, ISO 8601 with zone")
    add.add_argument("--summary", required=True,
                     help="what was asked and by whom (stored encrypted)")
    add.add_argument("--notify", choices=("allowed", "held"), required=True,
                     help="may the customers concerned be told now")
    lift = legal.add_parser("lift-hold", parents=[common],
                            help="allow notification of a held request (audited)")
    lift.add_argument("id")
    legal.add_parser("list", parents=[common], help="every recorded legal request")
    legal.add_parser("notify-pending", parents=[common],
                     help="mail the customers of requests they may be told of but were "
                          "never mailed about (once each)")
    again = legal.add_parser("notify-again", parents=[common],
                             help="queue a request's mail once more (after the mail queue "
                                  "dropped it undelivered)")
    again.add_argument("id")
    for p in legal.choices.values():
        p.set_defaults(func=cmd_legal)
