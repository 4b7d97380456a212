"""The refund service's view of the chains (gateway/adapters/refund_chains.py): a follower
that implements `chains.refunds.Refundable` checks the address and prepares the
instructions, its errors in the customer's and the operator's words; one that does not
leaves the address as given and the amount to pay by hand. A test double of the
Protocol stands in for the families (the chain side builds the real ones)."""

from collections.abc import Sequence
from typing import Any

import pytest

from chains.base import Destination
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    RefundInstructions,
    Spendable,
    TxKeyCheck,
)
from gateway.adapters.chain_directory import ChainDirectory
from gateway.adapters.refund_chains import FollowerRefunds
from gateway.domain.errors import InvalidInput
from gateway.services.ports.refunds import PaidOutput

OUT = PaidOutput("aa" * 32, 1, 50_000, b"\x00\x14" + bytes(20), 7)


class Plain:
    """A follower with no refund support."""

    feed = "plain"

    def __init__(self, coin: str) -> None:
        self.coins = (coin,)

    def decimals(self, coin: str) -> int:
        return 8

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        return f"{coin.lower()}:{destination.address}?amount={base_units}"

    async def aclose(self) -> None: ...


class Refunding(Plain):
    def __init__(self, coin: str) -> None:
        super().__init__(coin)
        self.spent: list[Spendable] = []

    def check_address(self, coin: str, address: str) -> str:
        if not address.lower().startswith("rltc1"):
            raise BadRefundAddress("not a Litecoin regtest address")
        return address.lower()

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        return b"k"

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        if amount > sum(s.amount for s in spendable):
            raise CannotPrepare("the seen outputs hold less than the refund")
        self.spent = list(spendable)
        return RefundInstructions(coin, address, amount, f"litecoin:{address}?amount=x",
                                  psbt="cHNidP8=", fee=141,
                                  spends=tuple((s.txid, s.output_index) for s in spendable))


class Proving(Plain):
    async def check_tx_key(self, txid: str, tx_key: str, address: str) -> TxKeyCheck:
        if tx_key != "good":
            raise CannotPrepare("the tx key does not match the transaction")
        return TxKeyCheck(1234, 2, False)


def chains(*followers: Any) -> FollowerRefunds:
    return FollowerRefunds(ChainDirectory(followers))


async def test_a_refundable_follower_checks_and_prepares() -> None:
    follower = Refunding("LTC")
    refunds = chains(follower)
    assert refunds.check_address("LTC", "RLTC1QABC") == "rltc1qabc"
    with pytest.raises(InvalidInput, match="not a Litecoin regtest address") as caught:
        refunds.check_address("LTC", "bc1qxyz")
    assert caught.value.field == "address"
    quote = await refunds.prepare("LTC", "rltc1qabc", 40_000, [OUT], 3, "80")
    assert (quote.crypto_amount, quote.rate, quote.psbt, quote.fee, quote.change_index) == (
        40_000, "80", "cHNidP8=", 141, 3)
    assert quote.spends == (("aa" * 32, 1),)
    assert follower.spent == [Spendable("aa" * 32, 1, 50_000, OUT.match_key, 7)]
    # What the seen outputs cannot cover is still approved: the payment request alone,
    # which the operator pays from other funds.
    bare = await refunds.prepare("LTC", "rltc1qabc", 60_000, [OUT], 3, "80")
    assert (bare.crypto_amount, bare.psbt, bare.spends, bare.change_index) == (
        60_000, None, (), None)
    assert bare.uri == "ltc:rltc1qabc?amount=60000"
    assert not refunds.proves_payments("LTC")


async def test_a_plain_follower_leaves_the_amount_to_pay_by_hand() -> None:
    refunds = chains(Plain("DOGE"))
    assert refunds.check_address("DOGE", "anything") == "anything"
    quote = await refunds.prepare("DOGE", "Dxyz", 150_000_000, [], 0, "0.1")
    assert quote.psbt is None and quote.change_index is None
    assert quote.uri == "DOGE: pay 1.5 DOGE to the address shown"


async def test_a_tx_key_is_checked_by_the_follower_that_can() -> None:
    refunds = chains(Proving("XMR"), Plain("LTC"))
    assert refunds.proves_payments("XMR") and not refunds.proves_payments("LTC")
    proven = await refunds.check_tx_key("XMR", "ab" * 32, "good", "4addr")
    assert (proven.received, proven.confirmations) == (1234, 2)
    with pytest.raises(InvalidInput, match="does not match"):
        await refunds.check_tx_key("XMR", "ab" * 32, "bad", "4addr")
    with pytest.raises(InvalidInput, match="matched on the chain"):
        await refunds.check_tx_key("LTC", "ab" * 32, "good", "ltc1q")
