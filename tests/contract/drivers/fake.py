import secrets
from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from chains.base import Destination, Follower
from gateway import families
from tests.support import fake_family
from tests.support.fake_family import FakeNode, FakeSettings


class FakeDriver:
    kind = "fake"
    coin = "FAK"
    asset = "FAK"
    others: tuple[Follower, ...] = ()

    def __init__(self) -> None:
        family = families.register(fake_family.FAMILY)
        self.name = f"contract-{uuid4().hex[:8]}"
        self.node: FakeNode = fake_family.reset(self.name)
        settings = FakeSettings(kind="fake", node=self.name, seed=self.name)
        [self.follower] = family.build({self.coin: settings})
        self._follower: Follower = self.follower

    def pay(self, destination: Destination, base_units: int, replaceable: bool = False) -> str:
        return self.node.pay([(self.coin, destination.match_key, base_units)])

    def pay_many(self, destinations: Sequence[Destination], base_units: int) -> list[str]:
        return [self.pay(d, base_units) for d in destinations]

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.mine(blocks)

    def invalidate(self, block_hash: str) -> None:
        self.node.invalidate(block_hash)

    def replace(self, txid: str) -> str:
        return self.node.replace(txid)

    def block_hash(self, height: int) -> str:
        return self.node.chain[height].ref.hash

    def block_time(self, block_hash: str) -> datetime:
        block = self.node.block(block_hash)
        assert block is not None
        return block.time

    def first_seen(self, txid: str) -> datetime | None:
        return self.node.mempool[txid].entered

    def check_destination(self, destination: Destination) -> None:
        assert destination.address == "fake1" + destination.match_key.hex()

    def expected_uri(self, destination: Destination, base_units: int) -> str:
        return f"fake:{destination.address}?coin={self.coin}&value={base_units}"

    def customer_address(self) -> str:
        return "fake1" + secrets.token_hex(20)

    def denormalised(self, address: str) -> str:
        return address.upper()

    def foreign_address(self) -> str:
        return "fake2" + secrets.token_hex(20)

    def coin_env(self, confirmations: int) -> dict[str, str]:
        c = f"GATEWAY_COINS__{self.coin}__"
        return {"GATEWAY_FAMILIES__EXTRA": '["tests.support.fake_family"]',
                f"{c}KIND": "fake", f"{c}NODE": self.name, f"{c}SEED": self.name,
                f"{c}CONFIRMATIONS": str(confirmations)}

    async def stop_node(self) -> None:
        self.node.up = False

    async def start_node(self) -> None:
        self.node.up = True
