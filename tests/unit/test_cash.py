"""Cash by mail (docs/cash.md): the token's form and check symbol, its lifetime with an
injected clock, and the service over the in-memory unit of work (no database)."""

import hashlib
import itertools
import logging
import random
import string
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.cash import (
    ALPHABET,
    DATA_SYMBOLS,
    CashRules,
    Envelope,
    TokenState,
    TokenUnusable,
    check_symbol,
    erase_due,
    issue,
    new_token,
    normalize,
)
from gateway.domain.credit import CREDITS, CreditKind
from gateway.domain.errors import InvalidInput
from gateway.services.cash import CashInstructions, CashService
from gateway.services.errors import Conflict, NotFound
from tests.support.memory import MemoryStore

T0 = datetime(2026, 12, 1, tzinfo=UTC)
RULES = CashRules(valid_for=timedelta(days=120), keep_used=timedelta(days=40))


def seeded(seed: int = 1) -> "random.Random":
    return random.Random(seed)


def tokens(n: int, seed: int = 1) -> list[str]:
    rng = seeded(seed)
    return [new_token(lambda k: [rng.randrange(31) for _ in range(k)]) for _ in range(n)]


def test_the_token_is_short_grouped_and_unambiguous() -> None:
    for token in tokens(200):
        assert len(token) == 14 and token[4] == token[9] == "-"
        assert not set(token.replace("-", "")) & set("01ILO")
        assert normalize(token) == token.replace("-", "")
        assert normalize(f"  {token.lower()[:7]} {token.lower()[7:]} ") == normalize(token)
    assert len(ALPHABET) == 31 and not set(ALPHABET) & set("01ILO")
    # 31**11 tokens: about 54 bits; the docs' arithmetic rests on it.
    assert 2**54 < 31**DATA_SYMBOLS < 2**55


def test_every_single_typo_and_every_neighbour_swap_is_caught() -> None:
    for token in tokens(60, seed=7):
        plain = normalize(token)
        for i, c in itertools.product(range(len(plain)), ALPHABET):
            if c != plain[i]:
                with pytest.raises(InvalidInput, match="a character is wrong"):
                    normalize(plain[:i] + c + plain[i + 1:])
        for i in range(len(plain) - 1):  # the check symbol's neighbour included
            if plain[i] != plain[i + 1]:
                swapped = plain[:i] + plain[i + 1] + plain[i] + plain[i + 2:]
                with pytest.raises(InvalidInput, match="two are swapped"):
                    normalize(swapped)


def test_malformed_input_says_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match="12 characters"):
        normalize("ABCD-EFGH")
    with pytest.raises(InvalidInput, match="'0', 'O'"):
        normalize("ABCD-EFGH-JK0O")
    data = "ABCDEFGHJKM"
    assert normalize(data + check_symbol(data)) == data + check_symbol(data)
    with pytest.raises(InvalidInput):
        normalize("".join(random.choice(string.punctuation) for _ in range(12)))


def test_the_token_carries_nothing_of_the_account() -> None:
    """It is drawn from the random source alone: the same draws give the same token
    whoever asks."""
    assert tokens(3, seed=5) == tokens(3, seed=5)
    assert len(set(tokens(2000, seed=9))) == 2000


def test_lifetime_open_used_expired_and_when_it_is_erased() -> None:
    token = issue("ctk_1", "acc_1", T0, RULES)
    assert token.expires_at == T0 + timedelta(days=120)
    assert token.state(T0 + timedelta(days=119)) is TokenState.OPEN
    assert token.state(T0 + timedelta(days=120)) is TokenState.EXPIRED
    assert token.erase_at(RULES) == T0 + timedelta(days=120)
    assert not erase_due(token, RULES, T0 + timedelta(days=119))
    assert erase_due(token, RULES, T0 + timedelta(days=120))

    at = T0 + timedelta(days=100)
    used = token.used(Envelope(5000, "EUR", "stf_1", at, "note"))
    assert used.state(T0 + timedelta(days=500)) is TokenState.USED
    assert used.erase_at(RULES) == at + timedelta(days=40)
    assert not erase_due(used, RULES, at + timedelta(days=39))
    assert erase_due(used, RULES, at + timedelta(days=40))
    with pytest.raises(TokenUnusable, match="used already"):
        used.used(Envelope(5000, "EUR", "stf_2", at, None))
    with pytest.raises(TokenUnusable, match="expired unused"):
        token.used(Envelope(5000, "EUR", "stf_1", T0 + timedelta(days=121), None))
    with pytest.raises(ValueError):
        issue("ctk_2", "acc_1", datetime(2026, 1, 1), RULES)


def test_cash_is_a_credit() -> None:
    assert CreditKind.CASH.value == "cash" and CreditKind.CASH in CREDITS


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def index(value: str) -> str:
    return hashlib.sha256(b"k" + value.encode()).hexdigest()


async def test_the_service_over_the_memory_unit(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.domain.accounts import Account
    from gateway.services.ports import Profile

    caplog.set_level(logging.INFO, logger="gateway")
    store, clock = MemoryStore(), Clock()
    async with store.unit(clock) as uow:
        await uow.accounts.add(Account("acc_1", T0, "nl-ams", "EUR"),
                               Profile("a@example.org"), "idx", "hash", "v1")
        await uow.commit()
    off = CashService(lambda: store.unit(clock), clock=clock, rules=RULES, index=index,
                      instructions=None)
    with pytest.raises(Conflict, match="not offered"):
        await off.new_token("acc_1")
    cash = CashService(lambda: store.unit(clock), clock=clock, rules=RULES, index=index,
                       instructions=CashInstructions("PO Box 1", None, 120))
    issued = await cash.new_token("acc_1")
    [(kept, digest)] = store.state.cash_tokens.values()
    assert digest == index("cash-token:" + normalize(issued.token)) and kept == issued.record
    with pytest.raises(NotFound):
        await cash.new_token("acc_nobody")
    with pytest.raises(InvalidInput, match="at most 200"):
        await cash.record(issued.token, "1.00", "EUR", "x" * 201, "stf_1")
    with pytest.raises(InvalidInput, match=r"envelope\.amount"):
        await cash.record(issued.token, "1.005", "EUR", None, "stf_1")
    done = await cash.record(issued.token, "12.50", "EUR", " in  an envelope ", "stf_1")
    assert done.balance == 1250 and done.entry.cause == f"cash:{issued.record.id}"
    assert store.state.cash_tokens[issued.record.id][0].note == "in an envelope"
    with pytest.raises(TokenUnusable):
        await cash.record(issued.token, "12.50", "EUR", None, "stf_1")
    assert store.event_types().count("account.credited") == 1
    assert await cash.open_token("acc_1") is None
    # The log names the token's id, never the token, and never with its account: the
    # token row is the only link between envelope and account, and it is erased.
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("gateway"))
    assert issued.record.id in logged
    assert normalize(issued.token) not in logged.replace("-", "") and "acc_1" not in logged
