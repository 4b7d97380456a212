"""`gateway keys rotate-data`: every encrypted value rewritten under the newest data key
and in the current format (bound to its column and record), table by table, in batches
that each commit on their own.

Resumable without any state of its own: the query only finds values that do not start
with the newest key's current header, so a run that was stopped, or that could not read
some values, is finished by running it again. A value that cannot be read is left as it
is and reported; the others are rewritten all the same."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, and_, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.encrypted import EncryptedColumn, by_table
from gateway.adapters.db.engine import read_transaction, write_transaction
from gateway.adapters.fields import LEGACY, FieldCipher, FieldCipherError

PASSES = 3  # over one table, while values under older keys keep appearing behind it


@dataclass(frozen=True)
class RotationPolicy:
    # Rows per transaction: small enough that SQLite's write lock (and PostgreSQL's row
    # locks) are held for milliseconds, so a running gateway only waits briefly.
    batch_size: int = 200

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("the batch size must be at least 1")


@dataclass(frozen=True)
class Failure:
    column: str  # "table.column"
    row: str  # the row's primary key
    reason: str  # FieldCipherError's message: where, never the value


@dataclass
class TableReport:
    table: str
    values: int = 0  # rewritten
    rows: int = 0  # with at least one value rewritten
    failures: list[Failure] = field(default_factory=list)
    left: int = 0  # rows still stale after the last pass, beyond those that failed

    def line(self) -> str:
        tail = f", {self.left} rows written under an older key meanwhile" if self.left else ""
        return (f"{self.table}: {self.values} values re-encrypted in {self.rows} rows, "
                f"{len(self.failures)} failed{tail}")

    def add(self, other: "TableReport") -> None:
        self.values += other.values
        self.rows += other.rows
        seen = {(f.column, f.row) for f in self.failures}
        self.failures += [f for f in other.failures if (f.column, f.row) not in seen]


def reseal_row(cipher: FieldCipher, columns: Sequence[EncryptedColumn], row: Any
               ) -> tuple[dict[str, bytes], list[Failure]]:
    """One row's values that are not current, sealed again; and those that cannot be
    read. No I/O: `row` has the primary key as `pk` and each column by its name."""
    changes: dict[str, bytes] = {}
    failures: list[Failure] = []
    m = row._mapping
    for col in columns:
        blob = m[col.column]
        if not blob or cipher.is_current(blob):  # NULL, an erased account's b"", or done
            continue
        try:
            changes[col.column] = cipher.reseal(blob, col.ref(m[f"rec_{col.column}"]))
        except FieldCipherError as exc:
            failures.append(Failure(col.name, str(m["pk"]), str(exc)))
    return changes, failures


def _stale(cipher: FieldCipher, columns: Sequence[EncryptedColumn]) -> Any:
    """SQL: some value of the row does not start with the current header."""
    prefix = cipher.current_prefix()
    return or_(*(and_(c.ct.is_not(None), c.ct != literal(b"", LargeBinary),
                      func.substr(c.ct, 1, len(prefix)) != literal(prefix, LargeBinary))
                 for c in columns))


async def count_format1(engine: AsyncEngine) -> int:
    """Rows holding a value from before fields were bound to their column (no key
    needed: the format is the first byte)."""
    total = 0
    async with read_transaction(engine, small=False) as conn:
        for columns in by_table().values():
            first = or_(*(func.substr(c.ct, 1, 1) == literal(bytes([LEGACY]), LargeBinary)
                          for c in columns))
            total += int((await conn.execute(
                select(func.count()).select_from(columns[0].table).where(first)
            )).scalar_one())
    return total


def _pk(columns: Sequence[EncryptedColumn]) -> Any:
    (pk,) = columns[0].table.primary_key.columns
    return pk


async def count_stale(engine: AsyncEngine, cipher: FieldCipher,
                      tables: dict[str, tuple[EncryptedColumn, ...]] | None = None
                      ) -> dict[str, int]:
    """Per table, the rows that hold a value not yet under the newest key and format."""
    counts: dict[str, int] = {}
    async with read_transaction(engine, small=False) as conn:
        for name, columns in (tables or by_table()).items():
            counts[name] = int((await conn.execute(
                select(func.count()).select_from(columns[0].table)
                .where(_stale(cipher, columns)))).scalar_one())
    return counts


async def rotate_table(engine: AsyncEngine, cipher: FieldCipher, name: str,
                       columns: Sequence[EncryptedColumn], policy: RotationPolicy,
                       progress: Callable[[int], None] | None = None) -> TableReport:
    report = TableReport(name)
    table, pk = columns[0].table, _pk(columns)
    selected = [pk.label("pk")]
    for col in columns:
        selected += [col.ct, table.c[col.record_column].label(f"rec_{col.column}")]
    last: Any = None
    while True:
        query = select(*selected).where(_stale(cipher, columns))
        if last is not None:
            # Keyset order: rows that failed stay stale but are not fetched again.
            query = query.where(pk > last)
        query = query.order_by(pk).limit(policy.batch_size).with_for_update()
        async with write_transaction(engine) as conn:
            rows = (await conn.execute(query)).all()
            for row in rows:
                changes, failures = reseal_row(cipher, columns, row)
                report.failures.extend(failures)
                if changes:
                    await conn.execute(update(table).where(pk == row.pk).values(**changes))
                    report.values += len(changes)
                    report.rows += 1
        if progress is not None:
            progress(len(rows))
        if len(rows) < policy.batch_size:
            return report
        last = rows[-1].pk


async def rotate_data(engine: AsyncEngine, cipher: FieldCipher,
                      policy: RotationPolicy = RotationPolicy(),
                      progress: Callable[[int], None] | None = None,
                      on_table: Callable[[TableReport], None] | None = None,
                      ) -> list[TableReport]:
    """Every table with encrypted columns, one after another; `on_table` hears of each
    as soon as it is done (the command prints its line then)."""
    reports = []
    for name, columns in by_table().items():
        report = await rotate_table(engine, cipher, name, columns, policy, progress)
        # A value written under an older key behind the pass (an instance not restarted
        # yet, a job with the old configuration) is found by counting again: the run
        # never claims a table done while one is left.
        for _ in range(PASSES - 1):
            report.left = (await count_stale(engine, cipher, {name: columns}))[name] \
                - len({f.row for f in report.failures})
            if report.left <= 0:
                break
            report.add(await rotate_table(engine, cipher, name, columns, policy, progress))
        report.left = max(0, (await count_stale(engine, cipher, {name: columns}))[name]
                          - len({f.row for f in report.failures}))
        if on_table is not None:
            on_table(report)
        reports.append(report)
    return reports
