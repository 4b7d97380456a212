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
    ) -> None:
        self._uow = uow
        self._reader = reader or uow  # every request's key lookup: reads only
        self._clock = clock
        self._generate = generate
        self._digest = digest

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

    async def authorize(self, secret: str, scope: str) -> ApiKeyRecord:
        async with self._reader() as uow:
            record = await uow.api_keys.by_hash(self._digest(secret))
        if record is None or record.revoked_at is not None:
            raise Unauthorized("API key is not valid")
        if scope not in record.scopes:
            raise Forbidden(f"this API key lacks the scope {scope!r}")
        return record
