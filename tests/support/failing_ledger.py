"""The real file deletion ledger, except that writing chosen accounts' entries fails (as a
full disk or an I/O error would), through the ledger's own interface."""

import errno
from datetime import datetime

from gateway.adapters.deletion_ledger import FileDeletionLedger


class FailingFor:
    def __init__(self, ledger: FileDeletionLedger, accounts: set[str]) -> None:
        self.ledger, self.accounts = ledger, accounts

    def record(self, account_id: str, at: datetime) -> None:
        if account_id in self.accounts:
            raise OSError(errno.EIO, "Input/output error", str(self.ledger.path))
        self.ledger.record(account_id, at)

    def entries(self) -> dict[str, datetime]:
        return self.ledger.entries()

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        return self.ledger.prune(before, dry_run)
