"""A refund as a PSBT: which seen outputs to spend, the fee, the change, and the PSBT
itself with the BIP 32 derivation of every key of ours. Pure functions, no I/O: the
adapter asks the node for the fee rate and hands it in.

Sizes are those of P2WPKH inputs signed with a 72-byte signature (the largest DER
signature; Core's low-R signatures are 71, so the fee rate paid is at least the one
asked). Inputs and outputs are in BIP 69 order (a wallet's own order tells nothing)."""

from collections.abc import Sequence
from dataclasses import dataclass

from chains.hd import KeyOrigin, change_key, hash160, receive_key
from chains.refunds import CannotPrepare, Spendable
from chains.utxo.psbt import Input, KeyPath, Output, to_base64

# Weight units (BIP 141): non-witness bytes count 4, witness bytes 1.
_OVERHEAD_WEIGHT = (4 + 1 + 1 + 4) * 4 + 2  # version, counts, lock time; marker and flag
_INPUT_WEIGHT = (32 + 4 + 1 + 4) * 4 + (1 + 1 + 72 + 1 + 33)  # outpoint..sequence; witness
MAX_INPUTS = 500  # far below the standard weight limit (400,000)


def p2wpkh_script(key: bytes) -> bytes:
    return b"\x00\x14" + hash160(key)


def _output_weight(script: bytes) -> int:
    return (8 + 1 + len(script)) * 4


def fee_for(weight: int, rate_per_kvb: int) -> int:
    """Base units at `rate_per_kvb` (per 1000 virtual bytes), rounded up."""
    vbytes = -(-weight // 4)
    return -(-vbytes * rate_per_kvb // 1000)


def _is_witness_program(script: bytes) -> bool:
    return (4 <= len(script) <= 42 and (script[0] == 0 or 0x51 <= script[0] <= 0x60)
            and script[1] == len(script) - 2)


def dust_threshold(script: bytes, dust_relay_fee: int) -> int:
    """The smallest output value a node relays (Bitcoin Core's GetDustThreshold): what
    spending it later would cost at the dust relay fee."""
    size = 8 + 1 + len(script)
    size += 32 + 4 + 1 + 107 // 4 + 4 if _is_witness_program(script) else 32 + 4 + 1 + 107 + 4
    return size * dust_relay_fee // 1000


@dataclass(frozen=True)
class Plan:
    spends: tuple[Spendable, ...]
    fee: int
    change: int  # 0: no change output (what was left below dust went to the fee)


@dataclass(frozen=True)
class Ask:
    """What a refund needs, as the plan sees it."""

    amount: int
    to_script: bytes
    change_script: bytes
    rate_per_kvb: int
    dust_relay_fee: int

    def settle(self, spends: Sequence[Spendable]) -> Plan | None:
        """The plan spending exactly `spends`, or None when they do not cover the
        amount and the fee."""
        total = sum(s.amount for s in spends)
        base = (_OVERHEAD_WEIGHT + len(spends) * _INPUT_WEIGHT
                + _output_weight(self.to_script))
        with_change = fee_for(base + _output_weight(self.change_script), self.rate_per_kvb)
        change = total - self.amount - with_change
        if change >= dust_threshold(self.change_script, self.dust_relay_fee):
            return Plan(tuple(spends), with_change, change)
        if total - self.amount >= fee_for(base, self.rate_per_kvb):
            return Plan(tuple(spends), total - self.amount, 0)
        return None


def plan_refund(ask: Ask, spendable: Sequence[Spendable]) -> Plan:
    """The smallest single output that pays it all, else the largest ones until they
    do. Raises CannotPrepare when the amount is dust or the outputs do not cover it."""
    dust = dust_threshold(ask.to_script, ask.dust_relay_fee)
    if ask.amount < dust:
        raise CannotPrepare(f"the amount {ask.amount} is below the dust limit ({dust} base "
                            "units): no node would relay it")
    unique = {(s.txid, s.output_index): s for s in spendable}
    ordered = sorted(unique.values(), key=lambda s: (s.amount, s.txid, s.output_index))
    for single in ordered:
        plan = ask.settle([single])
        if plan is not None:
            return plan
    chosen: list[Spendable] = []
    for s in reversed(ordered[-MAX_INPUTS:]):
        chosen.append(s)
        plan = ask.settle(chosen)
        if plan is not None:
            return plan
    total = sum(s.amount for s in chosen)
    need = ask.amount + fee_for(_OVERHEAD_WEIGHT + len(chosen) * _INPUT_WEIGHT
                                + _output_weight(ask.to_script), ask.rate_per_kvb)
    raise CannotPrepare(f"the outputs seen paid to our addresses ({len(chosen)}, "
                        f"{total} base units) do not cover the amount and the fee ({need})")


def _key_path(origin: KeyOrigin, key: bytes, branch: int, index: int) -> KeyPath:
    return KeyPath(key, origin.fingerprint, (*origin.path, branch, index))


def build_psbt(xpub: str, origin: KeyOrigin, plan: Plan, amount: int, to_script: bytes,
               change_index: int) -> str:
    """The PSBT (base64) of `plan`: every input's key checked against the output it
    spends (a spendable that is not ours at its index raises CannotPrepare)."""
    inputs = []
    for s in plan.spends:
        key = receive_key(xpub, s.index).key
        if p2wpkh_script(key) != s.match_key:
            raise CannotPrepare(f"output {s.txid}:{s.output_index} does not pay our "
                                f"address {s.index} of the configured xpub")
        inputs.append(Input(s.txid, s.output_index, s.amount, s.match_key,
                            _key_path(origin, key, 0, s.index)))
    outputs = [Output(amount, to_script)]
    if plan.change:
        key = change_key(xpub, change_index).key
        outputs.append(Output(plan.change, p2wpkh_script(key),
                              _key_path(origin, key, 1, change_index)))
    inputs.sort(key=lambda i: (i.txid, i.vout))
    outputs.sort(key=lambda o: (o.amount, o.script))
    return to_base64(inputs, outputs)
