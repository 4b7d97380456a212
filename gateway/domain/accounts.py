import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.domain import events as ev
from gateway.domain.errors import InvalidInput
from gateway.domain.timestamps import rfc3339

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# Deliberately permissive: one @, a dot in the domain, no spaces. Deliverability is the
# customer's business; we only refuse what cannot be an address.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalize_email(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("email", "is required")
    email = raw.strip()
    if len(raw) > 254 or not _EMAIL.match(email):
        raise InvalidInput("email", "is not a valid email address")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def email_lookup_form(email: str) -> str:
    """The form the blind index is computed over: case-insensitive, as customers expect."""
    return email.lower()


def check_password(raw: object, field_name: str = "password") -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidInput(field_name, "is required")
    if len(raw) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field_name, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(field_name, f"must be at most {MAX_PASSWORD_LENGTH} characters")
    return raw


def check_choice(value: str | None, allowed: tuple[str, ...], field_name: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise InvalidInput(field_name, f"must be one of {', '.join(allowed)}")
    return value


@dataclass
class Account:
    id: str
    created_at: datetime
    datacenter: str | None = None
    currency: str | None = None
    activated_at: datetime | None = None
    policy_version: str | None = None  # the privacy policy version the customer accepted
    deletion_due_at: datetime | None = None
    deleted_at: datetime | None = None
    events: list[ev.DomainEvent] = field(default_factory=list)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def schedule_deletion(self, now: datetime, grace: timedelta) -> datetime:
        """Asking again keeps the first date: a repeated request must not postpone it."""
        if self.deleted:
            raise InvalidInput("account", "is already deleted")
        if self.deletion_due_at is None:
            self.deletion_due_at = now + grace
            self.events.append(ev.DomainEvent(
                ev.ACCOUNT_DELETION_SCHEDULED, self.id,
                {"account_id": self.id, "deletion_due_at": rfc3339(self.deletion_due_at)}))
        return self.deletion_due_at

    def cancel_deletion(self) -> bool:
        if self.deleted or self.deletion_due_at is None:
            return False
        self.deletion_due_at = None
        self.events.append(ev.DomainEvent(ev.ACCOUNT_DELETION_CANCELLED, self.id,
                                          {"account_id": self.id}))
        return True

    def erase(self, now: datetime) -> None:
        """The personal data goes (the repository does that); the id stays as a tombstone
        so billing records keep their reference."""
        if self.deleted:
            return
        self.deleted_at = now
        self.deletion_due_at = None
        self.datacenter = None
        self.currency = None
        self.events.append(ev.DomainEvent(ev.ACCOUNT_DELETED, self.id, {"account_id": self.id}))

    def accept_policy(self, version: str) -> None:
        self.policy_version = version

    def created(self) -> None:
        self.events.append(ev.DomainEvent(ev.ACCOUNT_CREATED, self.id, {"account_id": self.id}))

    def activate(self, invoice_id: str, metadata: dict[str, object], now: datetime) -> None:
        """The first settled invoice activates the account; later ones do not re-announce.
        A deleted account is never activated (a late payment to an old invoice)."""
        if self.activated_at is not None or self.deleted:
            return
        self.activated_at = now
        self.events.append(
            ev.DomainEvent(
                ev.ACCOUNT_ACTIVATED,
                self.id,
                {
                    "account_id": self.id,
                    "invoice_id": invoice_id,
                    "datacenter": self.datacenter,
                    "metadata": metadata,
                },
            )
        )
