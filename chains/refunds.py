"""Refunds without a key on the server: what a chain family gives the operator's own
wallet to sign and send, and how the gateway then recognises the refund on the chain.

The gateway never signs. A follower that can help with refunds implements `Refundable`:
it checks the customer's address, names the bytes a payment to it is matched on (so the
follower loop watches it like one of our own), and prepares the instructions: a PSBT
(BIP 174) for UTXO coins, a payment request (EIP-681) for EVM coins and tokens, a
`monero:` URI for Monero. Monero cannot watch someone else's address; its follower
implements `TxKeyCheckable`, and the operator enters the txid and the tx key."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class BadRefundAddress(ValueError):
    """The address is not one this coin's network can pay; the message says why in the
    customer's words and is safe to show."""


class CannotPrepare(Exception):
    """The refund cannot be prepared as asked (not enough seen outputs to spend, the
    amount below the coin's dust, the node gave no fee rate); the message says which."""


@dataclass(frozen=True)
class Spendable:
    """An output the gateway saw paid to one of its own addresses: what a PSBT may spend.
    `index` is the address's index below the configured xpub's receive branch (m/../0/i)."""

    txid: str
    output_index: int
    amount: int  # base units
    match_key: bytes  # its scriptPubKey
    index: int


@dataclass(frozen=True)
class RefundInstructions:
    coin: str
    address: str  # the customer's, as normalised by `check_address`
    amount: int  # base units the customer receives
    uri: str  # BIP 21, EIP-681 or monero: (a QR code shows it)
    psbt: str | None = None  # base64, UTXO coins only
    fee: int | None = None  # base units, when the PSBT fixes it
    spends: tuple[tuple[str, int], ...] = ()  # the outpoints the PSBT spends
    chain_id: int | None = None  # EVM


@runtime_checkable
class Refundable(Protocol):
    def check_address(self, coin: str, address: str) -> str:
        """The address, normalised (checksummed, lower-case bech32, ...); raises
        `BadRefundAddress` when it is not one of this coin's network."""
        ...

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        """What a payment to `address` is matched on, for the watched set; None when this
        family cannot watch someone else's address."""
        ...

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        """What the operator's wallet signs and sends. `change_index`: the index below the
        xpub's change branch (m/../1/k) change goes back to. Raises `CannotPrepare`."""
        ...


@dataclass(frozen=True)
class TxKeyCheck:
    received: int  # base units the transaction pays to the address, as the tx key proves
    confirmations: int
    in_pool: bool


@runtime_checkable
class TxKeyCheckable(Protocol):
    async def check_tx_key(self, txid: str, tx_key: str, address: str) -> TxKeyCheck:
        """Proves, without any spend key, what `txid` paid to `address` (Monero
        `check_tx_key`). Raises `BadRefundAddress` or `CannotPrepare` with a clear message
        when the txid or the key is wrong."""
        ...
