"""SQLite: how many API keys have been revoked, read in microseconds on a connection of
its own. The server's key cache (`services.api_keys.KeyCache`) empties when it changes:
on SQLite no change notice travels between processes, and a key revoked by a CLI command
(another process) must stop working at once. Keys are never deleted, so the count only
grows. PostgreSQL needs none of this: the revoking unit of work's NOTIFY reaches every
instance."""

import sqlite3
from pathlib import Path

from gateway.adapters.db.engine import sqlite_path

QUERY = "SELECT count(revoked_at) FROM api_keys"


class SqliteRevocations:
    def __init__(self, path: str) -> None:
        self._uri = f"{Path(path).absolute().as_uri()}?mode=rw"  # never creates the file
        self._conn: sqlite3.Connection | None = None

    def __call__(self) -> object:
        """The revision; on any error a new object, so the cache trusts nothing cached."""
        try:
            if self._conn is None:
                conn = sqlite3.connect(self._uri, uri=True, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA query_only=1")
                self._conn = conn
            return self._conn.execute(QUERY).fetchone()[0]
        except sqlite3.Error:
            self.close()
            return object()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        self.close()


def revocations(url: str) -> SqliteRevocations | None:
    path = sqlite_path(url)
    return SqliteRevocations(path) if path is not None else None
