"""`gateway staff create|list|delete`: members of the staff console
(docs/staff-console.md)."""

import argparse
import getpass
import sys

from gateway.cli.support import Commands, fail, with_gateway
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


def cmd_staff_create(args: argparse.Namespace) -> int:
    password = _password(args)
    member = with_gateway(args, lambda gw: gw.services.staff.add(args.name, args.role,
                                                                 password))
    print(f"{member.name} ({member.role}) added as {member.id}; they set up two-factor "
          "authentication at their first login")
    return 0


def cmd_staff_delete(args: argparse.Namespace) -> int:
    with_gateway(args, lambda gw: gw.services.staff.remove(args.name))
    print(f"{args.name} removed; their sessions have ended")
    return 0


def cmd_staff_list(args: argparse.Namespace) -> int:
    members = with_gateway(args, lambda gw: gw.services.staff.list())
    for m in members:
        totp = "2FA on" if m.totp_enabled_at else "2FA not set up yet"
        print(f"{m.name}\t{m.role}\t{m.id}\t{totp}\tsince {m.created_at:%Y-%m-%d}")
    return 0


def register(cli: Commands) -> None:
    staff = cli.group("staff", help="staff console members", example="gateway staff list")
    create = staff.command("create", cmd_staff_create, old=("add",),
                           help="add a member (asks the password)",
                           example=["gateway staff create sam --role support",
                                    "gateway staff create sam --role support "
                                    "--password-stdin < password.txt"])
    create.add_argument("name", help="login name: a-z, 0-9, '.', '_', '-'")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")
    delete = staff.command("delete", cmd_staff_delete, old=("remove",),
                           help="remove a member and end their sessions",
                           example="gateway staff delete sam")
    delete.add_argument("name")
    staff.command("list", cmd_staff_list, help="every member: name, role, 2FA",
                  example="gateway staff list")
