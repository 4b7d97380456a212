"""Staff of the operator: finance, support and admin members of the staff console.

Each has a password (argon2, like customers) and TOTP, which is mandatory: a new member's
first login opens a session that can only enrol it. Failed logins are throttled like
customer logins (per name, by its blind index). Every action a member takes through the
console is written to the staff log, the security log of staff actions."""

import builtins
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from gateway.domain.accounts import check_password
from gateway.domain.errors import InvalidInput
from gateway.domain.throttle import ThrottlePolicy, ThrottleState, after_failure, retry_after
from gateway.services.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from gateway.services.ids import new_id
from gateway.services.ports import (
    AuditEntry,
    Clock,
    EventRecord,
    PasswordHasher,
    StaffLogEntry,
    StaffMember,
    StaffSession,
    StaffUnit,
    TotpCodes,
)

ROLES = ("finance", "support", "admin")
# A failed login at a name that is no member's is logged as this prefix and the first
# characters of a keyed hash of the name: enough to count attempts, nothing typed.
UNKNOWN_NAME = "?"
UNKNOWN_HASH_CHARS = 8
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# One answer for every wrong part: a right password without a code is not told apart.
WRONG_LOGIN = ("name, password or code is wrong (once two-factor authentication is set up, "
               "the code from your authenticator app is required)")


@dataclass(frozen=True)
class StaffPolicy:
    session_lifetime: timedelta = timedelta(hours=1)
    session_idle: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class StaffLogin:
    token: str
    enrolled: bool


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise InvalidInput("name", "must be 1 to 64 of a-z, 0-9, '.', '_' and '-'")
    return name


