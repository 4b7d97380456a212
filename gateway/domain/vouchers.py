"""Voucher codes (docs/vouchers.md): prepaid value or plan time a customer redeems into the
account credit ledger. Pure: no I/O, no clock, and no randomness of its own (the service
passes `secrets.randbelow` in).

A code is 20 characters of Crockford's base32 (digits and letters without I, L, O and U:
nothing to confuse when read aloud or typed), shown in 4 groups of 5:
`7K3QH-X2M9D-4RTVA-C8N1E`. The first 19 are random (19 x 5 = 95 bits of entropy); the
last is a check character: one parity symbol over GF(32) with a distinct weight per
position, so every single wrong character and every swap of two neighbours is caught
before any lookup (tests/unit/test_vouchers.py tries them all)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat
from gateway.domain.timestamps import parse_time

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
GROUPS, GROUP_SIZE = 4, 5
LENGTH = GROUPS * GROUP_SIZE  # characters, the check character included
RANDOM_SYMBOLS = LENGTH - 1
BITS_PER_SYMBOL = 5  # log2(len(ALPHABET))
ENTROPY_BITS = RANDOM_SYMBOLS * BITS_PER_SYMBOL  # 95
# What a customer may type for a character that is not in the alphabet (Crockford).
_ALIASES = {"O": "0", "I": "1", "L": "1"}
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_SEPARATORS = frozenset(" -\t\u00a0\u2010\u2011\u2012\u2013\u2014")

# GF(2^5) with the primitive polynomial x^5 + x^2 + 1: alpha = 2 generates all 31
# non-zero elements, so the weights alpha^0 .. alpha^19 are distinct and non-zero.
_POLY = 0b100101


def _gf_mul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _POLY
    return out


def _gf_pow(a: int, n: int) -> int:
    out = 1
    for _ in range(n % 31):
        out = _gf_mul(out, a)
    return out


_WEIGHTS = tuple(_gf_pow(2, i) for i in range(LENGTH))  # the check character's is 1
_INVERSE = {w: next(x for x in range(1, 32) if _gf_mul(w, x) == 1) for w in _WEIGHTS}


def _syndrome(values: list[int]) -> int:
    """The weighted sum over GF(32) of the characters given, from the check position
    (weight 1) backwards: 0 for a whole, valid code."""
    total = 0
    for weight, value in zip(_WEIGHTS, reversed(values), strict=False):
        total ^= _gf_mul(weight, value)
    return total


def check_character(body: str) -> str:
    """The character that completes the 19 random ones: the weighted sum of all 20 is 0.
    The check character's weight is 1, so it is simply the sum of the others."""
    values = [_VALUE[c] for c in body] + [0]
    return ALPHABET[_syndrome(values)]


def generate(randbelow: Callable[[int], int]) -> str:
    """A new code, grouped for display. `randbelow`: `secrets.randbelow` (a test may pass
    something else)."""
    body = "".join(ALPHABET[randbelow(len(ALPHABET))] for _ in range(RANDOM_SYMBOLS))
    return grouped(body + check_character(body))


def grouped(code: str) -> str:
    return "-".join(code[i:i + GROUP_SIZE] for i in range(0, len(code), GROUP_SIZE))


class CodeRefused(InvalidInput):
    """A code refused before any lookup: malformed, or its check character is wrong."""


TYPO = "that code has a typo: check each character against the voucher"


def normalise(typed: str) -> str:
    """The 20 characters of a code as typed: any case, spaces and dashes anywhere, O for 0,
    I or L for 1. `CodeRefused` when it cannot be a code, or its check character says a
    character is wrong (no lookup is needed to know that)."""
    chars = [_ALIASES.get(c, c) for c in typed.upper() if c not in _SEPARATORS]
    if len(chars) != LENGTH:
        raise CodeRefused("code", f"a voucher code has {LENGTH} characters "
                                  f"({GROUPS} groups of {GROUP_SIZE}); this one has "
                                  f"{len(chars)}")
    if any(c not in _VALUE for c in chars):
        raise CodeRefused("code", TYPO)
    if _syndrome([_VALUE[c] for c in chars]) != 0:
        raise CodeRefused("code", TYPO)
    return "".join(chars)


def hash_input(code: str) -> str:
    """What the keyed hash is taken of: the normalised code, named so that no other blind
    index (emails, networks) can ever collide with it."""
    return f"voucher:{code}"


class VoucherState(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class VoucherBatch:
    """Codes made together, sold together: one value (or plan time) each."""

    id: str  # vbt_...
    created_at: datetime
    count: int
    value: Fiat  # what each code credits (for a plan voucher: the price of its periods)
    plan: str | None = None
    periods: int = 0  # plan periods each code buys (0: credit only)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    label: str = ""
    created_by: str | None = None  # staff member's id; None from the CLI
    redeemed: int = 0  # filled in by reads: codes of the batch redeemed so far
    redeemed_value: int = field(default=0)  # minor units

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be UTC-aware")
        if not 1 <= self.count <= MAX_BATCH:
            raise InvalidInput("count", f"must be between 1 and {MAX_BATCH}")
        if self.value.minor <= 0:
            raise InvalidInput("value", "must be more than zero")
        if (self.plan is None) != (self.periods == 0):
            raise InvalidInput("periods", "a plan voucher buys 1 or more periods of a plan")
        if not 0 <= self.periods <= MAX_PERIODS:
            raise InvalidInput("periods", f"must be between 1 and {MAX_PERIODS}")
        if len(self.label) > 200:
            raise InvalidInput("label", "200 characters at most")

    def state(self, now: datetime) -> VoucherState:
        """The batch's own state (a code of it may be redeemed already)."""
        if self.revoked_at is not None:
            return VoucherState.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return VoucherState.EXPIRED
        return VoucherState.ACTIVE

    @property
    def unredeemed(self) -> int:
        return self.count - self.redeemed


MAX_BATCH = 10_000
MAX_PERIODS = 36


@dataclass(frozen=True)
class Voucher:
    id: str  # vou_...
    batch_id: str
    redeemed_at: datetime | None = None
    redeemed_by: str | None = None  # the account (kept as a billing link: docs/privacy.md)

    def state(self, batch: VoucherBatch, now: datetime) -> VoucherState:
        if self.redeemed_at is not None:
            return VoucherState.REDEEMED
        return batch.state(now)


def on_the_books(voucher: "Voucher", batch: VoucherBatch, at: datetime
                 ) -> tuple[bool, bool, bool]:
    """(sold, redeemed, outstanding) for one code as the books stood at `at`: a batch made
    later is not there yet, and a redemption or revocation after `at` has not happened
    (a report for a past period is the same whenever it is made). A revoked batch's code
    was never sold unless it had been redeemed; an outstanding code is one a customer
    could still redeem: not redeemed, revoked or expired."""
    if batch.created_at >= at:
        return False, False, False
    redeemed = voucher.redeemed_at is not None and voucher.redeemed_at < at
    revoked = batch.revoked_at is not None and batch.revoked_at < at
    expired = batch.expires_at is not None and at >= batch.expires_at
    return (not revoked or redeemed), redeemed, not (redeemed or revoked or expired)


def voucher_cause(voucher_id: str) -> str:
    """The credit entry a voucher writes: once, whatever retries."""
    return f"voucher:{voucher_id}"


def expiry_of(text: str) -> datetime:
    """When codes stop working: a date (`2027-12-31`) means through that day, UTC (they
    expire at the midnight after it); a time must name its zone."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            return parse_time(text)
        except ValueError as exc:
            raise InvalidInput("expires", f"{exc} (or a date, 2027-12-31)") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
