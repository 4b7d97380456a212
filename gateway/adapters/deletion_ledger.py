"""The deletion ledger: account ids and erasure times, nothing else, in a file outside
the database, so a restored backup cannot bring an erased customer back (the ledger is
re-applied after every restore and by every retention run)."""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
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
        with self._locked():  # opened under the lock: never the file a prune replaces
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                line = f"{account_id} {rfc3339(at)}\n".encode()
                # A torn last line (a crash mid-append) must stay a line of its own:
                # appended to, it would swallow this entry and `entries()` would skip
                # the merged line, losing a committed erasure.
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Appends and prunes one at a time (other processes too: `gateway backup
        restore`, several instances on shared storage). A file of its own, as a prune
        replaces the ledger."""
        fd = os.open(self.path.with_name(self.path.name + ".lock"),
                     os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        """Drops every line of the accounts first erased before `before` (and lines that
        are not entries: a torn append), writing the rest to a new file that replaces the
        ledger only once synced, so a crash leaves the old ledger or the new one whole.
        Returns how many accounts were dropped (dry run: would be)."""
        old = [a for a, at in self.entries().items() if at < before]
        if dry_run or not old:
            return len(old)
        with self._locked():
            entries = self.entries()
            keep = {a for a, at in entries.items() if at >= before}
            text = self.path.read_text(encoding="ascii", errors="replace")
            lines = [line for line in text.splitlines()
                     if len(line.split()) == 2 and line.split()[0] in keep]
            tmp = self.path.with_name(self.path.name + ".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, "".join(line + "\n" for line in lines).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
            return len(entries) - len(keep)

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
