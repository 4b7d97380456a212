"""`gateway voucher create|list|revoke`: batches of voucher codes (docs/vouchers.md)."""

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.support import Commands, fail, with_gateway
from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat, parse_fiat
from gateway.domain.timestamps import rfc3339

if TYPE_CHECKING:
    from gateway.domain.vouchers import VoucherBatch
    from gateway.services.vouchers import BatchSpec


def _spec(args: argparse.Namespace) -> "BatchSpec":
    from gateway.domain.vouchers import expiry_of
    from gateway.services.vouchers import BatchSpec

    try:
        value: Fiat | None = None
        if args.value is not None:
            if args.currency is None:
                raise InvalidInput("currency", "is required with --value")
            value = parse_fiat(args.value, args.currency.upper(), "value")
        expires = expiry_of(args.expires) if args.expires else None
    except InvalidInput as exc:
        raise fail(f"--{exc.field.split('.')[0]}: {exc.detail}") from None
    return BatchSpec(args.count, value, args.currency.upper() if args.currency else None,
                     args.plan, args.periods or (1 if args.plan else 0), expires,
                     args.label or "")


def describe(b: "VoucherBatch") -> str:
    what = f"{b.value.as_decimal_string()} {b.value.currency}"
    if b.plan:
        what += f" ({b.periods} x {b.plan})"
    state = f"revoked {rfc3339(b.revoked_at)}" if b.revoked_at else (
        f"expires {rfc3339(b.expires_at)}" if b.expires_at else "no expiry")
    label = f"  {b.label}" if b.label else ""
    return (f"{b.id}  {rfc3339(b.created_at)}  {what}  {b.redeemed}/{b.count} redeemed  "
            f"{state}{label}")


def cmd_voucher_create(args: argparse.Namespace) -> int:
    spec = _spec(args)
    created = with_gateway(args, lambda gw: gw.services.vouchers.create(spec))
    # The codes go to stdout once, one a line; only their keyed hashes are stored.
    print(f"batch {describe(created.batch)}; the codes below are shown this once",
          file=sys.stderr)
    for code in created.codes:
        print(code)
    return 0


def cmd_voucher_list(args: argparse.Namespace) -> int:
    for batch in with_gateway(args, lambda gw: gw.services.vouchers.batches(args.limit)):
        print(describe(batch))
    return 0


def cmd_voucher_revoke(args: argparse.Namespace) -> int:
    batch = with_gateway(args, lambda gw: gw.services.vouchers.revoke(args.batch))
    print(f"{batch.id} revoked: {batch.count - batch.redeemed} unredeemed code(s) no "
          "longer work")
    return 0


def register(cli: Commands) -> None:
    group = cli.group("voucher", help="voucher codes sold through resellers "
                                      "(docs/vouchers.md)",
                      example="gateway voucher list")
    create = group.command(
        "create", cmd_voucher_create,
        help="make a batch of codes and print them once (only keyed hashes are kept)",
        example="gateway voucher create --count 50 --value 10.00 --currency EUR "
                "--expires 2027-12-31 --label 'shop A' > codes.txt")
    create.add_argument("--count", type=int, required=True, help="how many codes")
    create.add_argument("--value", help="what each code credits, e.g. 10.00 (with a plan: "
                                        "the plan's price for its periods unless given)")
    create.add_argument("--currency", help="ISO 4217 code of the value, e.g. EUR")
    create.add_argument("--plan", help="a plan each code buys at once (from [plans])")
    create.add_argument("--periods", type=int, help="plan periods each code buys (1)")
    create.add_argument("--expires", help="last day the codes work (UTC), e.g. 2027-12-31, "
                                          "or an RFC 3339 time")
    create.add_argument("--label", help="what the batch is for (a reseller, a campaign)")
    listing = group.command("list", cmd_voucher_list,
                            help="batches, newest first: value, redeemed, state",
                            example="gateway voucher list --limit 20")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    revoke = group.command("revoke", cmd_voucher_revoke,
                           help="revoke a batch: its unredeemed codes stop working",
                           example="gateway voucher revoke vbt_3Jx9...")
    revoke.add_argument("batch", help="the batch's id (vbt_...)")
