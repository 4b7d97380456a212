from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.adapters.db.encrypted import (
    ACCOUNT_COMPANY,
    ACCOUNT_DISPLAY_NAME,
    ACCOUNT_EMAIL,
    ACCOUNT_TOTP,
)
from gateway.adapters.db.tables import (
    accounts,
    api_keys,
    cash_tokens,
    invoices,
    login_throttle,
    mail_queue,
    payments,
    policy_notices,
    recovery_codes,
    renewals,
    security_log,
    sessions,
)
from gateway.adapters.fields import FieldCipher
from gateway.domain.accounts import Account
from gateway.domain.billing import BillingState
from gateway.services.errors import Conflict, NotFound
from gateway.services.ports import (
    AccountDetails,
    ApiKeyRecord,
    Login,
    Profile,
    SessionRecord,
    TotpState,
)

# Not a valid argon2 hash, so no password can ever match it.
TOMBSTONE_HASH = "!deleted"


def _account(row: object) -> Account:
    r = row._mapping  # type: ignore[attr-defined]
    return Account(
        id=r["id"],
        created_at=r["created_at"],
        datacenter=r["datacenter"],
        currency=r["currency"],
        activated_at=r["activated_at"],
        policy_version=r["policy_version"],
        deletion_due_at=r["deletion_due_at"],
        deleted_at=r["deleted_at"],
        plan=r["plan"],
        renewal_coin=r["renewal_coin"],
        paid_until=r["paid_until"],
        paid_since=r["paid_since"],
        billing_state=BillingState(r["billing_state"]) if r["billing_state"] else None,
        renewal_reminders=bool(r["renewal_reminders"]),
        language=r["language"],
    )



# Built once: every invoice creation reads its account (a statement object keeps its
# cache key, so no building, keying or compiling per call).
_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("account_id"))
_ACCOUNT_FOR_UPDATE = _ACCOUNT.with_for_update()

