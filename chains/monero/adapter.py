"""Monero through a view-only wallet: monero-wallet-rpc finds the payments (only the view
key can), monerod gives block identity (hashes), the pool and the tip.

- Destinations are subaddresses of account 0, created in the wallet (`create_address`)
  so that it scans them: a view-only wallet only scans a lookahead of 200 subaddresses
  past the highest one created in an account (and 50 accounts past the highest
  account). Address-space index i is subaddress (0, i + 1): (0, 0) is the primary
  address, which is published and must not name one invoice. `Observed.index` (the
  "output" of a payment) is the address-space index too: the wallet reports one entry
  per transaction and subaddress, not output positions.
- The subaddresses live in the wallet file, outside our database (`Restorable`): a
  wallet opened or recreated knowing fewer than the highest one handed out is given
  all of them, then rescans from its restore height, before anything reads it.
- Blocks are connected from monerod's headers; their payments are the wallet's incoming
  transfers at that height, after checking that the wallet agrees with the daemon about
  which transactions that block holds (otherwise the wallet lags: wait for it).
- Reorgs are recognised as for the other families, by block hash; a transfer whose
  block left the chain goes back to the pool (or disappears: `MempoolGone`).
- `unlock_time` becomes a `Lock` (heights below 500,000,000, else a Unix time)."""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chains.base import (
    MATCH_POINT,
    BlockConnected,
    BlockDisconnected,
    BlockRef,
    CatchUp,
    Destination,
    FollowItem,
    Lock,
    NetworkFacts,
    NodeDiagnosis,
    NodeProblem,
    Observed,
    OutputLookup,
    RestoreNeeded,
    Watched,
)
from chains.mempool import MempoolTracker
from chains.monero.addresses import NETWORK_OF_PRIMARY, parse_address
from chains.monero.rpc import MoneroRpc, MoneroRpcError
from chains.refunds import (
    BadRefundAddress,
    CannotPrepare,
    RefundInstructions,
    Spendable,
    TxKeyCheck,
)
from chains.uri import decimal_units

WALLET_NOT_OPEN = -13  # WALLET_RPC_ERROR_CODE_NOT_OPEN
UNLOCK_TIME_IS_HEIGHT_BELOW = 500_000_000  # CRYPTONOTE_MAX_BLOCK_NUMBER
CREATE_AT_MOST = 64  # subaddresses wallet-rpc creates per `create_address`
# `scan` (reconciliation walks a period block by block) reads the wallet's transfers for
# this many blocks at once, after one refresh: a refresh and a transfer query per block
# cost about 0.1 s each, hours over a month of Monero blocks.
SCAN_WINDOW = 720
SCAN_FRESH_SECONDS = 30.0  # a later pass (another reconciliation) reads the wallet again
# wallet-rpc answers a rescan (or a new wallet's first refresh) only once it is done, and
# serves nothing else meanwhile (one RPC thread): months of blocks take a while.
CATCH_UP_TIMEOUT = 24 * 3600.0
# The daemon's nettype for each first character of a primary address (regtest runs as
# "fakechain" with mainnet prefixes).
NETTYPES = {"4": ("mainnet", "fakechain"), "5": ("stagenet",), "9": ("testnet",)}

log = logging.getLogger(__name__)


def lock_of(unlock_time: int) -> Lock | None:
    if unlock_time <= 0:
        return None
    if unlock_time < UNLOCK_TIME_IS_HEIGHT_BELOW:
        return Lock(height=unlock_time)
    return Lock(time=datetime.fromtimestamp(unlock_time, UTC))


def _since(tx: dict[str, Any]) -> datetime:
    # monerod counts whole seconds, truncated: the end of that second is the earliest
    # moment we may claim (as for the UTXO family's mempool time).
    return datetime.fromtimestamp(int(tx["received_timestamp"]) + 1, UTC)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493  # l, of the base point


def _scalars(tx_key: str) -> bool:
    """Whether each 32-byte part (little-endian) is a reduced, non-zero scalar."""
    parts = (int.from_bytes(bytes.fromhex(tx_key[i:i + 64]), "little")
             for i in range(0, len(tx_key), 64))
    return all(0 < p < ED25519_ORDER for p in parts)


def _tx_key_refusal(message: str) -> str:
    """wallet-rpc's reason, in the operator's words (it names no key)."""
    lowered = message.lower()
    if "failed to get transaction" in lowered or "not found" in lowered:
        return "the node does not know this txid: check it (or wait until it is relayed)"
    if "key" in lowered:
        return f"the tx key was refused ({message})"
    return f"the tx key could not be checked ({message})"


