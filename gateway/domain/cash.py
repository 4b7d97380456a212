"""Cash by mail (docs/cash.md): the one-time payment token a customer writes on a slip in
the envelope, and its lifetime. Pure: the randomness and the clock are passed in.

A token is 11 random symbols and one check symbol from an alphabet of 31 that has no
symbol a person confuses with another (no 0/O, 1/I/L), written in three groups of four:
`K7QM-3XRT-9HWC`. 31**11 is about 2**54.5 tokens. The check symbol is a weighted sum
modulo 31 (a prime, with distinct non-zero weights): it catches every single wrong
symbol and every swap of two neighbours, so a typo is refused before any lookup. The
token says nothing about its account: it is random, and stored only as a keyed hash."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.domain.errors import InvalidInput

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols: 0, 1, I, L and O left out
assert len(ALPHABET) == 31
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
DATA_SYMBOLS = 11
GROUP = 4
TOKEN_CHARS = DATA_SYMBOLS + 1


class TokenState(StrEnum):
    OPEN = "open"  # waiting for its envelope
    USED = "used"  # an envelope was recorded with it
    EXPIRED = "expired"  # not used in time: no envelope is recorded with it any more


def check_symbol(data: str) -> str:
    """The symbol that makes sum(weight * value) == 0 modulo 31, the weights of the data
    symbols being 2, 3, ... and the check symbol's 1: all distinct and non-zero modulo 31,
    so one wrong symbol or two neighbours swapped (the check symbol included) change the
    sum."""
    total = sum((i + 2) * _VALUE[c] for i, c in enumerate(data))
    return ALPHABET[(-total) % 31]


def new_token(random_symbols: Callable[[int], list[int]]) -> str:
    """A fresh token, grouped for reading; `random_symbols(n)` gives n integers in
    [0, 31) from a secure source (`secrets.randbelow`)."""
    data = "".join(ALPHABET[v] for v in random_symbols(DATA_SYMBOLS))
    return grouped(data + check_symbol(data))


def grouped(token: str) -> str:
    return "-".join(token[i:i + GROUP] for i in range(0, len(token), GROUP))


def normalize(text: str) -> str:
    """The canonical form of a typed token (upper case, no blanks or dashes), or
    InvalidInput saying what is wrong: a typo is caught here, before any lookup."""
    plain = "".join(text.split()).replace("-", "").upper()
    if len(plain) != TOKEN_CHARS:
        raise InvalidInput("token", f"a token has {TOKEN_CHARS} characters "
                           f"(three groups of four); got {len(plain)}")
    wrong = sorted({c for c in plain if c not in _VALUE})
    if wrong:
        raise InvalidInput("token", "a token uses only the letters and digits 2-9 A-Z "
                           "without I, L and O; got " + ", ".join(repr(c) for c in wrong))
    if check_symbol(plain[:-1]) != plain[-1]:
        raise InvalidInput("token", "this is not a valid token: a character is wrong or "
                           "two are swapped; check it against the slip")
    return plain


@dataclass(frozen=True)
class CashRules:
    """`[cash]`: how long a token may be used, and how long it is kept after use."""

    valid_for: timedelta = timedelta(days=120)
    keep_used: timedelta = timedelta(days=40)


@dataclass(frozen=True)
class Envelope:
    """What staff recorded from one envelope."""

    amount: int  # minor units of `currency`
    currency: str
    staff_id: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class CashToken:
    """A token as stored: never the token itself (its keyed hash is the store's key)."""

    id: str
    account_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    amount: int | None = None
    currency: str | None = None
    staff_id: str | None = None
    note: str | None = None

    def state(self, now: datetime) -> TokenState:
        if self.used_at is not None:
            return TokenState.USED
        return TokenState.OPEN if now < self.expires_at else TokenState.EXPIRED

    def erase_at(self, rules: CashRules) -> datetime:
        """When the token (the only link between an envelope and its account) goes:
        `keep_used` after its use, or at the end of its validity when never used."""
        if self.used_at is not None:
            return self.used_at + rules.keep_used
        return self.expires_at

    def used(self, envelope: Envelope) -> "CashToken":
        """The token with its envelope recorded; refused unless it is open."""
        state = self.state(envelope.at)
        if state is TokenState.USED:
            raise TokenUnusable("this token was used already: its envelope is recorded")
        if state is TokenState.EXPIRED:
            raise TokenUnusable("this token expired unused: ask the customer for a new one")
        if envelope.amount <= 0:
            raise InvalidInput("amount", "must be greater than zero")
        return CashToken(self.id, self.account_id, self.created_at, self.expires_at,
                         envelope.at, envelope.amount, envelope.currency, envelope.staff_id,
                         envelope.note)


def issue(token_id: str, account_id: str, now: datetime, rules: CashRules) -> CashToken:
    if now.tzinfo is None:
        raise ValueError("now must be UTC-aware")
    return CashToken(token_id, account_id, now, now + rules.valid_for)


def erase_due(token: CashToken, rules: CashRules, now: datetime) -> bool:
    return token.erase_at(rules) <= now


class TokenUnusable(InvalidInput):
    def __init__(self, detail: str) -> None:
        super().__init__("token", detail)