class SqlAccounts:
    def __init__(self, conn: AsyncConnection, cipher: FieldCipher,
                 collect: Callable[[Account], None] = lambda _a: None) -> None:
        self._conn = conn
        self._cipher = cipher
        self._collect = collect  # the unit of work publishes the events at commit

    async def add(
        self, account: Account, profile: Profile, email_index: str, password_hash: str,
        policy_version: str,
    ) -> None:
        c, aid = self._cipher, account.id
        self._collect(account)
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(accounts).values(
                        id=aid,
                        email_index=email_index,
                        email_ct=c.encrypt(profile.email, ACCOUNT_EMAIL.ref(aid)),
                        display_name_ct=c.encrypt_optional(
                            profile.display_name, ACCOUNT_DISPLAY_NAME.ref(aid)),
                        company_ct=c.encrypt_optional(profile.company,
                                                      ACCOUNT_COMPANY.ref(aid)),
                        password_hash=password_hash,
                        datacenter=account.datacenter,
                        currency=account.currency,
                        language=account.language,
                        policy_version=policy_version,
                        created_at=account.created_at,
                        activated_at=account.activated_at,
                    )
                )
        except IntegrityError:
            raise Conflict("an account with this email already exists") from None

    async def get(self, account_id: str, for_update: bool = False) -> Account | None:
        query = _ACCOUNT_FOR_UPDATE if for_update else _ACCOUNT
        row = (await self._conn.execute(query, {"account_id": account_id})).first()
        return _account(row) if row else None

    async def profile(self, account_id: str) -> Profile:
        row = (
            await self._conn.execute(
                select(accounts.c.email_ct, accounts.c.display_name_ct, accounts.c.company_ct)
                .where(accounts.c.id == account_id)
            )
        ).first()
        if row is None or not row.email_ct:  # unknown, or a tombstone
            raise NotFound("account")
        c = self._cipher
        return Profile(
            c.decrypt(row.email_ct, ACCOUNT_EMAIL.ref(account_id)),
            c.decrypt_optional(row.display_name_ct, ACCOUNT_DISPLAY_NAME.ref(account_id)),
            c.decrypt_optional(row.company_ct, ACCOUNT_COMPANY.ref(account_id)),
        )

    async def find_login(self, email_index: str) -> Login | None:
        row = (
            await self._conn.execute(select(accounts).where(accounts.c.email_index == email_index))
        ).first()
        return Login(_account(row), row.password_hash) if row else None

    async def save(self, account: Account) -> None:
        self._collect(account)
        await self._conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(
                created_at=account.created_at,
                datacenter=account.datacenter,
                currency=account.currency,
                activated_at=account.activated_at,
                policy_version=account.policy_version,
                deletion_due_at=account.deletion_due_at,
                deleted_at=account.deleted_at,
                plan=account.plan,
                renewal_coin=account.renewal_coin,
                paid_until=account.paid_until,
                paid_since=account.paid_since,
                billing_state=account.billing_state.value if account.billing_state else None,
                renewal_reminders=account.renewal_reminders,
                language=account.language,
            )
        )

    async def update_profile(self, account_id: str, profile: Profile, email_index: str) -> None:
        c = self._cipher
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    update(accounts).where(accounts.c.id == account_id).values(
                        email_index=email_index,
                        email_ct=c.encrypt(profile.email, ACCOUNT_EMAIL.ref(account_id)),
                        display_name_ct=c.encrypt_optional(
                            profile.display_name, ACCOUNT_DISPLAY_NAME.ref(account_id)),
                        company_ct=c.encrypt_optional(profile.company,
                                                      ACCOUNT_COMPANY.ref(account_id)),
                    )
                )
        except IntegrityError:
            raise Conflict("an account with this email already exists") from None

    async def details(self, account_id: str) -> AccountDetails:
        row = (await self._conn.execute(select(
            accounts.c.email_verified_at, accounts.c.totp_enabled_at).where(
                accounts.c.id == account_id))).one()
        return AccountDetails(row.email_verified_at, row.totp_enabled_at)

    async def due_for_deletion(self, now: datetime) -> list[str]:
        rows = await self._conn.execute(
            select(accounts.c.id).where(accounts.c.deletion_due_at <= now,
                                        accounts.c.deleted_at.is_(None)).order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    async def alive_among(self, account_ids: list[str]) -> list[str]:
        """Those of the ids whose account exists and is not erased."""
        found: list[str] = []
        for start in range(0, len(account_ids), 500):
            rows = await self._conn.execute(select(accounts.c.id).where(
                accounts.c.id.in_(account_ids[start:start + 500]),
                accounts.c.deleted_at.is_(None)).order_by(accounts.c.id))
            found.extend(str(r.id) for r in rows)
        return found

    async def record_login(self, account_id: str, now: datetime) -> None:
        """A login: the account is in use (an inactivity notice no longer applies)."""
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            last_login_at=now, inactivity_notice_at=None))

    async def set_objection(self, account_id: str, at: datetime | None) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            optional_processing_objected_at=at))

    async def objection(self, account_id: str) -> datetime | None:
        value: datetime | None = (await self._conn.execute(
            select(accounts.c.optional_processing_objected_at)
            .where(accounts.c.id == account_id))).scalar_one_or_none()
        return value

    def _never_paid_inactive(self, last_active_before: datetime) -> list[Any]:
        """No settled invoice ever; no login, invoice created or payment seen (confirmed
        or not) since the cut-off: a customer paying during the notice is kept."""
        cut = last_active_before
        mine = invoices.c.account_id == accounts.c.id
        paid = select(invoices.c.id).where(mine, invoices.c.settled_at.is_not(None))
        recent_invoice = select(invoices.c.id).where(mine, invoices.c.created_at >= cut)
        recent_payment = select(payments.c.id).join(
            invoices, payments.c.invoice_id == invoices.c.id).where(
                mine, payments.c.seen_at >= cut)
        return [accounts.c.deleted_at.is_(None), accounts.c.deletion_due_at.is_(None),
                ~exists(paid), ~exists(recent_invoice), ~exists(recent_payment),
                func.coalesce(accounts.c.last_login_at, accounts.c.created_at) < cut]

    async def to_warn_of_inactivity(self, last_active_before: datetime) -> list[str]:
        """Accounts with no settled invoice and no activity since the cut-off, not
        warned for this idle stretch (a notice from before an invoice or payment since
        is stale: a login clears the notice, they do not)."""
        rows = await self._conn.execute(select(accounts.c.id).where(
            *self._never_paid_inactive(last_active_before),
            or_(accounts.c.inactivity_notice_at.is_(None),
                accounts.c.inactivity_notice_at < last_active_before))
            .order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    async def warned_of_inactivity(self, account_id: str, now: datetime) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id)
                                 .values(inactivity_notice_at=now))

    async def inactive_after_notice(self, last_active_before: datetime,
                                    warned_before: datetime) -> list[str]:
        """Accounts still inactive and never paid, warned for this idle stretch before
        `warned_before`, their notice no longer waiting in the mail queue."""
        rows = await self._conn.execute(select(accounts.c.id).where(
            *self._never_paid_inactive(last_active_before),
            *self._warned_and_delivered(last_active_before, warned_before))
            .order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    @staticmethod
    def _warned_and_delivered(last_active_before: datetime,
                              warned_before: datetime) -> list[Any]:
        # A notice still queued has not reached the SMTP server yet (one dropped
        # undelivered clears the notice time: gateway.adapters.mail_queue.drop_mail).
        queued = select(mail_queue.c.id).where(
            mail_queue.c.notice_account_id == accounts.c.id)
        return [accounts.c.inactivity_notice_at >= last_active_before,
                accounts.c.inactivity_notice_at <= warned_before, ~exists(queued)]

    async def still_inactive(self, account_id: str, unpaid_before: datetime,
                             lapsed_before: datetime, warned_before: datetime) -> bool:
        """Read again under the account's lock just before the deletion: no login (which
        clears the notice), invoice or payment since it was listed."""
        query = select(accounts.c.id).where(accounts.c.id == account_id)
        never_paid = query.where(*self._never_paid_inactive(unpaid_before),
                                 *self._warned_and_delivered(unpaid_before, warned_before))
        lapsed = query.where(*self._lapsed_idle(lapsed_before),
                             *self._warned_and_delivered(lapsed_before, warned_before))
        for q in (never_paid, lapsed):
            if (await self._conn.execute(q)).first() is not None:
                return True
        return False

    def _lapsed_idle(self, last_active_before: datetime) -> list[Any]:
        """Paid once; no paid time, payment (any invoice, settled or not), login or
        session use since the cut-off. Each is a plain comparison, so the same query
        works on SQLite and PostgreSQL (no GREATEST)."""
        cut = last_active_before
        mine = invoices.c.account_id == accounts.c.id
        paid = select(invoices.c.id).where(mine, invoices.c.settled_at.is_not(None))
        recent_settled = select(invoices.c.id).where(mine, invoices.c.settled_at >= cut)
        recent_payment = select(payments.c.id).join(
            invoices, payments.c.invoice_id == invoices.c.id).where(
                mine, payments.c.seen_at >= cut)
        recent_session = select(sessions.c.id).where(
            sessions.c.account_id == accounts.c.id,
            func.coalesce(sessions.c.last_seen_at, sessions.c.created_at) >= cut)
        return [accounts.c.deleted_at.is_(None), accounts.c.deletion_due_at.is_(None),
                exists(paid),
                func.coalesce(accounts.c.last_login_at, accounts.c.created_at) < cut,
                or_(accounts.c.paid_until.is_(None), accounts.c.paid_until < cut),
                ~exists(recent_settled), ~exists(recent_payment), ~exists(recent_session)]

    async def lapsed_to_warn(self, last_active_before: datetime) -> list[str]:
        # A notice from before the idle stretch (the customer paid again since, which
        # clears no notice as a login does) is no notice for this one.
        rows = await self._conn.execute(select(accounts.c.id).where(
            *self._lapsed_idle(last_active_before),
            or_(accounts.c.inactivity_notice_at.is_(None),
                accounts.c.inactivity_notice_at < last_active_before))
            .order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    async def lapsed_after_notice(self, last_active_before: datetime,
                                  warned_before: datetime) -> list[str]:
        rows = await self._conn.execute(select(accounts.c.id).where(
            *self._lapsed_idle(last_active_before),
            *self._warned_and_delivered(last_active_before, warned_before))
            .order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    async def erase_personal_data(self, account_id: str) -> None:
        # The tombstone keeps the id only. The blind index is replaced too: it is derived
        # from the email, so it would let anyone with the index key confirm a guess. Login
        # throttle rows are keyed by that index and go with it, as does the account's
        # second-factor and password counters (gateway.services.attempts). The per-network
        # login counters are blind indexes of the index: they expire with retention.
        index = (await self._conn.execute(select(accounts.c.email_index).where(
            accounts.c.id == account_id))).scalar_one()
        await self._conn.execute(delete(login_throttle).where(
            login_throttle.c.key.in_([index, f"2fa:{account_id}", f"pw:{account_id}"])))
        # Mail still queued for this address (a notice, a reset link) goes too.
        await self._conn.execute(delete(mail_queue).where(mail_queue.c.recipient_index == index))
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            email_index=f"deleted:{account_id}", email_ct=b"", display_name_ct=None,
            company_ct=None, password_hash=TOMBSTONE_HASH, datacenter=None, currency=None,
            language=None,
            totp_secret_ct=None, totp_enabled_at=None, totp_last_step=None,
            email_verified_at=None,
            # Times of the person's use, not of any billing: when they last logged in,
            # objected, were warned, changed their email. (The domain's erase clears the
            # rest: signup, activation, accepted policy, renewal settings and the reminder
            # choice, paid time.)
            last_login_at=None, inactivity_notice_at=None,
            optional_processing_objected_at=None, email_undo_until=None))
        # When renewal reminders were mailed is mail, not billing; the renewal row (which
        # invoice renewed which period) stays with the invoices.
        await self._conn.execute(update(renewals).where(
            renewals.c.account_id == account_id).values(
                first_reminder_at=None, second_reminder_at=None))
        # Cash tokens: the only link between an envelope and this account (docs/cash.md).
        for table in (recovery_codes, sessions, security_log, policy_notices, cash_tokens):
            await self._conn.execute(delete(table).where(table.c.account_id == account_id))

    async def notice_recipients(self, version: str) -> list[str]:
        """Accounts that are not deleted, accepted another version and were not yet
        mailed about this one."""
        sent = select(policy_notices.c.account_id).where(policy_notices.c.version == version)
        rows = await self._conn.execute(select(accounts.c.id).where(
            accounts.c.deleted_at.is_(None),
            (accounts.c.policy_version.is_(None)) | (accounts.c.policy_version != version),
            accounts.c.id.not_in(sent)).order_by(accounts.c.id))
        return [str(r.id) for r in rows]

    async def record_notice(self, account_id: str, version: str, now: datetime) -> None:
        await self._conn.execute(insert(policy_notices).values(
            account_id=account_id, version=version, sent_at=now))

    async def email_verified(self, account_id: str) -> bool:
        value = (await self._conn.execute(select(accounts.c.email_verified_at).where(
            accounts.c.id == account_id))).scalar_one_or_none()
        return value is not None

    async def mark_email_verified(self, account_id: str, now: datetime) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id)
                                 .values(email_verified_at=now))

    async def email_undo_until(self, account_id: str) -> datetime | None:
        value: datetime | None = (await self._conn.execute(
            select(accounts.c.email_undo_until).where(accounts.c.id == account_id)
        )).scalar_one_or_none()
        return value

    async def set_email_undo_until(self, account_id: str, until: datetime | None) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id)
                                 .values(email_undo_until=until))

    async def totp(self, account_id: str) -> TotpState:
        row = (await self._conn.execute(
            select(accounts.c.totp_secret_ct, accounts.c.totp_enabled_at,
                   accounts.c.totp_last_step).where(accounts.c.id == account_id))).one()
        secret = self._cipher.decrypt_optional(row.totp_secret_ct,
                                               ACCOUNT_TOTP.ref(account_id))
        return TotpState(secret, row.totp_enabled_at is not None, row.totp_last_step)

    async def set_totp(self, account_id: str, secret: str | None, enabled_at: datetime | None,
                       last_step: int | None) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(
            totp_secret_ct=self._cipher.encrypt_optional(secret, ACCOUNT_TOTP.ref(account_id)),
            totp_enabled_at=enabled_at, totp_last_step=last_step))

    async def advance_totp_step(self, account_id: str, step: int) -> bool:
        # One conditional UPDATE: on PostgreSQL a concurrent one waits for the row lock and
        # re-checks the condition, so of two logins with the same code only one gets a row.
        result = await self._conn.execute(
            update(accounts).where(
                accounts.c.id == account_id,
                (accounts.c.totp_last_step.is_(None)) | (accounts.c.totp_last_step < step))
            .values(totp_last_step=step))
        return bool(result.rowcount)

    async def replace_recovery_codes(self, account_id: str, hashes: list[str]) -> None:
        await self._conn.execute(
            delete(recovery_codes).where(recovery_codes.c.account_id == account_id))
        if hashes:
            await self._conn.execute(insert(recovery_codes), [
                {"account_id": account_id, "code_hash": h} for h in hashes])

    async def unused_recovery_codes(self, account_id: str) -> list[tuple[int, str]]:
        rows = await self._conn.execute(
            select(recovery_codes.c.id, recovery_codes.c.code_hash).where(
                recovery_codes.c.account_id == account_id, recovery_codes.c.used_at.is_(None)))
        return [(int(r.id), str(r.code_hash)) for r in rows]

    async def use_recovery_code(self, code_id: int, now: datetime) -> bool:
        # Conditional: of two transactions spending one code at once, only one changes the
        # row (the other waits for its lock, then finds it used).
        result = await self._conn.execute(
            update(recovery_codes)
            .where(recovery_codes.c.id == code_id, recovery_codes.c.used_at.is_(None))
            .values(used_at=now))
        return bool(result.rowcount)

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
                last_seen_at=now,
                revoked_at=session.revoked_at,
            )
        )

    async def get(self, session_id: str) -> SessionRecord | None:
        query = select(sessions).where(sessions.c.id == session_id)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return SessionRecord(row.id, row.account_id, row.expires_at, row.revoked_at,
                             row.last_seen_at)

    async def revoke(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


    async def revoke_all(self, account_id: str, now: datetime, keep: str | None = None) -> int:
        query = update(sessions).where(
            sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None))
        if keep is not None:
            query = query.where(sessions.c.id != keep)
        result = await self._conn.execute(query.values(revoked_at=now))
        return int(result.rowcount)

    async def touch(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(
            update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now))


class SqlApiKeys:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.revoked = False  # the unit's commit tells every instance's key cache

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

    async def all(self) -> list[ApiKeyRecord]:
        rows = (await self._conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
        return [ApiKeyRecord(r.id, r.name, frozenset(r.scopes), r.created_at, r.revoked_at)
                for r in rows]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        result = await self._conn.execute(
            update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at))
        self.revoked = self.revoked or bool(result.rowcount)
        return bool(result.rowcount)
