"""`gateway staff add|remove|list`: members of the staff console (docs/staff-console.md)."""

import argparse
import getpass
import sys

from gateway.cli_support import fail, with_gateway
from gateway.services.staff import ROLES


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password for the new staff member: ")
    if getpass.getpass("Again: ") != first:
        raise fail("the passwords differ")
    return first


def cmd_staff_add(args: argparse.Namespace) -> int:
    password = _password(args)
    member = with_gateway(args, lambda gw: gw.services.staff.add(args.name, args.role,
                                                                 password))
    print(f"{member.name} ({member.role}) added as {member.id}; they set up two-factor "
          "authentication at their first login")
    return 0


def cmd_staff_remove(args: argparse.Namespace) -> int:
    with_gateway(args, lambda gw: gw.services.staff.remove(args.name))
    print(f"{args.name} removed; their sessions have ended")
    return 0


def cmd_staff_list(args: argparse.Namespace) -> int:
    members = with_gateway(args, lambda gw: gw.services.staff.list())
    for m in members:
        totp = "2FA on" if m.totp_enabled_at else "2FA not set up yet"
        print(f"{m.name}\t{m.role}\t{m.id}\t{totp}\tsince {m.created_at:%Y-%m-%d}")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
             common: argparse.ArgumentParser) -> None:
    staff = sub.add_parser("staff", help="staff console members").add_subparsers(
        dest="staff", required=True)
    add = staff.add_parser("add", parents=[common], help="add a member (asks the password)")
    add.add_argument("name", help="login name: a-z, 0-9, '.', '_', '-'")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.set_defaults(func=cmd_staff_add)
    remove = staff.add_parser("remove", parents=[common],
                              help="remove a member and end their sessions")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_staff_remove)
    staff.add_parser("list", parents=[common], help="every member: name, role, 2FA"
                     ).set_defaults(func=cmd_staff_list)
