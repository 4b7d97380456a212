"""What the refund service asks of a coin's chain family (`services.ports.refunds.
RefundChains`): its follower's `chains.refunds.Refundable` when it implements it. A
follower that does not checks no address and prepares no PSBT: the quote then carries
only the amount, which the operator pays by hand (docs/refunds.md)."""

import logging
from collections.abc import Mapping, Sequence

from chains.base import Destination
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    Refundable,
    Spendable,
    TxKeyCheckable,
)
from gateway.adapters.chain_directory import ChainDirectory
from gateway.domain.errors import InvalidInput
from gateway.domain.money import format_units
from gateway.domain.refunds import Quote
from gateway.services.ports.refunds import PaidOutput, ProvenPayment, WatchTarget

log = logging.getLogger(__name__)


class FollowerRefunds:
    def __init__(self, directory: ChainDirectory,
                 confirmations: Mapping[str, int] | None = None) -> None:
        self._directory = directory
        self._confirmations = dict(confirmations or {})

    def watch_target(self, coin: str, address: str) -> WatchTarget | None:
        refundable = self._refundable(coin)
        key = refundable.refund_match_key(coin, address) if refundable is not None else None
        if key is None:
            return None
        return WatchTarget(key, self._directory.follower(coin).address_space,
                           self.confirmations(coin))

    def confirmations(self, coin: str) -> int:
        return self._confirmations.get(coin, 1)

    def _refundable(self, coin: str) -> Refundable | None:
        follower = self._directory.follower(coin)
        return follower if isinstance(follower, Refundable) else None

    def check_address(self, coin: str, address: str) -> str:
        refundable = self._refundable(coin)
        if refundable is None:
            return address
        try:
            return refundable.check_address(coin, address)
        except BadRefundAddress as exc:
            raise InvalidInput("address", str(exc) or f"not a {coin} address") from None

    async def prepare(self, coin: str, address: str, amount: int,
                      spendable: Sequence[PaidOutput], change_index: int,
                      rate: str) -> Quote:
        refundable = self._refundable(coin)
        if refundable is None:
            decimals = self._directory.decimals(coin)
            return Quote(amount, rate, f"{coin}: pay {format_units(amount, decimals)} "
                                       f"{coin} to the address shown")
        outputs = [Spendable(p.txid, p.output_index, p.amount, p.match_key, p.index)
                   for p in spendable]
        try:
            made = await refundable.prepare_refund(coin, address, amount, outputs,
                                                   change_index)
        except CannotPrepare as exc:
            # No PSBT (the outputs the gateway saw do not cover it, no fee estimate): the
            # operator pays the payment request from their wallet's other funds, and the
            # watcher sees it all the same. Approving is never blocked by it.
            log.warning("refunds: no PSBT for a %s refund (%s); the payment request only",
                        coin, exc)
            follower = self._directory.follower(coin)
            uri = follower.payment_uri(Destination(-1, address, b""), coin, amount)
            return Quote(amount, rate, uri)
        return Quote(made.amount, rate, made.uri, made.psbt, made.fee, made.spends,
                     change_index if made.psbt is not None else None)

    def proves_payments(self, coin: str) -> bool:
        return isinstance(self._directory.follower(coin), TxKeyCheckable)

    async def check_tx_key(self, coin: str, txid: str, tx_key: str,
                           address: str) -> ProvenPayment:
        follower = self._directory.follower(coin)
        if not isinstance(follower, TxKeyCheckable):
            raise InvalidInput("tx_key", f"{coin} refunds are matched on the chain; no tx "
                                         "key is needed")
        try:
            check = await follower.check_tx_key(txid, tx_key, address)
        except (BadRefundAddress, CannotPrepare) as exc:
            raise InvalidInput("tx_key", str(exc) or "the txid or tx key is wrong") from None
        return ProvenPayment(check.received, check.confirmations)
