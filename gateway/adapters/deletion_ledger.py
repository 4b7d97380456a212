"""The deletion ledger: account ids and erasure times, nothing else, in a file outside
the database, so a restored backup cannot bring an erased customer back (the ledger is
re-applied after every restore and by every retention run)."""

import os
from datetime import datetime
from pathlib import Path

from gateway.domain.timestamps import parse_time, rfc3339


class FileDeletionLedger:
    """One line per erasure, `<account id> <RFC 3339 time>`, appended and synced before
    the erasure commits (an erasure that then fails is re-applied later: it was due)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, account_id: str, at: datetime) -> None:
        if not account_id.isascii() or any(c.isspace() for c in account_id):
            raise ValueError("an account id has no spaces")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{account_id} {rfc3339(at)}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> dict[str, datetime]:
        """Account id -> first erasure time. A torn last line (a crash mid-append) is
        skipped."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return {}
        found: dict[str, datetime] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                at = parse_time(parts[1])
            except ValueError:
                continue
            found.setdefault(parts[0], at)
        return found
