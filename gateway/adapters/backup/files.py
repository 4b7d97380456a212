"""Encrypted backups of the configured database: create, restore, prune.

SQLite is copied with its online backup API (consistent while the gateway writes);
PostgreSQL with `pg_dump --format=custom`, streamed through the cipher. Plaintext never
reaches the backup directory except, for SQLite, as a 0600 temporary file in a private
0700 directory that is removed when the copy is encrypted."""

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy.engine import make_url

from gateway.adapters.backup.stream import decrypt, encrypt

_NAME = re.compile(r"^gateway-(\d{8}T\d{6}Z)\.(sqlite|pgdump)\.enc$")


_TEMP_PREFIX = ".gateway-backup-"


class BackupError(Exception):
    pass


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_env(url: str) -> dict[str, str]:
    """Connection details as libpq variables: a password never appears in `ps`."""
    u = make_url(url)
    env = dict(os.environ)
    for var, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value is not None:
            env[var] = str(value)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt install postgresql-client)")
    return path


@contextmanager
def _private_dir(near: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=near))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Backups:
    def __init__(self, database_url: str, key: bytes) -> None:
        self._url = database_url
        self._key = key
        self._kind = "pgdump" if make_url(database_url).get_backend_name() == "postgresql" \
            else "sqlite"

    def create(self, out_dir: Path, now: datetime) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = out_dir / f"gateway-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.{self._kind}.enc"
        partial = target.with_name(target.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as sink:
                if self._kind == "sqlite":
                    self._sqlite_into(sink, out_dir)
                else:
                    self._pg_into(sink)
            partial.replace(target)  # a backup exists whole or not at all
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target

    def _sqlite_into(self, sink: BinaryIO, near: Path) -> None:
        source_path = _sqlite_path(self._url)
        if not source_path.exists():
            raise BackupError(f"no database at {source_path}")
        with _private_dir(near) as tmp:
            copy = tmp / "copy.sqlite"
            src = sqlite3.connect(source_path)
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            with copy.open("rb") as plain:
                encrypt(plain, sink, self._key)

    def _pg_into(self, sink: BinaryIO) -> None:
        proc = subprocess.Popen(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_pg_env(self._url))
        assert proc.stdout is not None
        encrypt(cast(BinaryIO, proc.stdout), sink, self._key)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise BackupError(f"pg_dump failed: {err.decode(errors='replace').strip()[:300]}")

    def restore(self, file: Path, force: bool = False) -> None:
        match = _NAME.match(file.name)
        kind = match.group(2) if match else self._kind
        if kind != self._kind:
            raise BackupError(f"{file.name} is a {kind} backup; the configured database is "
                              f"{'PostgreSQL' if self._kind == 'pgdump' else 'SQLite'}")
        with file.open("rb") as source:
            if self._kind == "sqlite":
                self._sqlite_from(source, force)
            else:
                self._pg_from(source, force)

    def _sqlite_from(self, source: BinaryIO, force: bool) -> None:
        target = _sqlite_path(self._url)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not force and _sqlite_has_tables(target):
            raise BackupError(f"{target} already holds data; restore into an empty database "
                              "or pass --force to replace it")
        with _private_dir(target.parent) as tmp:
            plain = tmp / "restore.sqlite"
            with plain.open("wb") as sink:
                decrypt(source, sink, self._key)
            src = sqlite3.connect(plain)
            dst = sqlite3.connect(target)
            try:
                if src.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                    raise BackupError("the decrypted database fails its integrity check")
                src.backup(dst)
            finally:
                dst.close()
                src.close()

    def _pg_from(self, source: BinaryIO, force: bool) -> None:
        env = _pg_env(self._url)
        if not force:
            count = subprocess.run(
                [_tool("psql"), "-Atc", "SELECT count(*) FROM information_schema.tables "
                 "WHERE table_schema = 'public'"], env=env, capture_output=True, text=True)
            if count.returncode != 0:
                raise BackupError(f"database unavailable: {count.stderr.strip()[:300]}")
            if int(count.stdout.strip() or 0) > 0:
                raise BackupError("the database already holds tables; restore into an empty "
                                  "database or pass --force to replace it")
        args = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                "--single-transaction", f"--dbname={env.get('PGDATABASE', '')}"]
        if force:
            args[1:1] = ["--clean", "--if-exists"]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        try:
            decrypt(source, cast(BinaryIO, proc.stdin), self._key)
        finally:
            proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise BackupError(f"pg_restore failed: {err.decode(errors='replace').strip()[:300]}")


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(path)
    try:
        count: int = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        return count > 0
    finally:
        conn.close()


def backup_time(path: Path) -> datetime | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def prune(directory: Path, keep: timedelta, now: datetime) -> list[Path]:
    """Backups older than `keep` (by the time in their name), and leftovers of crashed
    runs older than a day, are deleted. Files that are not ours are left alone. One file
    that cannot be deleted does not keep the others: they go, then `BackupError` names
    it."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    failed: list[str] = []
    for path in sorted(directory.iterdir()):
        try:
            if _prune_one(path, keep, now):
                removed.append(path)
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or type(exc).__name__}")
    if failed:
        raise BackupError(f"{len(removed)} old backup(s) deleted, {len(failed)} could not "
                          f"be: {'; '.join(failed[:3])}")
    return removed


def backup_times(directory: Path) -> list[datetime]:
    """When each backup in the folder was taken (by its name)."""
    if not directory.is_dir():
        return []
    return [t for p in directory.iterdir() if (t := backup_time(p)) is not None]


def _prune_one(path: Path, keep: timedelta, now: datetime) -> bool:
    day_ago = now - timedelta(days=1)
    if path.is_dir() and path.name.startswith(_TEMP_PREFIX):
        # The plaintext copy of a SQLite backup whose process was killed.
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < day_ago:
            shutil.rmtree(path, ignore_errors=True)
            return True
        return False
    taken = backup_time(path)
    if taken is not None:
        stale = taken < now - keep
    else:  # a backup interrupted by a crash
        stale = path.name.endswith(".enc.partial") and datetime.fromtimestamp(
            path.stat().st_mtime, UTC) < day_ago
    if stale:
        path.unlink()
    return stale
