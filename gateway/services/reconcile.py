"""Reconciliation: every recorded payment of a period re-checked against its node, and the
period's blocks scanned for payments to our addresses that were never recorded."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chains.base import Auditable, Observed
from gateway.domain.credit import signed_fiat
from gateway.domain.errors import InvalidInput
from gateway.domain.payments import PaymentStatus
from gateway.domain.reconciliation import NodeView, Recorded, disagreements
from gateway.services.ports import LedgerRow, ReconcileUnit
from gateway.services.ports.vouchers import VoucherTotals


class Progress(Protocol):
    def add_total(self, n: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class _Silent:
    def add_total(self, n: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass(frozen=True)
class Finding:
    kind: str
    coin: str
    txid: str
    output_index: int
    invoice_id: str | None
    detail: str


@dataclass
class Report:
    start: datetime
    end: datetime
    coins: list[str]
    checked_payments: int = 0
    checked_refund_outputs: int = 0
    scanned_blocks: dict[str, list[int]] = field(default_factory=dict)  # [first, last]
    findings: list[Finding] = field(default_factory=list)
    # Per currency (docs/vouchers.md): codes sold (not revoked before use), redeemed, and
    # what is still owed: sold, unredeemed, neither revoked nor expired at `end`.
    voucher_liability: list[dict[str, str | int]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def liability(t: VoucherTotals) -> dict[str, str | int]:
    return {"currency": t.currency, "sold": signed_fiat(t.sold, t.currency),
            "redeemed": signed_fiat(t.redeemed, t.currency),
            "outstanding": signed_fiat(t.outstanding, t.currency),
            "outstanding_minor": t.outstanding}


class _Keys:
    """Every address we ever handed out, as a watchlist for the scan."""

    def __init__(self, keys: Mapping[bytes, str]) -> None:
        self._keys = keys

    async def refresh(self) -> None:
        pass

    def __contains__(self, match_key: object) -> bool:
        return match_key in self._keys


class ReconcileService:
    def __init__(self, uow: Callable[[], ReconcileUnit], chains: Mapping[str, Auditable],
                 reader: Callable[[], ReconcileUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._chains = chains

    async def run(self, start: datetime, end: datetime, coin: str | None = None,
                  progress: Progress | None = None) -> Report:
        if end <= start:
            raise InvalidInput("to", "must be after from")
        if coin is not None and coin not in self._chains:
            raise InvalidInput("coin", f"must be one of {', '.join(sorted(self._chains))}")
        coins = [coin] if coin else sorted(self._chains)
        report = Report(start, end, coins)
        bar = progress or _Silent()
        for code in coins:
            await self._coin(code, report, bar)
        async with self._reader() as uow:
            report.voucher_liability = [liability(t) for t in await uow.vouchers.totals(end)]
        return report

    async def _coin(self, coin: str, report: Report, bar: Progress) -> None:
        chain = self._chains[coin]
        async with self._reader() as uow:
            keys = await uow.ledger.invoice_keys(coin)
            total = await uow.ledger.count(report.start, report.end, coin)
        heights = await chain.heights_between(report.start, report.end)
        bar.add_total(len(heights) + total)
        scanned: dict[tuple[str, int], Observed] = {}
        watch = _Keys(keys)
        for height in heights:
            block = await chain.scan(height, watch)
            # A node's block carries every coin it serves (ETH and its tokens): keep this one's.
            scanned.update({(o.txid, o.index): o for o in block.payments if o.coin == coin})
            bar.advance()
        if len(heights):
            report.scanned_blocks[coin] = [heights[0], heights[-1]]

        recorded: set[tuple[str, int]] = set()
        after: int | None = None
        while True:
            async with self._reader() as uow:
                rows = await uow.ledger.page(report.start, report.end, coin, after, 500)
            for row in rows:
                recorded.add((row.txid, row.output_index))
                await self._check(chain, row, scanned.get((row.txid, row.output_index)),
                                  report)
                bar.advance()
            report.checked_payments += len(rows)
            if len(rows) < 500:
                break
            after = rows[-1].id

        await self._refunds(coin, chain, report)
        for (txid, index), seen in sorted(scanned.items()):
            if (txid, index) in recorded:
                continue
            async with self._reader() as uow:  # recorded, but outside the period?
                known = {(r.txid, r.output_index) for r in await uow.ledger.by_txid(txid)}
            if (txid, index) not in known:
                where = seen.block.height if seen.block else "?"
                report.findings.append(Finding(
                    "unrecorded", coin, txid, index, keys.get(seen.match_key),
                    f"{seen.amount} base units to an invoice address in block {where}, "
                    "never recorded"))

    async def _refunds(self, coin: str, chain: Auditable, report: Report) -> None:
        """Refunds paid: each output the watcher recorded at a customer's address is on
        the node as recorded (main chain, address, amount). `refund_`-prefixed kinds."""
        async with self._reader() as uow:
            outputs = await uow.refund_watches.outputs_between(report.start, report.end, coin)
        for out in outputs:
            if not out.match_key:
                continue  # the address was erased by retention: nothing left to compare
            status = PaymentStatus(out.status)
            rec = Recorded(out.amount, out.match_key, out.block_hash, out.block_height, status)
            node: NodeView | None = None
            if status is not PaymentStatus.REVERTED:
                found = await chain.lookup(out.txid, out.output_index, out.block_hash)
                node = NodeView(found.known, found.block.height if found.block else None,
                                found.in_main_chain, found.match_key, found.amount)
            for kind, detail in disagreements(rec, node, None):
                report.findings.append(Finding(
                    f"refund_{kind}", coin, out.txid, out.output_index, None,
                    f"refund {out.refund_id}: {detail.replace('invoice', 'refund')}"))
        report.checked_refund_outputs += len(outputs)

    async def _check(self, chain: Auditable, row: LedgerRow, mined: Observed | None,
                     report: Report) -> None:
        rec = Recorded(row.amount, row.match_key, row.block_hash, row.block_height,
                       row.status)
        node: NodeView | None = None
        if row.block_hash is not None:
            found = await chain.lookup(row.txid, row.output_index, row.block_hash)
            node = NodeView(found.known, found.block.height if found.block else None,
                            found.in_main_chain, found.match_key, found.amount)
        elif mined is not None:
            node = NodeView(True, mined.block.height if mined.block else None, True,
                            mined.match_key, mined.amount)
        elif row.status != PaymentStatus.REVERTED:
            found = await chain.lookup(row.txid, row.output_index, None)
            node = NodeView(found.known, None, False, found.match_key, found.amount)
        height = mined.block.height if mined is not None and mined.block else None
        for kind, detail in disagreements(rec, node, height):
            report.findings.append(Finding(kind, row.coin, row.txid, row.output_index,
                                           row.invoice_id, detail))
