from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.tables import accounts, api_keys, sessions
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.services.errors import Conflict, NotFound
from gateway.services.ports import ApiKeyRecord, Login, Profile, SessionRecord


def _account(row: object) -> Account:
    r = row._mapping  # type: ignore[attr-defined]
    return Account(
        id=r["id"],
        created_at=r["created_at"],
        datacenter=r["datacenter"],
        currency=r["currency"],
        activated_at=r["activated_at"],
    )


class SqlAccounts:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    async def add(
        self, account: Account, profile: Profile, email_index: str, password_hash: str,
        policy_version: str,
    ) -> None:
        c, aid = self._cipher, account.id
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(accounts).values(
                        id=aid,
                        email_index=email_index,
                        email_ct=c.encrypt(profile.email, aid),
                        display_name_ct=c.encrypt_optional(profile.display_name, aid),
                        company_ct=c.encrypt_optional(profile.company, aid),
                        password_hash=password_hash,
                        datacenter=account.datacenter,
                        currency=account.currency,
                        policy_version=policy_version,
                        created_at=account.created_at,
                        activated_at=account.activated_at,
                    )
                )
        except IntegrityError:
            raise Conflict("an account with this email already exists") from None

    async def get(self, account_id: str, for_update: bool = False) -> Account | None:
        query = select(accounts).where(accounts.c.id == account_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _account(row) if row else None

    async def profile(self, account_id: str) -> Profile:
        row = (
            await self._conn.execute(
                select(accounts.c.email_ct, accounts.c.display_name_ct, accounts.c.company_ct)
                .where(accounts.c.id == account_id)
            )
        ).first()
        if row is None:
            raise NotFound("account")
        c = self._cipher
        return Profile(
            c.decrypt(row.email_ct, account_id),
            c.decrypt_optional(row.display_name_ct, account_id),
            c.decrypt_optional(row.company_ct, account_id),
        )

    async def find_login(self, email_index: str) -> Login | None:
        row = (
            await self._conn.execute(select(accounts).where(accounts.c.email_index == email_index))
        ).first()
        return Login(_account(row), row.password_hash) if row else None

    async def save(self, account: Account) -> None:
        await self._conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(
                datacenter=account.datacenter,
                currency=account.currency,
                activated_at=account.activated_at,
            )
        )

    async def set_password_hash(self, account_id: str, password_hash: str) -> None:
        await self._conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash)
        )


class SqlSessions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: SessionRecord, now: datetime) -> None:
        await self._conn.execute(
            insert(sessions).values(
                id=session.id,
                account_id=session.account_id,
                created_at=now,
                expires_at=session.expires_at,
                revoked_at=session.revoked_at,
            )
        )

    async def get(self, session_id: str) -> SessionRecord | None:
        query = select(sessions).where(sessions.c.id == session_id)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return SessionRecord(row.id, row.account_id, row.expires_at, row.revoked_at)

    async def revoke(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class SqlApiKeys:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        await self._conn.execute(
            insert(api_keys).values(
                id=record.id,
                name=record.name,
                key_hash=key_hash,
                scopes=sorted(record.scopes),
                created_at=record.created_at,
                revoked_at=record.revoked_at,
            )
        )

    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = (
            await self._conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
        ).first()
        if row is None:
            return None
        return ApiKeyRecord(row.id, row.name, frozenset(row.scopes), row.created_at, row.revoked_at)
