"""The UTXO follow loop's steps against a scripted node (no I/O): where the cursor
stands, the next block, a disconnected block's payments, mempool payments, and the wait
for a notification. The loop itself runs on a real litecoind in tests/contract."""

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from chains.base import MATCH_POINT, BlockDisconnected, BlockRef
from chains.jsonrpc import JsonRpcClient, JsonRpcError
from chains.networks import NETWORKS
from chains.utxo.adapter import UtxoChain
from chains.utxo.notify import Wakeup
from tests.support.keys import random_xpub

WATCHED = b"\x00\x14" + b"\xaa" * 20
OTHER = b"\x00\x14" + b"\xbb" * 20


class ScriptedRpc(JsonRpcClient):
    """Answers from a table (a value, or a function of the call's parameters)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("http://127.0.0.1:1")
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def call(self, method: str, *params: Any) -> Any:
        self.calls.append((method, params))
        answer = self.answers[method]
        return answer(*params) if callable(answer) else answer


def chain(answers: dict[str, Any]) -> tuple[UtxoChain, ScriptedRpc]:
    rpc = ScriptedRpc(answers)
    return UtxoChain("LTC", NETWORKS["litecoin-regtest"], xpub=random_xpub(), rpc=rpc), rpc


def transaction(*outputs: tuple[int, bytes]) -> tuple[bytes, str]:
    vin = b"\x01" + b"\x33" * 36 + b"\x00" + b"\xff" * 4
    vout = bytes([len(outputs)]) + b"".join(
        v.to_bytes(8, "little") + bytes([len(s)]) + s for v, s in outputs)
    raw = b"\x02\x00\x00\x00" + vin + vout + b"\x00" * 4
    return raw, hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1].hex()


def raw_block(parent: str, *txs: bytes) -> bytes:
    header = (b"\x00\x00\x00\x20" + bytes.fromhex(parent)[::-1] + b"\x22" * 32
              + (1_700_000_000).to_bytes(4, "little") + b"\x00" * 8)
    return header + bytes([len(txs)]) + b"".join(txs)


def by_height(hashes: dict[int, str]) -> Callable[[int], str]:
    return lambda height: hashes[height]


async def test_the_cursor_is_on_the_main_chain_only_by_its_hash() -> None:
    utxo, rpc = chain({"getblockcount": 10, "getblockhash": by_height({5: "aa" * 32})})
    assert await utxo._main_chain_height(BlockRef(5, "aa" * 32)) == 10
    assert await utxo._main_chain_height(BlockRef(5, "bb" * 32)) is None  # reorged
    rpc.calls.clear()
    assert await utxo._main_chain_height(BlockRef(11, "aa" * 32)) is None  # above the tip
    assert [m for m, _ in rpc.calls] == ["getblockcount"]


async def test_the_next_block_must_build_on_the_cursor() -> None:
    cursor = BlockRef(5, "aa" * 32)
    good, other = raw_block(cursor.hash), raw_block("cc" * 32)
    blocks = {"b6" * 32: good, "c6" * 32: other}
    utxo, _ = chain({"getblockhash": by_height({6: "b6" * 32}),
                     "getblock": lambda h, verbosity: blocks[h].hex()})
    assert await utxo._next_block(cursor) == (BlockRef(6, "b6" * 32), good)
    utxo, _ = chain({"getblockhash": by_height({6: "c6" * 32}),
                     "getblock": lambda h, verbosity: blocks[h].hex()})
    assert await utxo._next_block(cursor) is None  # a reorg between two calls


async def test_a_disconnected_block_names_its_watched_transactions_once() -> None:
    paying, txid = transaction((5, WATCHED), (6, WATCHED))
    unpaid, _ = transaction((7, OTHER))
    stale = BlockRef(6, "dd" * 32)
    utxo, _ = chain({})
    event = await utxo._disconnect(stale, raw_block("ee" * 32, paying, unpaid), {WATCHED})
    assert event == BlockDisconnected(stale, "ee" * 32, (txid,))


async def test_connecting_a_block_matches_its_outputs() -> None:
    paying, txid = transaction((7, OTHER), (5, WATCHED))
    cursor, ref = BlockRef(5, "aa" * 32), BlockRef(6, "bb" * 32)
    utxo, _ = chain({})
    event = await utxo._connect(cursor, ref, raw_block(cursor.hash, paying), {WATCHED})
    assert event.block == ref and event.parent_hash == cursor.hash
    assert [(o.txid, o.index, o.amount, o.block) for o in event.payments] == [
        (txid, 1, 5, ref)]


async def test_mempool_payments_carry_the_node_s_time_and_skip_what_left() -> None:
    paying, paying_id = transaction((5, WATCHED))
    unpaid, unpaid_id = transaction((7, OTHER))
    mempool = {paying_id: paying, unpaid_id: unpaid}

    def raw_tx(txid: str, verbose: bool) -> str:
        if txid not in mempool:
            raise JsonRpcError("getrawtransaction", -5, "No such mempool transaction")
        return mempool[txid].hex()

    utxo, rpc = chain({"getrawtransaction": raw_tx,
                       "getmempoolentry": {"time": 1_700_000_000}})
    [seen] = await utxo._mempool_payments([unpaid_id, "ff" * 32, paying_id], {WATCHED})
    assert (seen.txid, seen.index, seen.amount, seen.block) == (paying_id, 0, 5, None)
    # The node counts whole seconds, truncated: the end of that second.
    assert seen.first_seen == datetime.fromtimestamp(1_700_000_001, UTC)
    assert [p for m, p in rpc.calls if m == "getmempoolentry"] == [(paying_id,)]


class ScriptedWakeup(Wakeup):
    def __init__(self, notes: list[tuple[bool, list[bytes]]]) -> None:
        super().__init__(())
        self.notes = notes

    async def wait(self, seconds: float) -> tuple[bool, list[bytes]]:
        return self.notes.pop(0)


@pytest.mark.parametrize(("notes", "matched"), [
    ([(True, [])], 0),  # a block: the next pass at once
    ([(False, [b"junk"]), (False, [transaction((7, OTHER))[0]]),
      (False, [transaction((5, WATCHED))[0]])], 3),  # a payment to us, after two others
])
async def test_the_wait_ends_on_a_block_or_a_watched_payment(
        notes: list[tuple[bool, list[bytes]]], matched: int) -> None:
    utxo, _ = chain({})
    wakeup = ScriptedWakeup(notes)
    deadline = float("inf")
    items = [i async for i in utxo._wait(wakeup, deadline, {WATCHED}, BlockRef(1, "aa"))]
    assert items == [MATCH_POINT] * matched
    assert wakeup.notes == []
