import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.domain.errors import InvalidInput
from gateway.services.errors import Forbidden, NotFound, Unauthorized
from gateway.services.ids import new_id
from gateway.services.ports import ApiKeyRecord, ApiKeysUnit, Clock

API_KEY_PREFIX = "gk_"

SCOPES: tuple[str, ...] = (
    "invoices:read",
    "invoices:write",
    # Email and names: only for keys that need them, and every read is audited.
    "personal_data:read",
    "payments:read",
    "webhooks:manage",
    "events:read",
)


class KeyCache:
    """Live API keys by digest, so a request's key check costs no database round trip.
    Emptied by any revocation: at once by a revocation on this instance
    (`ApiKeyService.revoke`), by the change notice of one on another instance
    (`changes.API_KEYS`, PostgreSQL's NOTIFY), and, where no notice travels (SQLite: a
    CLI command is another process), when `revision` (a cheap read of the keys' revocation
    state) changes. An entry also lapses after `max_age` seconds, as a safety net.

    A read that began before a revocation must not put its (then live) record back: a
    `put` carries the `epoch` it read under and is dropped if the cache was emptied since.
    """

    def __init__(self, size: int = 1000, max_age: float = 60.0,
                 revision: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[ApiKeyRecord, float]] = {}
        self._size = size
        self._max_age = max_age
        self._revision = revision
        self._seen: object = object()  # read at the first `get` (no I/O when built)
        self._clock = clock
        self.epoch = 0

    def get(self, digest: str) -> ApiKeyRecord | None:
        if self._revision is not None:
            seen = self._revision()
            if seen != self._seen:
                self.clear()
                self._seen = seen
        entry = self._entries.get(digest)
        if entry is None:
            return None
        record, expires = entry
        if self._clock() >= expires:
            del self._entries[digest]
            return None
        return record

    def put(self, digest: str, record: ApiKeyRecord, epoch: int) -> None:
        if epoch != self.epoch or record.revoked_at is not None:
            return
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[digest] = (record, self._clock() + self._max_age)

    def clear(self, _keys: object = None) -> None:
        self._entries.clear()
        self.epoch += 1


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKeyRecord
    secret: str  # shown once, never stored


class ApiKeyService:
    def __init__(
        self,
        uow: Callable[[], ApiKeysUnit],
        clock: Clock,
        generate: Callable[[], str],
        digest: Callable[[str], str],
        reader: Callable[[], ApiKeysUnit] | None = None,
        cache: KeyCache | None = None,
    ) -> None:
        self._uow = uow
        self._reader = reader or uow  # every request's key lookup: reads only
        self._clock = clock
        self._generate = generate
        self._digest = digest
        self._cache = cache

    async def create(self, name: str, scopes: Iterable[str]) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("name", "must be 1-100 characters")
        wanted = frozenset(scopes)
        unknown = sorted(wanted - set(SCOPES))
        if unknown:
            raise InvalidInput("scope", f"unknown scope(s) {', '.join(unknown)}; "
                               f"known: {', '.join(SCOPES)}")
        if not wanted:
            raise InvalidInput("scope", "at least one scope is required")
        record = ApiKeyRecord(new_id("key_"), name, wanted, self._clock())
        secret = self._generate()
        async with self._uow() as uow:
            await uow.api_keys.add(record, self._digest(secret))
            await uow.commit()
        return CreatedKey(record, secret)

    async def list(self) -> list[ApiKeyRecord]:
        async with self._reader() as uow:
            return await uow.api_keys.all()

    async def revoke(self, key_id: str) -> None:
        """The key stops working at once, on every instance; its row stays for the record."""
        async with self._uow() as uow:
            if not await uow.api_keys.revoke(key_id, self._clock()):
                raise NotFound("API key (or it was already revoked)")
            await uow.commit()
        if self._cache is not None:
            self._cache.clear()  # other instances: the commit's change notice

    async def authorize(self, secret: str, scope: str) -> ApiKeyRecord:
        digest = self._digest(secret)
        record = self._cache.get(digest) if self._cache is not None else None
        if record is None:
            record = await self._read(digest)
        if record is None or record.revoked_at is not None:
            raise Unauthorized("API key is not valid")
        if scope not in record.scopes:
            raise Forbidden(f"this API key lacks the scope {scope!r}")
        return record

    async def _read(self, digest: str) -> ApiKeyRecord | None:
        epoch = self._cache.epoch if self._cache is not None else 0
        async with self._reader() as uow:
            record = await uow.api_keys.by_hash(digest)
        if record is not None and self._cache is not None:
            self._cache.put(digest, record, epoch)
        return record