class StaffService:
    def __init__(self, uow: Callable[[], StaffUnit], *, passwords: PasswordHasher, codes: TotpCodes,
                 blind_index: Callable[[str], str], clock: Clock, policy: StaffPolicy,
                 throttle: ThrottlePolicy | None = None,
                 common_passwords: Callable[[str], bool] | None = None,
                 reader: Callable[[], StaffUnit] | None = None) -> None:
        self._uow = uow
        self._reader = reader or uow  # reads only: no write turn, no write lock
        self._common = common_passwords
        self._passwords = passwords
        self._codes = codes
        self._index = blind_index
        self._clock = clock
        self._policy = policy
        self._throttle = throttle or ThrottlePolicy()

    # -- members (the CLI) -----------------------------------------------------------
    async def add(self, name: str, role: str, password: str) -> StaffMember:
        member = StaffMember(new_id("stf_"), check_name(name), check_role(role),
                             self._clock(), None)
        password_hash = await self._passwords.hash(check_password(password,
                                                                  common=self._common))
        async with self._uow() as uow:
            await uow.staff.add(member, password_hash)
            await uow.staff.log(StaffLogEntry("cli", "staff_added", member.name, None,
                                              self._clock()))
            await uow.commit()
        return member

    async def remove(self, name: str) -> None:
        async with self._uow() as uow:
            if not await uow.staff.remove(check_name(name)):
                raise NotFound("staff member")
            await uow.staff.log(StaffLogEntry("cli", "staff_removed", name, None,
                                              self._clock()))
            await uow.commit()

    async def list(self) -> list[StaffMember]:
        async with self._reader() as uow:
            return await uow.staff.all()

    # -- login and sessions ------------------------------------------------------------
    async def _not_throttled(self, uow: StaffUnit, lookup: str) -> ThrottleState | None:
        state = await uow.throttle.get(lookup)
        wait = retry_after(state, self._clock())
        if wait is not None:
            raise TooManyRequests("too many failed logins for this name; wait and retry",
                                  wait.total_seconds())
        return state

    async def log_in(self, name: str, password: str, code: str | None,
                     ip: str | None) -> StaffLogin:
        """A member with TOTP must give a code; a member without it (new) gets a session
        that can only enrol. One answer for every wrong part, counted per name."""
        name = name.strip().lower()
        lookup = self._index("staff:" + name)
        async with self._uow() as uow:
            await self._not_throttled(uow, lookup)
            found = await uow.staff.by_name(name)
        correct = await self._passwords.verify(found[1] if found else None, password)
        now = self._clock()
        async with self._uow() as uow:
            state = await self._not_throttled(uow, lookup)
            member = found[0] if found and correct else None
            ok = member is not None
            if member is not None and member.totp_enabled_at is not None:
                secret, _ = await uow.staff.totp(member.id)
                step = (self._codes.matching_step(secret, code, now)
                        if secret and code else None)
                ok = step is not None and await uow.staff.advance_totp_step(member.id, step)
            if not ok or member is None:
                await uow.throttle.put(lookup, after_failure(state, now, self._throttle))
                logged = self._failed_login_name(found, name)
                # At a name that is no member's, the address is not kept either: it
                # would tie whoever typed a customer's email (say) to a network.
                await uow.staff.log(StaffLogEntry(logged, "login_failed", None,
                                                  ip if found is not None else None, now))
                await uow.commit()
                raise Unauthorized(WRONG_LOGIN)
            await uow.throttle.clear(lookup)
            enrolled = member.totp_enabled_at is not None
            token = await self._new_session(uow, member, enrolled)
            await uow.staff.log(StaffLogEntry(member.name, "login_succeeded", None, ip, now))
            await uow.commit()
        return StaffLogin(token, enrolled)

    def _failed_login_name(self, found: tuple[StaffMember, str] | None, name: str) -> str:
        """What the staff log keeps of a failed login's name: the member's own name when
        the name is a member's, otherwise nothing that was typed (a customer's email or a
        password typed into the name field was once kept verbatim for 30 days) but a short
        keyed hash, so repeated attempts at one unknown name can still be counted."""
        if found is not None:
            return found[0].name
        return UNKNOWN_NAME + self._index("staff-log:" + name)[:UNKNOWN_HASH_CHARS]

    async def _new_session(self, uow: StaffUnit, member: StaffMember, enrolled: bool) -> str:
        now = self._clock()
        token = secrets.token_urlsafe(32)
        await uow.staff.add_session(new_id("sts_"), _token_hash(token), member.id, enrolled,
                                    now, now + self._policy.session_lifetime)
        return token

    async def session(self, token: str) -> StaffSession:
        now = self._clock()
        async with self._uow() as uow:
            session = await uow.staff.session(_token_hash(token))
            if (session is None or session.revoked_at is not None
                    or session.expires_at <= now):
                raise Unauthorized("log in to the staff console")
            if now - session.last_seen_at > self._policy.session_idle:
                await uow.staff.revoke(session.id, now)
                await uow.commit()
                raise Unauthorized("the session ended after inactivity; log in again")
            await uow.staff.touch(session.id, now)
            await uow.commit()
        return session

    async def log_out(self, token: str) -> None:
        async with self._uow() as uow:
            session = await uow.staff.session(_token_hash(token))
            if session is not None:
                await uow.staff.revoke(session.id, self._clock())
                await uow.staff.log(StaffLogEntry(session.member.name, "logout", None, None,
                                                  self._clock()))
                await uow.commit()

    # -- TOTP enrolment ----------------------------------------------------------------
    async def begin_enrolment(self, session: StaffSession) -> Enrolment:
        if session.member.totp_enabled_at is not None:
            raise Conflict("two-factor authentication is set up already")
        secret = self._codes.new_secret()
        async with self._uow() as uow:
            await uow.staff.set_totp_secret(session.member.id, secret)
            await uow.commit()
        return Enrolment(secret, self._codes.uri(secret, f"staff:{session.member.name}"))

    async def confirm_enrolment(self, session: StaffSession, code: str,
                                ip: str | None) -> str:
        """Turns TOTP on; the enrolment-only session ends and a full one begins."""
        if session.member.totp_enabled_at is not None:
            raise Conflict("two-factor authentication is set up already")
        now = self._clock()
        async with self._uow() as uow:
            secret, _ = await uow.staff.totp(session.member.id)
            if secret is None:
                raise Conflict("start the enrolment first")
            step = self._codes.matching_step(secret, code, now)
            if step is None or not await uow.staff.advance_totp_step(session.member.id, step):
                raise InvalidInput("code", "does not match; check the clock of your device")
            await uow.staff.enable_totp(session.member.id, now)
            await uow.staff.revoke(session.id, now)
            token = await self._new_session(uow, session.member, True)
            await uow.staff.log(StaffLogEntry(session.member.name, "totp_enrolled", None, ip,
                                              now))
            await uow.commit()
        return token

    # -- what the console shows and records --------------------------------------------
    async def record(self, session: StaffSession, action: str, subject: str | None,
                     ip: str | None) -> None:
        async with self._uow() as uow:
            await uow.staff.log(StaffLogEntry(session.member.name, action,
                                              subject[:100] if subject else None, ip,
                                              self._clock()))
            await uow.commit()

    async def recent_log(self, limit: int = 100) -> builtins.list[StaffLogEntry]:
        async with self._reader() as uow:
            return await uow.staff.recent_log(limit)

    async def recent_audit(self, limit: int = 100) -> builtins.list[AuditEntry]:
        async with self._reader() as uow:
            return await uow.staff.recent_audit(limit)

    async def find(self, query: str) -> str | None:
        """The invoice a txid, an address or an invoice id names, if any."""
        query = query.strip()
        if not query:
            return None
        async with self._reader() as uow:
            if query.startswith("inv_") and await uow.invoices.get(query) is not None:
                return query
            rows = await uow.ledger.by_txid(query)
            if rows:
                return rows[0].invoice_id
            return await uow.staff.invoice_by_address(query)

    async def invoice_events(self, account_id: str,
                             invoice_id: str) -> builtins.list[EventRecord]:
        """Every webhook event about the invoice, with its deliveries and attempts."""
        found = []
        async with self._reader() as uow:
            for event_id in await uow.staff.account_event_ids(account_id):
                record = await uow.events.get(event_id)
                if record is None:
                    continue
                try:
                    data = json.loads(record.body).get("data", {})
                except ValueError:
                    continue
                if data.get("invoice_id") == invoice_id:
                    found.append(record)
        return found

