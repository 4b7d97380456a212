"""ZMQ notifications wake the UTXO watcher: with polling every 60 s, a payment and its
blocks are still seen within seconds. Debian's litecoind is built without ZMQ, so the test
publishes what a node started with -zmqpubrawtx/-zmqpubhashblock would, on a real ZMQ
socket on loopback (the gateway reads nothing from a message but a reason to ask the node
itself)."""

import time

import zmq
import zmq.asyncio

from tests.e2e.conftest import StackFactory
from tests.support.nodes import free_port
from tests.support.stack import eventually


async def test_zmq_notifications_wake_the_watcher(make_stack: StackFactory) -> None:
    port = free_port()
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"tcp://127.0.0.1:{port}")
    seq = 0

    async def publish(topic: bytes, body: bytes) -> None:
        nonlocal seq
        await pub.send_multipart([topic, body, seq.to_bytes(4, "little")])
        seq += 1

    try:
        url = f"tcp://127.0.0.1:{port}"
        stack = await make_stack(GATEWAY_COINS__LTC__POLL_INTERVAL_SECONDS="60",
                                 GATEWAY_COINS__LTC__ZMQ_BLOCK=url,
                                 GATEWAY_COINS__LTC__ZMQ_TX=url)
        node = stack.node
        account = await stack.signup("zmq@example.org")
        invoice = await stack.invoice(account["id"])
        # The watcher's first pass is over (its mempool was read before ours was sent):
        # it waits, 60 s or for ZMQ.
        await eventually(lambda: "LTC: pass done at height" in stack.gateway.log(), 20,
                         "the watcher's first pass")

        # A transaction paying someone else wakes nothing (or the watcher's mempool pass
        # would find ours, already there); ours does.
        txid = node.send(invoice["address"], invoice["amount_due"])
        other = node.send(node.rpc("getnewaddress", "", "bech32", wallet=node.wallet), "1")
        await publish(b"rawtx", bytes.fromhex(node.rpc("getrawtransaction", other)))
        await eventually(lambda: "notified transactions pay no watched address"
                         in stack.gateway.log(), 20, "the other transaction looked at")
        assert (await stack.read(invoice["id"]))["status"] == "new"
        started = time.monotonic()
        await publish(b"rawtx", bytes.fromhex(node.rpc("getrawtransaction", txid)))
        await stack.wait_status(invoice["id"], "processing", timeout=10)
        seen_after = time.monotonic() - started

        hashes = node.mine(3)
        started = time.monotonic()
        await publish(b"hashblock", bytes.fromhex(hashes[-1]))
        settled = await stack.wait_status(invoice["id"], "settled", timeout=10)
        settled_after = time.monotonic() - started
        assert [p["txid"] for p in settled["payments"]] == [txid]
        assert seen_after < 5 and settled_after < 5, (seen_after, settled_after)
    finally:
        pub.close(linger=0)
        ctx.term()
