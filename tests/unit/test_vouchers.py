"""Voucher codes (gateway/domain/vouchers.py): generation, the check character, the
normalisation of what a customer types, and the batch's states."""

import math
import random
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.errors import InvalidInput
from gateway.domain.money import Fiat
from gateway.domain.vouchers import (
    ALPHABET,
    ENTROPY_BITS,
    GROUP_SIZE,
    GROUPS,
    LENGTH,
    TYPO,
    CodeRefused,
    Voucher,
    VoucherBatch,
    VoucherState,
    check_character,
    generate,
    grouped,
    hash_input,
    normalise,
    voucher_cause,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def codes(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [generate(rng.randrange) for _ in range(n)]


def test_the_alphabet_is_crockford_base32_with_nothing_ambiguous() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set(ALPHABET) & set("ILOU")
    assert ALPHABET == "".join(sorted(ALPHABET))


def test_a_code_carries_at_least_80_bits_of_entropy() -> None:
    # 19 characters are random, each one of 32: 19 x log2(32) = 95 bits.
    assert ENTROPY_BITS == (LENGTH - 1) * math.log2(len(ALPHABET)) == 95
    assert ENTROPY_BITS >= 80


def test_generated_codes_are_four_groups_of_five_from_the_alphabet() -> None:
    code = generate(secrets.randbelow)
    groups = code.split("-")
    assert len(groups) == GROUPS == 4
    assert all(len(g) == GROUP_SIZE == 5 for g in groups)
    assert set(code.replace("-", "")) <= set(ALPHABET)
    assert normalise(code) == code.replace("-", "")


def test_every_random_character_uses_the_whole_alphabet() -> None:
    seen = [set() for _ in range(LENGTH - 1)]  # type: list[set[str]]
    for code in codes(2000):
        for i, c in enumerate(code.replace("-", "")[:-1]):
            seen[i].add(c)
    assert all(s == set(ALPHABET) for s in seen)


def test_two_thousand_codes_are_all_different_with_secrets() -> None:
    made = {generate(secrets.randbelow) for _ in range(2000)}
    assert len(made) == 2000


def test_the_check_character_completes_the_code() -> None:
    for code in codes(50):
        plain = code.replace("-", "")
        assert check_character(plain[:-1]) == plain[-1]


@pytest.mark.parametrize("code", codes(20, seed=3))
def test_every_single_substitution_is_caught(code: str) -> None:
    plain = code.replace("-", "")
    for i in range(LENGTH):
        for c in ALPHABET:
            if c == plain[i]:
                continue
            typo = plain[:i] + c + plain[i + 1:]
            with pytest.raises(CodeRefused, match="typo"):
                normalise(typo)


@pytest.mark.parametrize("code", codes(20, seed=4))
def test_every_adjacent_swap_is_caught(code: str) -> None:
    plain = code.replace("-", "")
    for i in range(LENGTH - 1):
        if plain[i] == plain[i + 1]:
            continue  # nothing changes
        swapped = plain[:i] + plain[i + 1] + plain[i] + plain[i + 2:]
        with pytest.raises(CodeRefused, match="typo"):
            normalise(swapped)


def valid(body: str) -> str:
    return body + check_character(body)


def test_every_adjacent_swap_of_every_pair_of_characters_is_caught() -> None:
    # Not only on sample codes: every pair of different characters at every position,
    # the swap of the last random character with the check character included.
    body = codes(1, seed=5)[0].replace("-", "")[:-1]
    for i in range(LENGTH - 2):
        for a in ALPHABET:
            for b in ALPHABET:
                if a != b:
                    code = valid(body[:i] + a + b + body[i + 2:])
                    with pytest.raises(CodeRefused):
                        normalise(code[:i] + b + a + code[i + 2:])
    for a in ALPHABET:
        code = valid(body[:-1] + a)
        if code[-1] != code[-2]:
            with pytest.raises(CodeRefused):
                normalise(code[:-2] + code[-1] + code[-2])


def test_normalisation_forgives_case_spaces_dashes_and_crockford_aliases() -> None:
    code = "0" + codes(1, seed=9)[0].replace("-", "")[1:]
    plain = code[:-1] + check_character(code[:-1])
    typed = " " + grouped(plain).lower().replace("-", " - ") + "\t"
    assert normalise(typed) == plain
    assert normalise(plain.replace("0", "o").replace("1", "l")) == plain
    assert normalise(plain.replace("1", "I")) == plain
    assert normalise(grouped(plain).replace("-", "\u2013")) == plain


def test_a_code_of_the_wrong_length_says_how_long_a_code_is() -> None:
    with pytest.raises(CodeRefused, match="20 characters") as raised:
        normalise("ABCDE-FGHJK")
    assert raised.value.field == "code"
    with pytest.raises(CodeRefused, match="20 characters"):
        normalise("")


def test_a_character_outside_the_alphabet_is_a_typo() -> None:
    plain = codes(1)[0].replace("-", "")
    with pytest.raises(CodeRefused) as raised:
        normalise("U" + plain[1:])
    assert raised.value.detail == TYPO


def test_the_hash_input_is_named_apart_from_other_blind_indexes() -> None:
    assert hash_input("ABC") == "voucher:ABC"
    assert voucher_cause("vou_1") == "voucher:vou_1"


def batch(**kw: object) -> VoucherBatch:
    args: dict[str, object] = {"id": "vbt_1", "created_at": T0, "count": 3,
                               "value": Fiat(1000, "EUR")}
    args.update(kw)
    return VoucherBatch(**args)  # type: ignore[arg-type]


def test_a_batch_is_active_then_expired_or_revoked() -> None:
    b = batch(expires_at=T0 + timedelta(days=1))
    assert b.state(T0) is VoucherState.ACTIVE
    assert b.state(T0 + timedelta(days=1)) is VoucherState.EXPIRED
    assert batch(revoked_at=T0).state(T0) is VoucherState.REVOKED
    v = Voucher("vou_1", "vbt_1")
    assert v.state(b, T0) is VoucherState.ACTIVE
    used = Voucher("vou_1", "vbt_1", redeemed_at=T0, redeemed_by="acc_1")
    assert used.state(b, T0) is VoucherState.REDEEMED


@pytest.mark.parametrize("kw, field", [
    ({"count": 0}, "count"), ({"count": 10_001}, "count"),
    ({"value": Fiat(0, "EUR")}, "value"), ({"plan": "pro"}, "periods"),
    ({"periods": 2}, "periods"), ({"plan": "pro", "periods": 37}, "periods"),
    ({"label": "x" * 201}, "label")])
def test_a_batch_refuses_what_cannot_be_sold(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        batch(**kw)
    assert raised.value.field == field


def test_a_plan_batch_names_its_periods() -> None:
    b = batch(plan="pro", periods=2)
    assert (b.plan, b.periods) == ("pro", 2)


def test_an_expiry_date_means_through_that_day_in_utc() -> None:
    from gateway.domain.vouchers import expiry_of

    assert expiry_of("2027-12-31") == datetime(2028, 1, 1, tzinfo=UTC)
    assert expiry_of("2027-12-31T12:00:00Z") == datetime(2027, 12, 31, 12, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="expires"):
        expiry_of("2027-12-31T12:00:00")  # no zone
    with pytest.raises(InvalidInput, match="expires"):
        expiry_of("next year")
