"""Rendering tables of plain values as JSON, CSV, or a zip of one CSV per table."""

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Cells that a spreadsheet would run as a formula are prefixed with a quote (OWASP CSV
# injection): a display name like "=HYPERLINK(...)" must stay text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
             header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def tables_json(tables: Mapping[str, list[dict[str, Any]]]) -> bytes:
    return json.dumps(tables, indent=2, ensure_ascii=False).encode()


def tables_zip(tables: Mapping[str, list[dict[str, Any]]],
               columns: Mapping[str, Sequence[str]]) -> bytes:
    """One `<table>.csv` per table; an empty table still has its header row."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in tables.items():
            cols = list(columns.get(name) or (rows[0].keys() if rows else ()))
            archive.writestr(f"{name}.csv", csv_text(cols, rows))
    return buffer.getvalue()