def header_time(header: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(header["timestamp"]), UTC)


class WalletTransfers:
    """The wallet's incoming transfers read in one pass: by block height, and in its pool."""

    def __init__(self, by_height: Mapping[int, list[dict[str, Any]]],
                 in_pool: Sequence[dict[str, Any]]) -> None:
        self.by_height = by_height
        self.in_pool = in_pool
        self._heights = {str(e["txid"]): h for h, es in by_height.items() for e in es}
        self._pool = {str(e["txid"]) for e in in_pool}

    def at(self, height: int) -> list[dict[str, Any]]:
        return list(self.by_height.get(height, []))

    def agrees(self, height: int, in_block: set[str]) -> bool:
        """Whether the wallet has scanned the daemon's block at `height`, holding the
        transactions `in_block`: what it lists there is in the block, and it lists none
        of the block's elsewhere. (After a reorg the wallet may list a transaction in
        its pool and in a block at once: the block is what counts.)"""
        if any(str(e["txid"]) not in in_block for e in self.by_height.get(height, [])):
            return False
        return not any(self._heights.get(t, height) != height
                       or (t in self._pool and t not in self._heights) for t in in_block)


class MoneroChain:
    """One monerod and one view-only wallet, for one coin (XMR): the coin code names the
    cursor and the address space (one wallet per coin)."""

    DECIMALS = 12

    def __init__(self, coin: str, daemon: MoneroRpc, wallet: MoneroRpc, *, address: str,
                 view_key: str, wallet_name: str, password: str, restore_height: int = 0,
                 poll_interval: float = 1.0) -> None:
        self.coin = coin
        self._daemon = daemon
        self._wallet_rpc = wallet
        self._address = address
        self._view_key = view_key
        self._wallet_name = wallet_name
        self._password = password
        self._restore_height = restore_height
        self._poll = poll_interval
        self._opened = False
        self._wallet_lock = asyncio.Lock()
        self._network_checked = False
        # The highest address-space index known handed out: told by the follower loop
        # (from the database) or allocated here. An opened wallet must know its subaddress.
        self._highest = -1
        self._catch_up_task: asyncio.Task[None] | None = None
        self._catching_up: CatchUp | None = None
        self._opens = 0  # wallets (re)opened by this process: a follow notices a reopen
        # `scan`'s read-ahead: heights (lo, hi] and their incoming transfers.
        self._scanned: tuple[int, int, dict[int, list[dict[str, Any]]], float] | None = None
        # What this process connected: a block's parent and the watched payments it held,
        # so a block that left the chain (monerod forgets popped blocks) can be walked
        # back and its transactions named; and each payment by txid, to report it again
        # when a reorg puts it back in the pool before the wallet has noticed.
        self._parents: dict[str, str] = {}
        self._block_txids: dict[str, tuple[str, ...]] = {}
        self._payments: dict[str, tuple[Observed, ...]] = {}

    # -- Follower basics -------------------------------------------------------------
    @property
    def coins(self) -> tuple[str, ...]:
        return (self.coin,)

    @property
    def feed(self) -> str:
        return self.coin

    @property
    def address_space(self) -> str:
        return self.coin

    def decimals(self, coin: str) -> int:
        return self.DECIMALS

    def network_facts(self, coin: str) -> NetworkFacts:
        return NetworkFacts("Monero", 120)  # two-minute blocks

    def payment_uri(self, destination: Destination, coin: str, base_units: int) -> str:
        # The Monero URI scheme (monero-project/monero#1167): tx_amount in XMR.
        return (f"monero:{destination.address}"
                f"?tx_amount={decimal_units(base_units, self.DECIMALS)}")

    async def aclose(self) -> None:
        await self._daemon.aclose()
        await self._wallet_rpc.aclose()

    # -- refunds (Refundable, TxKeyCheckable) ----------------------------------------
    def check_address(self, coin: str, address: str) -> str:
        """Standard, subaddress or integrated, of the configured address's network
        (regtest uses mainnet's prefixes)."""
        if coin != self.coin:
            raise BadRefundAddress(f"{coin} is not paid through this wallet")
        parse_address(address, NETWORK_OF_PRIMARY.get(self._address[0], "mainnet"))
        return address.strip()

    def refund_match_key(self, coin: str, address: str) -> bytes | None:
        # A view key sees only payments to its own wallet: the operator proves the
        # refund with its tx key instead (`check_tx_key`).
        self.check_address(coin, address)
        return None

    async def prepare_refund(self, coin: str, address: str, amount: int,
                             spendable: Sequence[Spendable], change_index: int,
                             ) -> RefundInstructions:
        """A `monero:` URI: the operator's own wallet sends it, then its txid and tx
        key (`get_tx_key`, "Get tx key" in the GUI) are entered to prove it."""
        _ = (spendable, change_index)  # the operator's wallet picks outputs and change
        to = self.check_address(coin, address)
        if amount <= 0:
            raise CannotPrepare("a refund must be more than zero")
        return RefundInstructions(coin=coin, address=to, amount=amount,
                                  uri=f"monero:{to}?tx_amount="
                                      f"{decimal_units(amount, self.DECIMALS)}")

    async def check_tx_key(self, txid: str, tx_key: str, address: str) -> TxKeyCheck:
        """What `txid` paid to `address`, as `tx_key` proves (wallet-rpc `check_tx_key`,
        which needs no key of ours). A wrong key proves nothing: refused, as are an
        unknown txid and a malformed one."""
        txid, tx_key = txid.strip().lower(), tx_key.strip().lower()
        to = self.check_address(self.coin, address)
        if len(txid) != 64 or not _is_hex(txid):
            raise CannotPrepare("the txid must be 64 hex digits")
        if not tx_key or len(tx_key) % 64 or not _is_hex(tx_key):
            raise CannotPrepare("the tx key must be 64 hex digits (or several times 64, "
                                "with the additional keys of a payment to a subaddress)")
        if not _scalars(tx_key):
            # Checked here: monero-wallet-rpc 0.18 stops altogether on a key that is no
            # reduced scalar (a typo would take the watcher's wallet down with it).
            raise CannotPrepare("this is not a tx key (a typo?): each 64-digit part must "
                                "be a key as the wallet shows it")
        try:
            found = await self._wallet("check_tx_key", txid=txid, tx_key=tx_key, address=to)
        except MoneroRpcError as exc:
            raise CannotPrepare(_tx_key_refusal(exc.message)) from None
        received = int(found.get("received", 0))
        if received <= 0:
            raise CannotPrepare("this tx key does not prove any payment to that address: "
                                "the key, the txid or the address is not the refund's")
        return TxKeyCheck(received, int(found.get("confirmations", 0)),
                          bool(found.get("in_pool", False)))

    async def tip(self) -> BlockRef:
        await self._check_network()
        header = (await self._daemon.call("get_last_block_header"))["block_header"]
        # Readiness asks for the tip: without the wallet nothing is detected, so the chain
        # is down when wallet-rpc is (this also reopens or recreates the wallet).
        await self._wallet("get_height")
        return BlockRef(int(header["height"]), str(header["hash"]))

    async def _check_network(self) -> None:
        """Once: monerod is on the network of the configured address."""
        if self._network_checked:
            return
        found = str((await self._daemon.call("get_info")).get("nettype", ""))
        expected = NETTYPES.get(self._address[0], ())
        if found and expected and found not in expected:
            raise NodeProblem(f"monerod is on {found!r} but the configured address is a "
                              f"{expected[0]} address: payments would never be seen")
        self._network_checked = True

    async def diagnose(self) -> NodeDiagnosis:
        """For `gateway doctor`: monerod's network and sync, and the wallet in wallet-rpc,
        opened as the gateway opens it (or created from the address and the view key):
        view-only, and the configured address's wallet. A wallet refused on opening (a
        spend key, another address) raises NodeProblem with the reason."""
        info = await self._daemon.call("get_info")
        header = (await self._daemon.call("get_last_block_header"))["block_header"]
        height, target = int(header["height"]), int(info.get("target_height") or 0)
        synced = bool(info.get("synchronized", True)) and target <= height + 1
        found = str(info.get("nettype", "?"))
        expected = NETTYPES.get(self._address[0], ("?",))
        checks: list[tuple[bool, str]] = []
        if found not in expected:  # the network finding says it; the wallet cannot help
            return NodeDiagnosis(
                height=height, synced=synced,
                sync_detail=f"height {height}, target {target or height}",
                network_expected=expected[0], network_reported=found,
                first_address=self._address, address_valid=None)
        await self.open_wallet()
        try:
            opened = str((await self._wallet_rpc.call(
                "get_address", account_index=0, address_index=[0]))["address"])
        except MoneroRpcError as exc:
            checks.append((exc.code != WALLET_NOT_OPEN, (
                f"no wallet is open in wallet-rpc: the gateway opens {self._wallet_name!r} "
                "(or creates it from the address and the view key) when it starts"
                if exc.code == WALLET_NOT_OPEN else f"wallet-rpc answers {exc.message!r}")))
        else:
            try:
                key = await self._wallet_rpc.call("query_key", key_type="spend_key")
            except MoneroRpcError:  # "The wallet is watch-only. Cannot retrieve spend key."
                checks.append((True, "the open wallet is view-only (no spend key)"))
            else:
                spend = bool(str(key.get("key", "")).strip("0"))
                checks.append((not spend, "the open wallet holds a spend key: the gateway "
                               "refuses it (use a view-only wallet)" if spend else
                               "the open wallet is view-only (no spend key)"))
            same = opened == self._address
            checks.append((same, f"the open wallet's primary address is the configured one "
                           f"({self._address[:12]}...)" if same else
                           f"the open wallet's primary address {opened[:12]}... is not the "
                           f"configured {self._address[:12]}...: another wallet is open"))
        return NodeDiagnosis(
            height=height, synced=synced,
            sync_detail=f"height {height}, target {target or height}",
            network_expected=found, network_reported=found, first_address=self._address,
            address_valid=None, checks=tuple(checks))

    # -- the wallet ------------------------------------------------------------------
    @property
    def catching_up(self) -> CatchUp | None:
        return self._catching_up

    async def restore(self, highest_index: int) -> None:
        """The wallet knows every subaddress up to address-space index `highest_index`
        (the highest our database handed out) and has scanned with them (`Restorable`)."""
        self._highest = max(self._highest, highest_index)
        for last in (False, True):
            await self.open_wallet()
            try:
                async with self._wallet_lock:
                    if not await self._knows(self._highest + 1):
                        await self._catch_up()
                return
            except MoneroRpcError as exc:
                # wallet-rpc restarted since the wallet was opened: open it again, once
                # (counting its subaddresses on no wallet would "restore" into nothing).
                if exc.code != WALLET_NOT_OPEN or last:
                    raise
                self._opened = False

    async def open_wallet(self) -> None:
        """Open the view-only wallet, or create it from the address and the view key
        (a wallet-rpc restarted without its file), and give it the subaddresses it lacks
        before anything reads it. Refuses a wallet that holds a spend key or another
        address."""
        async with self._wallet_lock:
            if self._catch_up_task is not None and not self._catch_up_task.done():
                await self._catch_up()  # begun by a caller that was cancelled: join it
            if self._opened:
                return
            try:  # already open (the gateway restarted, not wallet-rpc): keep it open
                current = (await self._wallet_rpc.call("get_address", account_index=0,
                                                       address_index=[0]))
            except MoneroRpcError:
                current = {}
            if current.get("address") != self._address:
                await self._open_or_create()
            try:
                key = await self._wallet_rpc.call("query_key", key_type="spend_key")
            except MoneroRpcError:
                pass  # "The wallet is watch-only. Cannot retrieve spend key."
            else:
                if str(key.get("key", "")).strip("0"):
                    await self._wallet_rpc.call("close_wallet")
                    raise NodeProblem(f"wallet {self._wallet_name!r} holds a spend key: "
                                      "refused (the gateway uses view-only wallets)")
            found = (await self._wallet_rpc.call("get_address", account_index=0,
                                                 address_index=[0]))["address"]
            if found != self._address:
                await self._wallet_rpc.call("close_wallet")
                raise NodeProblem(f"wallet {self._wallet_name!r} is not the configured "
                                  "address's wallet")
            self._opens += 1
            if not await self._knows(self._highest + 1):
                await self._catch_up()
            self._opened = True

    async def _open_or_create(self) -> None:
        try:
            await self._wallet_rpc.call("open_wallet", filename=self._wallet_name,
                                        password=self._password)
        except MoneroRpcError as opening:
            try:
                await self._wallet_rpc.call(
                    "generate_from_keys", filename=self._wallet_name,
                    address=self._address, viewkey=self._view_key,
                    password=self._password, restore_height=self._restore_height,
                    autosave_current=True)
            except MoneroRpcError as creating:
                raise NodeProblem(f"cannot open the wallet ({opening.message}) nor "
                                  f"create it ({creating.message})") from None
            log.warning("%s: no wallet %r in wallet-rpc: created it from the address and "
                        "the view key (restore height %d)", self.coin, self._wallet_name,
                        self._restore_height)

    async def _knows(self, minor: int) -> bool:
        """Whether the open wallet has subaddress (0, minor)."""
        if minor <= 0:
            return True
        try:
            await self._wallet_rpc.call("get_address", account_index=0, address_index=[minor])
        except MoneroRpcError as exc:
            if exc.code == WALLET_NOT_OPEN:  # no wallet at all, not a missing subaddress
                self._opened = False
                raise
            return False  # "address index is out of bound"
        return True

    async def _subaddress_count(self, below: int) -> int:
        """How many subaddresses account 0 has, knowing it has fewer than `below`: a
        bisection on `get_address` by index (the full listing of thousands is cut short
        by wallet-rpc)."""
        low, high = 1, below  # (0, 0), the primary address, always exists
        while low < high:
            mid = (low + high) // 2
            if await self._knows(mid):
                low = mid + 1
            else:
                high = mid
        return low

    async def _create_up_to(self, minor: int, count: int | None = None) -> None:
        """Creates subaddresses of account 0 up to (0, minor), from `count` existing ones."""
        if count is None:
            count = await self._subaddress_count(minor + 1)
        while count <= minor:
            batch = min(minor + 1 - count, CREATE_AT_MOST)
            await self._wallet_rpc.call("create_address", account_index=0, count=batch,
                                        label="packetra")
            count += batch
            if self._catching_up is not None:
                self._catching_up = replace(self._catching_up, restored=count - 1)

    async def _catch_up(self) -> None:
        """Runs (or joins) the catch-up as a task of its own: a caller that gives up
        waiting (a readiness probe's deadline) must not stop it halfway."""
        if self._catch_up_task is None or self._catch_up_task.done():
            self._catch_up_task = asyncio.create_task(self._restore_and_rescan())
            # Its failure is raised to whoever waits; nobody may be left waiting.
            self._catch_up_task.add_done_callback(
                lambda t: None if t.cancelled() else t.exception())
        await asyncio.shield(self._catch_up_task)

    async def _restore_and_rescan(self) -> None:
        """Creates the subaddresses the wallet lacks up to the highest handed out, then
        lets it scan from its restore height with them: `rescan_blockchain` when it has
        scanned blocks already (wallet-rpc refreshes an open wallet by itself every 20 s,
        and a wallet restored from an old file scanned without them), else its first
        refresh. Payments found again are recorded once (recording is idempotent)."""
        wanted = self._highest + 1  # the subaddress minor index
        count = await self._subaddress_count(wanted + 1)
        tip = await self._height()
        state = CatchUp("subaddresses", wanted, count - 1, self._restore_height, tip,
                        datetime.now(UTC))
        self._catching_up = state
        log.warning("%s: the wallet knows %d of the %d subaddresses handed out (a wallet "
                    "recreated or restored from an old file): %s", self.coin, count - 1,
                    wanted, state.describe())
        try:
            await self._create_up_to(wanted, count)
            self._catching_up = replace(state, restored=wanted)
            scanned = int((await self._wallet_rpc.call("get_height"))["height"]) > 1
            log.warning("%s: %s", self.coin, self._catching_up.describe())
            await self._wallet_rpc.call("rescan_blockchain" if scanned else "refresh",
                                        wait=CATCH_UP_TIMEOUT)
        finally:
            self._catching_up = None
        log.warning("%s: caught up: the wallet knows all %d subaddresses and has scanned "
                    "from height %d", self.coin, wanted, self._restore_height)

    async def _wallet(self, method: str, **params: Any) -> Any:
        await self.open_wallet()
        try:
            return await self._wallet_rpc.call(method, **params)
        except MoneroRpcError as exc:
            if exc.code != WALLET_NOT_OPEN:
                raise
        # wallet-rpc restarted (or someone closed the wallet): open it again, once.
        self._opened = False
        await self.open_wallet()
        return await self._wallet_rpc.call(method, **params)

    async def allocate(self, indexes: Sequence[int]) -> list[Destination]:
        """Subaddresses (0, i), created in the wallet up to the highest index asked for,
        so that it scans them however far beyond its lookahead they are. Subaddresses are
        a pure function of the keys: creating more than needed (two instances racing)
        hands out nothing twice; the database's counter decides who gets which index."""
        wanted = sorted({i + 1 for i in indexes})  # subaddress minor indexes
        if not wanted:
            return []
        if self._catching_up is not None:  # wallet-rpc answers nothing else meanwhile
            raise NodeProblem(f"the {self.coin} wallet is catching up: "
                              f"{self._catching_up.describe()}")
        try:
            found = await self._wallet("get_address", account_index=0,
                                       address_index=wanted)
        except MoneroRpcError:  # "address index is out of bound": create up to it
            async with self._wallet_lock:
                await self._create_up_to(wanted[-1])
            found = await self._wallet("get_address", account_index=0,
                                       address_index=wanted)
        # Known to the wallet now: a wallet reopened later is given them again.
        self._highest = max(self._highest, wanted[-1] - 1)
        by_minor = {int(a["address_index"]): str(a["address"]) for a in found["addresses"]}
        return [Destination(i, by_minor[i + 1], by_minor[i + 1].encode()) for i in indexes]

    # -- following -------------------------------------------------------------------
    def _observed(self, entry: dict[str, Any], block: BlockRef | None,
                  first_seen: datetime | None = None) -> Observed:
        address = str(entry["address"])
        return Observed(self.coin, str(entry["txid"]), int(entry["subaddr_index"]["minor"]) - 1,
                        address.encode(), int(entry["amount"]), block, first_seen,
                        lock_of(int(entry.get("unlock_time", 0))))

    async def _height(self) -> int:
        return int((await self._daemon.call("get_block_count"))["count"]) - 1

    async def _header(self, height: int) -> dict[str, Any]:
        found: dict[str, Any] = (await self._daemon.call(
            "get_block_header_by_height", height=height))["block_header"]
        return found

    async def _pool(self) -> set[str]:
        body = await self._daemon.other("/get_transaction_pool_hashes")
        return set(body.get("tx_hashes", []) or [])

    async def _pool_entries(self, txids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """monerod's view of these transactions: `in_pool`, `double_spend_seen`,
        `received_timestamp` (its own clock). Asked only for our candidates: the full
        /get_transaction_pool listing is large, and monerod was seen to cut it short."""
        wanted = sorted(txids)
        if not wanted:
            return {}
        body = await self._daemon.other("/get_transactions", txs_hashes=wanted)
        return {str(t["tx_hash"]): t for t in body.get("txs", []) or []}

    async def _parent(self, block: BlockRef) -> str:
        known = self._parents.get(block.hash)
        if known is not None:
            return known
        try:
            header = (await self._daemon.call("get_block_header_by_hash",
                                              hash=block.hash))["block_header"]
            return str(header["prev_hash"])
        except MoneroRpcError:
            # monerod forgets popped blocks; a block of another process's making: assume
            # the reorg goes no deeper, the walk-back checks the parent against the chain.
            return str((await self._header(block.height - 1))["hash"])

    async def _transfers(self, above: int, upto: int) -> tuple[
            dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
        """Incoming transfers at heights in (above, upto], by height; and in the pool."""
        params: dict[str, Any] = {"in": True, "pool": True, "account_index": 0}
        if upto > above:
            params.update(filter_by_height=True, min_height=max(above - 1, 0),
                          max_height=upto)
        else:
            params["in"] = False
        found = await self._wallet("get_transfers", **params)
        by_height: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for entry in found.get("in", []):
            height = int(entry["height"])
            if above < height <= upto:
                by_height[height].append(entry)
        return by_height, list(found.get("pool", []))

    async def follow(self, cursor: BlockRef, watched: Watched,
                     unconfirmed: Iterable[str] = ()) -> AsyncIterator[FollowItem]:
        book = MempoolTracker(unconfirmed)
        await self._check_network()
        opens = self._opens
        while True:
            book.start_pass(await self._pool())  # the snapshot first (chains.mempool)
            while (height := await self._main_chain_height(cursor)) is None:
                parent = await self._parent(cursor)
                yield MATCH_POINT
                txids = self._block_txids.get(cursor.hash, ())
                book.disconnected(txids)
                yield BlockDisconnected(cursor, parent, txids)
                cursor = BlockRef(cursor.height - 1, parent)
            upto = await self._wallet_scanned(height)
            wallet = await self._wallet_transfers(cursor.height, upto, opens)
            while cursor.height < upto:
                fetched = await self._next_block(cursor)
                if fetched is None:
                    break  # the chain changed under us: walk back next round
                ref, header, in_block = fetched
                if not wallet.agrees(ref.height, in_block):
                    break  # the wallet has not caught up with this block yet
                yield MATCH_POINT
                connected = self._connect(cursor, ref, header, wallet.at(ref.height), watched)
                book.connected(in_block)
                yield connected
                cursor = ref
            async for item in self._pool_pass(book, wallet.in_pool, watched):
                yield item
            # Gone (evicted, flushed, or double-spent): only when caught up with the tip
            # read after the snapshot, so a mined transaction is never taken for gone.
            if (gone := book.end_pass(caught_up=cursor.height == height)) is not None:
                yield gone
            await asyncio.sleep(self._poll)

    async def _main_chain_height(self, cursor: BlockRef) -> int | None:
        """The daemon's height if `cursor` is on its main chain; None: walk back."""
        height = await self._height()
        if cursor.height <= height and \
                (await self._header(cursor.height))["hash"] == cursor.hash:
            return height
        return None

    async def _wallet_scanned(self, height: int) -> int:
        """Lets the wallet scan up to the daemon's tip (it handles a reorg it sees there
        itself); the height it has scanned up to, at most `height`."""
        await self._wallet("refresh")
        scanned = int((await self._wallet("get_height"))["height"]) - 1
        if scanned < height:
            # A refresh that ran into wallet-rpc's own background refresh returns early:
            # once more, so the wallet does not lag a whole poll behind.
            await self._wallet("refresh")
            scanned = int((await self._wallet("get_height"))["height"]) - 1
        return min(height, scanned)

    async def _wallet_transfers(self, above: int, upto: int, opens: int
                                ) -> WalletTransfers:
        by_height, in_pool = await self._transfers(above, upto)
        # Never match with a wallet that lacks subaddresses: one reopened meanwhile (it
        # may lack some handed out since by another instance), or recreated under us by
        # another process.
        if self._opens != opens or not await self._knows(self._highest + 1):
            self._opened = False
            raise RestoreNeeded(f"the wallet was reopened or lacks subaddress (0, "
                                f"{self._highest + 1}): restoring")
        return WalletTransfers(by_height, in_pool)

    async def _next_block(self, cursor: BlockRef
                          ) -> tuple[BlockRef, dict[str, Any], set[str]] | None:
        """The block after `cursor`: its ref, header and transactions; None when it does
        not build on `cursor` (a reorg between our calls)."""
        block = await self._daemon.call("get_block", height=cursor.height + 1)
        header = block["block_header"]
        if header["prev_hash"] != cursor.hash:
            return None
        ref = BlockRef(int(header["height"]), str(header["hash"]))
        return ref, header, set(block.get("tx_hashes", []) or [])

    def _connect(self, cursor: BlockRef, ref: BlockRef, header: dict[str, Any],
                 entries: Iterable[dict[str, Any]], watched: Watched) -> BlockConnected:
        payments = tuple(o for o in (self._observed(e, ref) for e in entries)
                         if o.match_key in watched)
        self._remember(ref, str(header["prev_hash"]), payments)
        return BlockConnected(ref, cursor.hash, header_time(header), payments)

    async def _pool_pass(self, book: MempoolTracker, in_pool: Sequence[dict[str, Any]],
                         watched: Watched) -> AsyncIterator[FollowItem]:
        """New pool entries paying a watched subaddress; and payments a reorg put back in
        the pool, which the wallet still believes mined until the next block."""
        ours = {str(e["txid"]) for e in in_pool} | self._payments.keys()
        # Pending ones too: a double spend may be flagged after we first saw them.
        daemon = await self._pool_entries(
            (book.pool & ours) - book.inspected - book.mined | (book.pool & book.pending))
        candidates = self._pool_candidates(in_pool, daemon)
        # A double spend seen: as good as gone (it will not be mined, or it replaces).
        book.drop(t for t, tx in daemon.items() if tx.get("double_spend_seen"))
        fresh = book.fresh(candidates)
        if fresh:
            yield MATCH_POINT
            seen = book.seen([o for t in fresh for o in candidates[t]
                              if o.match_key in watched])
            book.inspected_now(fresh)
            if seen is not None:
                yield seen

    def _pool_candidates(self, in_pool: Iterable[dict[str, Any]],
                         daemon: dict[str, dict[str, Any]]) -> dict[str, list[Observed]]:
        """Payments in the pool by txid, as the wallet's pool entries and the daemon's view
        of them (`daemon`) agree: in the daemon's pool, no double spend seen by either;
        and our payments a reorg put back there, the wallet not knowing it yet."""
        candidates: dict[str, list[Observed]] = defaultdict(list)
        for entry in in_pool:
            txid = str(entry["txid"])
            tx = daemon.get(txid)
            if tx is not None and tx.get("in_pool") and not tx.get("double_spend_seen") \
                    and not entry.get("double_spend_seen"):
                candidates[txid].append(self._observed(entry, None, _since(tx)))
        for txid in daemon.keys() - candidates.keys():
            tx = daemon[txid]
            if txid in self._payments and tx.get("in_pool") \
                    and not tx.get("double_spend_seen"):
                candidates[txid] = [replace(o, block=None, first_seen=_since(tx))
                                    for o in self._payments[txid]]
        return candidates

    def _remember(self, ref: BlockRef, parent: str, payments: tuple[Observed, ...]) -> None:
        self._parents[ref.hash] = parent
        txids = tuple(sorted({o.txid for o in payments}))
        if txids:
            self._block_txids[ref.hash] = txids
        by_txid: dict[str, list[Observed]] = defaultdict(list)
        for o in payments:
            by_txid[o.txid].append(o)
        self._payments.update({t: tuple(os) for t, os in by_txid.items()})

    # -- reconciliation (Auditable) --------------------------------------------------
    async def lookup(self, txid: str, index: int, block_hash: str | None) -> OutputLookup:
        """`index` is the address-space index (subaddress index - 1; see above)."""
        found = await self._daemon.other("/get_transactions", txs_hashes=[txid])
        if not found.get("txs"):
            return OutputLookup(False)
        block: BlockRef | None = None
        in_main, confirmations = False, 0
        if block_hash is None:
            known = bool(found["txs"][0].get("in_pool"))
        else:
            known = True  # the daemon has it, in that block, another, or back in the pool
            try:
                header = (await self._daemon.call("get_block_header_by_hash",
                                                  hash=block_hash))["block_header"]
            except MoneroRpcError:
                pass  # monerod forgets blocks that left the chain: not in the main chain
            else:
                block = BlockRef(int(header["height"]), block_hash)
                tip = await self._height()
                if block.height <= tip and (await self._header(block.height))["hash"] \
                        == block_hash:
                    in_main, confirmations = True, tip - block.height + 1
        try:
            await self._wallet("refresh")
            entries = (await self._wallet("get_transfer_by_txid", txid=txid))["transfers"]
        except MoneroRpcError:
            return OutputLookup(known, block, in_main, confirmations)
        mine = [e for e in entries if e.get("type") in ("in", "pool")
                and int(e["subaddr_index"]["minor"]) == index + 1]
        if not mine:
            return OutputLookup(known, block, in_main, confirmations)
        return OutputLookup(known, block, in_main, confirmations,
                            str(mine[0]["address"]).encode(), int(mine[0]["amount"]))

    async def heights_between(self, start: datetime, end: datetime) -> range:
        # Block timestamps need only exceed the median of the last 60 and may run two
        # hours ahead: bisect on them with that margin on both sides.
        tip = await self._height()

        async def first_at_or_after(moment: datetime) -> int:
            low, high = 0, tip + 1
            while low < high:
                mid = (low + high) // 2
                if header_time(await self._header(mid)) < moment:
                    low = mid + 1
                else:
                    high = mid
            return low

        margin = timedelta(hours=2)
        return range(await first_at_or_after(start - margin),
                     await first_at_or_after(end + margin))

    async def scan(self, height: int, watched: Watched) -> BlockConnected:
        header = await self._header(height)
        ref = BlockRef(height, str(header["hash"]))
        cached = self._scanned
        if (cached is None or not cached[0] < height <= cached[1]
                or time.monotonic() - cached[3] > SCAN_FRESH_SECONDS):
            await self._wallet("refresh")  # no follower may be running to keep it scanning
            upto = min(height + SCAN_WINDOW - 1, await self._height())
            by_height = (await self._transfers(height - 1, upto))[0]
            cached = self._scanned = (height - 1, upto, by_height, time.monotonic())
        by_height = cached[2]
        payments = tuple(o for o in (self._observed(e, ref) for e in by_height.get(height, []))
                         if o.match_key in watched)
        return BlockConnected(ref, str(header["prev_hash"]), header_time(header), payments)
