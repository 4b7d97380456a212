"""Configuration: a TOML file, then `GATEWAY_<SECTION>__<KEY>` environment overrides, then
`<key>_file` indirections for secrets. Any problem is one line naming the key."""

import base64
import binascii
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from chains.base import CoinSettings, Family
from gateway import families
from gateway.domain.billing import Period
from gateway.domain.deletion_bound import DeletionBound
from gateway.domain.errors import InvalidInput
from gateway.domain.money import FIAT_EXPONENTS, Fiat, parse_fiat

ENV_PREFIX = "GATEWAY_"
# The deletion ledger outlives the last backup that could restore an account by this.
LEDGER_MARGIN_DAYS = 7


class ConfigError(Exception):
    """One line, naming the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def split_listen(value: str) -> tuple[str, int]:
    """"host:port" ("[::1]:9464" for IPv6) -> (host, port); ValueError when malformed."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (not sep or not host or not (port.isascii() and port.isdigit())
            or not 0 <= int(port) <= 65535):
        raise ValueError(f"{value!r} must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464 "
                         '(or "" to turn the listener off)')
    return host, int(port)


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address literal (no DNS: a name could point anywhere)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    path_prefix: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: list[str] = []  # CIDRs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Open server-sent event streams (checkout page, invoice events), per client address
    # (IPv6: per /64) and in total; each holds a connection for up to 30 minutes.
    event_streams_per_client: int = Field(4, ge=1, le=1000)
    event_streams_total: int = Field(500, ge=1, le=100_000)
    # ... and per account whose invoices they watch (many cheap addresses, one account).
    event_streams_per_account: int = Field(8, ge=1, le=1000)
    # /metrics and /readyz are served here only, never on the public listener.
    metrics_listen: str | None = "127.0.0.1:9464"

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in ("", "none"):
            return None
        split_listen(v)
        return v.strip()

    def plaintext_warning(self) -> str | None:
        """One line for `gateway serve` when it would serve customers without TLS: not
        on loopback, no certificate, and no trusted proxy in front to terminate TLS."""
        if (self.tls_cert and self.tls_key) or is_loopback_host(self.host) \
                or self.trusted_proxies:
            return None
        return (f"warning: serving plain HTTP on {self.host}:{self.port} without TLS; set "
                "[server] tls_cert and tls_key, or list the TLS-terminating proxy in "
                "[server] trusted_proxies")

    def metrics_address(self) -> tuple[str, int] | None:
        return None if self.metrics_listen is None else split_listen(self.metrics_listen)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an address or CIDR range") from None
        return v

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.rstrip("/")
        if v and not v.startswith("/"):
            raise ValueError("must start with / (for example /pay)")
        return v


class DatabaseConfig(_Section):
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


def _b64_key(value: str, minimum: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if len(raw) < minimum:
        raise ValueError(f"must decode to at least {minimum} bytes")
    return raw


class SecurityConfig(_Section):
    session_key: SecretStr
    data_keys: list[SecretStr] = Field(min_length=1)
    # Personal fields written before they were bound to their column (format 1) are
    # read; off once `gateway keys rotate-data` has rewritten them all, so that none can
    # be moved to another column of its row.
    read_legacy_ciphertexts: bool = True
    index_key: SecretStr
    # A stolen session token works at most this long: bounded (a week), like idleness.
    session_hours: float = Field(8, gt=0, le=24 * 7)
    session_idle_minutes: float = Field(30, gt=0, le=24 * 60)
    login_free_failures: int = Field(5, ge=0, le=50)
    login_max_delay_seconds: float = Field(900, gt=0, le=3600)
    login_failures_per_hour: int = Field(100, ge=1, le=100)  # per email and client network
    # Per email from all networks together: the cap a distributed guesser meets. Reached,
    # it holds until the hour is over or a password reset clears it.
    login_failures_per_email_per_hour: int = Field(100, ge=1, le=10_000)
    login_per_ip_per_minute: int = Field(30, ge=1)
    signup_per_ip_per_hour: int = Field(20, ge=1)
    # Invoices customers create in the portal (buy a plan, pay again), per client address
    # across all their accounts: each takes a fresh address from the wallet.
    portal_invoices_per_ip_per_hour: int = Field(20, ge=1)
    # Password hashing (argon2id, ~19 MiB and one core each) runs in its own threads.
    hash_concurrency: int = Field(0, ge=0, le=64)  # 0: half the CPU cores, at least 1
    hash_max_waiting: int = Field(64, ge=0, le=10_000)
    hash_max_wait_seconds: float = Field(5, gt=0, le=60)

    @field_validator("session_key", "index_key")
    @classmethod
    def _key(cls, v: SecretStr) -> SecretStr:
        _b64_key(v.get_secret_value(), 32)
        return v

    @field_validator("data_keys")
    @classmethod
    def _data_keys(cls, v: list[SecretStr]) -> list[SecretStr]:
        for item in v:
            kid, sep, key = item.get_secret_value().partition(":")
            if not sep or not kid:
                raise ValueError('each entry must be "<key id>:<base64 of 32 bytes>"')
            if len(_b64_key(key, 32)) != 32:
                raise ValueError("each data key must be exactly 32 bytes")
        ids = [item.get_secret_value().partition(":")[0] for item in v]
        for kid in ids:
            if ids.count(kid) > 1:
                raise ValueError(f"data key id {kid!r} is used by two keys: each key needs "
                                 "an id of its own (the first entry encrypts)")
        return v

    def data_key_list(self) -> list[tuple[str, bytes]]:
        out = []
        for item in self.data_keys:
            kid, _, key = item.get_secret_value().partition(":")
            out.append((kid, base64.b64decode(key)))
        return out


class InvoicesConfig(_Section):
    expiry_minutes: float = Field(15, gt=0)
    monitoring_minutes: float = Field(1440, gt=0)
    underpayment_tolerance_percent: Decimal = Field(Decimal(0), ge=0, lt=100)
    accept_late_payments: bool = False
    # A payment the gateway first saw in a block (it was down) counts from the block's
    # time less this; at most the 2 h consensus allows a header ahead of the clock.
    block_time_tolerance_minutes: float = Field(10, ge=0, le=120)
    # Unpaid, unexpired invoices a customer may hold at once (POST /v1/me/invoices).
    max_open_per_account: int = Field(5, ge=1, le=1000)


class FamiliesConfig(_Section):
    # Module paths of extra chain families, each exposing FAMILY (a chains.base.Family);
    # the built-in ones need no entry. Tests use ["tests.support.fake_family"].
    extra: list[str] = []

    @field_validator("extra")
    @classmethod
    def _load(cls, v: list[str]) -> list[str]:
        families.load_extra(v)
        return v


def _coin_settings(code: str, raw: object, where: str | None = None) -> CoinSettings:
    """One coin's table, validated by the model of the family its `kind` names; `where`
    names the table in messages (a coin a network's table stands for names that)."""
    where = where or f"coins.{code}"
    if isinstance(raw, CoinSettings):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    kind = raw.get("kind")
    if kind is None:
        raise ConfigError(f"{where}.kind: is required")
    try:
        family = families.get(str(kind))
    except families.UnknownFamily:
        raise ConfigError(f"{where}.kind: {kind!r} is not a known chain family "
                          f"(known: {', '.join(families.kinds())})") from None
    try:
        return family.settings.model_validate(raw)
    except ValidationError as exc:
        detail = _format_error(exc)
        # A check of the whole table (a model validator) has no key of its own.
        raise ConfigError(f"{where}{detail if detail.startswith(':') else '.' + detail}"
                          ) from None


RATE_SOURCES = ("kraken", "bitstamp", "coinbase", "coingecko")


class RatesConfig(_Section):
    sources: list[Literal["kraken", "bitstamp", "coinbase", "coingecko"]] = []
    fixed: dict[str, str] = {}
    timeout_seconds: float = Field(5, gt=0, le=30)
    cache_seconds: float = Field(60, ge=0, le=60)
    base_urls: dict[str, str] = {}
    # A price is locked only when at least `quorum` sources answered and agree: each within
    # `max_deviation_percent` of the median of all answers. One source alone (or one
    # gone wrong) cannot set the price of an invoice.
    quorum: int = Field(2, ge=1, le=len(RATE_SOURCES))
    max_deviation_percent: Decimal = Field(Decimal(2), gt=0, le=50)

    @model_validator(mode="after")
    def _enough_sources(self) -> "RatesConfig":
        if self.sources and self.quorum > len(set(self.sources)):
            raise ValueError(f"quorum is {self.quorum} but only {len(set(self.sources))} "
                             "source(s) are configured: add sources, or lower quorum")
        return self

    @field_validator("base_urls")
    @classmethod
    def _urls(cls, v: dict[str, str]) -> dict[str, str]:
        for name, url in v.items():
            if name not in RATE_SOURCES:
                raise ValueError(f"{name!r} is not a rate source ({', '.join(RATE_SOURCES)})")
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{name}: must be an http(s) URL")
        return v

    @field_validator("fixed")
    @classmethod
    def _fixed(cls, v: dict[str, str]) -> dict[str, str]:
        for pair, rate in v.items():
            _coin, sep, currency = pair.partition("-")
            if not sep or currency not in FIAT_EXPONENTS:
                raise ValueError(f"{pair!r} must look like COIN-CURRENCY, e.g. LTC-EUR")
            try:
                if not Decimal(rate) > 0:
                    raise ValueError(f"{pair}: rate must be positive")
            except InvalidOperation:
                raise ValueError(f"{pair}: {rate!r} is not a decimal number") from None
        return v


class PlanConfig(_Section):
    price: str
    currency: str
    description: str = ""
    # The same plan priced in other currencies, so a customer sees and pays the price of
    # their own currency (no fiat conversion at our end): { USD = "10.99" }.
    prices: dict[str, str] = {}
    # Prepaid time: each settled invoice for the plan extends the account's paid_until by
    # this ("1 month", "1 year", "30 days", "90 seconds" in tests). None: a one-off
    # purchase that activates the account and renews nothing.
    period: str | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, v: str | None) -> str | None:
        if v is not None:
            _parse_period(v)
        return v

    def parsed_period(self) -> "Period | None":
        return None if self.period is None else Period.parse(self.period)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in FIAT_EXPONENTS:
            raise ValueError(f"unsupported currency {v!r}")
        return v

    def fiat(self) -> "Fiat":
        return parse_fiat(self.price, self.currency)

    def fiat_prices(self) -> dict[str, "Fiat"]:
        """Every price of the plan by currency, its own currency included."""
        others = {code: parse_fiat(amount, code) for code, amount in self.prices.items()
                  if code != self.currency}
        return {self.currency: self.fiat(), **others}


def _parse_period(text: str) -> Period:
    try:
        return Period.parse(text)
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


def _duration(text: str) -> timedelta:
    period = _parse_period(text)
    if period.months:
        raise ValueError(f"{text!r}: use days, hours, minutes or seconds here, not months")
    return timedelta(seconds=period.seconds)


class BillingConfig(_Section):
    """Prepaid time (plans with a `period`): docs/prepaid-time.md."""

    # After paid_until the account is in grace this long, then suspended.
    grace: str = "3 days"
    # The renewal invoice is created (and mailed) this long before paid_until ...
    renewal_lead: str = "7 days"
    # ... and a second reminder goes this long before it, if it is still unpaid.
    second_reminder: str = "1 day"
    # An overpayment buys as many whole periods as it covers (else exactly one period).
    overpayment_buys_periods: bool = False
    max_periods_per_invoice: int = Field(36, ge=1, le=1200)
    # How often the periodic task looks for renewals and state changes.
    interval_seconds: float = Field(60, gt=0, le=3600)

    @field_validator("grace", "renewal_lead", "second_reminder")
    @classmethod
    def _durations(cls, v: str) -> str:
        _duration(v)
        return v

    def durations(self) -> tuple[timedelta, timedelta, timedelta]:
        """(grace, renewal_lead, second_reminder)"""
        return _duration(self.grace), _duration(self.renewal_lead), \
            _duration(self.second_reminder)


# Below these a refund costs more in fees than it returns (base units; docs/credit.md).
DEFAULT_REFUND_MINIMUM: dict[str, int] = {
    "BTC": 10_000, "LTC": 100_000, "ETH": 10**15, "XMR": 10**10}


class CreditConfig(_Section):
    """Account credit: docs/credit.md."""

    # What becomes credit: the payments of an invoice that expired unpaid (or went
    # invalid), what a settled invoice received beyond its price, payments after
    # settlement or too late for the invoice.
    underpaid_to_credit: bool = True
    overpaid_to_credit: bool = True
    late_to_credit: bool = True
    # Credit older than this many days expires (an `expired` entry); none: never.
    expires_after_days: float | None = Field(None, gt=0, le=36500)
    # Refunds (the refund flow): the least that may be refunded per coin, base units
    # (coins not listed: DEFAULT_REFUND_MINIMUM, else no minimum) ...
    refund_minimum: dict[str, int] = {}
    # ... and above this amount (minor units of the account's currency) a refund needs
    # the approval of two different staff members.
    second_approval_above: int = Field(10_000, ge=0)
    # How often the periodic task credits payments, gives back spends of expired
    # invoices and expires old credit.
    interval_seconds: float = Field(60, gt=0, le=3600)

    @field_validator("refund_minimum")
    @classmethod
    def _minimums(cls, v: dict[str, int]) -> dict[str, int]:
        for coin, amount in v.items():
            if amount < 0:
                raise ValueError(f"refund_minimum.{coin} must not be negative")
        return v

    def refund_minimum_for(self, coin: str) -> int:
        return self.refund_minimum.get(coin, DEFAULT_REFUND_MINIMUM.get(coin, 0))

    def expires_after(self) -> timedelta | None:
        if self.expires_after_days is None:
            return None
        return timedelta(days=self.expires_after_days)


class VouchersConfig(_Section):
    """Voucher codes: docs/vouchers.md. Wrong codes are counted per account and per client
    network (an IPv4 address, an IPv6 /64), like failed logins: a few free, then
    doubling delays, and never more than the hourly cap."""

    free_failures: int = Field(3, ge=0, le=100)
    failures_per_account_per_hour: int = Field(10, ge=1, le=1000)
    failures_per_network_per_hour: int = Field(30, ge=1, le=10000)
    max_delay_seconds: float = Field(900, gt=0, le=86400)


class CashConfig(_Section):
    """Cash by mail: docs/cash.md. Off until `postal_address` is set."""

    # Where customers send the envelope, shown in the portal as written (lines kept).
    postal_address: str | None = Field(None, min_length=1, max_length=500)
    # What else the portal tells them (currencies taken, what to put in, how long it
    # takes to be counted), shown as written.
    instructions: str | None = Field(None, min_length=1, max_length=2000)
    # A token can be used this long after it was given; unused, it is then erased.
    token_days: int = Field(120, ge=1, le=365)
    # A used token (the only link between an envelope and its account) is erased this
    # long after its envelope was recorded.
    keep_used_days: int = Field(40, ge=1, le=365)
    # A finance member's refused token lookups (unknown, mistyped, used, expired) per
    # hour, per instance: beyond it the console refuses lookups until the hour has passed.
    refused_lookups_per_hour: int = Field(20, ge=1, le=1000)

    @property
    def enabled(self) -> bool:
        return self.postal_address is not None


class AccountsConfig(_Section):
    datacenters: list[str] = ["nl-ams", "is-rey", "ch-zrh"]
    currencies: list[str] = ["EUR", "USD"]
    password_reset_minutes: float = Field(30, gt=0, le=24 * 60)
    # On by default: without it a signup logs in at once, so it must answer 409 for an
    # address that has an account, and anyone can learn which addresses have one. Needs
    # [smtp]; turning it off (for customers with throwaway inboxes) accepts that leak.
    require_email_verification: bool = True


class RetentionConfig(_Section):
    security_log_days: int = Field(30, ge=1, le=30)
    # A refund's address and Monero tx key are erased this long after the refund ended
    # (completed, refused or cancelled), and at once when its account is erased
    # (docs/privacy.md, docs/refunds.md). The amounts, coin, txid and times stay.
    refund_address_days: int = Field(30, ge=1, le=365)
    # The policy promises deletion within 30 days of a request, backups and grace period
    # included: deletion_grace_days + interval_seconds + backup_days + [backup]
    # interval_hours must fit in 30 days (checked at start; see Settings._deletion_bound).
    backup_days: int = Field(21, ge=1, le=30)
    deletion_grace_days: int = Field(7, ge=0, le=30)
    idempotency_hours: float = Field(24, gt=0, le=24 * 30)
    delivery_log_days: int = Field(30, ge=1, le=30)
    interval_seconds: float = Field(3600, ge=1, le=3600)
    # Audit entries are evidence for the customer too: kept while the account exists and
    # this long after its erasure.
    audit_log_days_after_deletion: int = Field(365, ge=1, le=3650)
    # Login-throttle rows (the blind index of any email typed into the login form): past
    # their window and any lock, they are gone after this long.
    login_throttle_hours: float = Field(24, gt=0, le=24 * 30)
    # Events waiting on a disabled (not deleted) endpoint: dropped after this long.
    disabled_endpoint_days: int = Field(30, ge=1, le=30)
    # Accounts with no settled invoice and no login for this long are deleted, like a
    # customer's own deletion, after a notice mailed inactivity_notice_days before.
    inactive_unpaid_days: int = Field(180, ge=14, le=3650)
    inactivity_notice_days: int = Field(7, ge=1, le=13)
    # Accounts that paid and lapsed (no paid time now) with no payment, login or session
    # use for this long, counted from the end of their paid time at the earliest: the
    # same notice, then the same deletion; the billing records stay. A year lets a
    # customer on a yearly plan miss one renewal and come back (docs/privacy.md); at
    # most three years, as a lapsed account is not an active one. It must leave the
    # notice after [billing] grace (checked in Settings).
    inactive_lapsed_days: int = Field(365, ge=30, le=1095)
    # Closed legal requests (the customers may be told: notification allowed from the
    # start, or the hold lifted) are dropped from the register this long after the latest
    # of their recording, the lifting and the mail telling the customers: kept for
    # accountability (a customer's or a court's question about a disclosure, the yearly
    # transparency count) for the usual three-year limitation period of claims. A held
    # request, or one whose customers were never mailed, is kept until that changes.
    legal_request_days: int = Field(1095, ge=365, le=3650)
    # Deletion-ledger entries are dropped this long after the erasure. An entry must
    # outlive every backup that could bring the account back: at least backup_days plus
    # one [backup] interval_hours plus a week's margin (checked in Settings); the
    # default also covers the operator's copies kept within the policy's 30 days.
    deletion_ledger_days: int = Field(60, ge=1, le=3650)


class BackupConfig(_Section):
    # base64 of 32 bytes; AES-256-GCM. Without it no backup is written.
    key: SecretStr | None = None
    # With a directory, the leader writes a backup every interval and prunes old ones.
    dir: str | None = None
    interval_hours: float = Field(24, gt=0, le=24 * 7)
    # Account ids and erasure times, outside the database, re-applied after a restore so
    # a backup cannot bring an erased customer back. Default: deletion-ledger.txt in
    # `dir`. With several instances, put it on storage they all reach.
    deletion_ledger: str | None = None

    def ledger_path(self) -> Path | None:
        if self.deletion_ledger:
            return Path(self.deletion_ledger)
        return Path(self.dir) / "deletion-ledger.txt" if self.dir else None

    @field_validator("key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(_b64_key(v.get_secret_value(), 32)) != 32:
            raise ValueError("must be base64 of exactly 32 bytes")
        return v

    def key_bytes(self) -> bytes:
        if self.key is None:
            raise ConfigError("[backup] key (or key_file) is required for backups")
        return base64.b64decode(self.key.get_secret_value())


class WebhooksConfig(_Section):
    allow_private_targets: list[str] = []
    # false: webhooks may only go to addresses in allow_private_targets (IP literals).
    allow_public_targets: bool = True
    timeout_seconds: float = Field(15, gt=0, le=60)
    rotation_overlap_hours: float = Field(24, ge=0, le=24 * 30)
    # Delays before each retry. The default is the Standard Webhooks schedule (5 s, 5 min,
    # 30 min, 2 h, 5 h, 10 h, 10 h); shorter ones are for tests.
    retry_schedule_seconds: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1, max_length=20
    )
    # Deliveries in flight at once, in all and per endpoint (one shared keep-alive
    # session). One account's events are still sent one at a time, in order.
    concurrency: int = Field(64, ge=1, le=1024)
    per_endpoint_concurrency: int = Field(16, ge=1, le=1024)

    @field_validator("allow_private_targets")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR range") from None
        return v


class SmtpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field("gateway@localhost", alias="from")
    # Mail travels over TLS: STARTTLS unless the server is on loopback (unset: decided by
    # the host) or implicit TLS. Plain SMTP is refused for any host but a loopback one.
    starttls: bool | None = None
    tls: bool = False  # implicit TLS (port 465)

    @model_validator(mode="after")
    def _tls_unless_loopback(self) -> "SmtpConfig":
        if self.starttls is None:
            # The model is frozen: set the decided value once, here.
            object.__setattr__(self, "starttls",
                               not self.tls and not is_loopback_host(self.host))
        if not self.starttls and not self.tls and not is_loopback_host(self.host):
            raise ValueError(f"plain SMTP to {self.host} would send mail in clear: set "
                             "starttls = true or tls = true (plain only to a loopback host)")
        return self


class MailConfig(_Section):
    # Mail waits in an encrypted queue in the database and a background task sends it.
    # Delays before each retry while the SMTP server fails; the last one repeats.
    retry_schedule_seconds: list[float] = Field(
        default=[10, 60, 300, 900, 1800, 3600], min_length=1, max_length=20)
    # A mail not sent within this time is dropped (a reset link would be dead anyway).
    max_age_hours: float = Field(24, gt=0, le=24 * 7)
    # Mails anyone can cause (reset and confirmation links, sign-up and email-change
    # notices) to one address per hour; more are silently not sent.
    per_recipient_per_hour: int = Field(5, ge=1, le=100)

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError("every delay must be positive")
        return v


class StaffConfig(_Section):
    """The staff console (docs/staff-console.md): its own listener, never the public one."""

    listen: str | None = "127.0.0.1:9465"
    # TLS on the console's listener (TLS 1.3 only), for reaching it over a VPN address:
    # browsers keep its Secure cookie over plain HTTP on loopback only.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_minutes: float = Field(60, gt=0, le=12 * 60)  # absolute lifetime
    idle_minutes: float = Field(15, gt=0, le=12 * 60)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in ("", "none"):
            return None
        split_listen(v)
        return v.strip()

    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else split_listen(self.listen)

    @model_validator(mode="after")
    def _tls_pair(self) -> "StaffConfig":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class PrivacyConfig(_Section):
    policy_version: str = "2026-01-09"


class Settings(_Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig
    security: SecurityConfig
    invoices: InvoicesConfig = InvoicesConfig()
    families: FamiliesConfig = FamiliesConfig()  # before coins: may register families
    # Each coin's table is validated by its family's own model (`kind` picks it).
    coins: dict[str, CoinSettings] = {}
    rates: RatesConfig = RatesConfig()
    plans: dict[str, PlanConfig] = {}
    billing: BillingConfig = BillingConfig()
    credit: CreditConfig = CreditConfig()
    vouchers: VouchersConfig = VouchersConfig()
    cash: CashConfig = CashConfig()
    accounts: AccountsConfig = AccountsConfig()
    retention: RetentionConfig = RetentionConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    smtp: SmtpConfig | None = None
    mail: MailConfig = MailConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    backup: BackupConfig = BackupConfig()
    staff: StaffConfig = StaffConfig()

    @model_validator(mode="after")
    def _deletion_bound(self) -> "Settings":
        ret, bound = self.retention, self.deletion_bound()
        if not bound.kept():
            # ConfigError, not ValueError: pydantic leaves it as it is, one line.
            raise ConfigError(
                f"[retention] deletion_grace_days ({ret.deletion_grace_days} d) + "
                f"interval_seconds ({ret.interval_seconds:g} s) + backup_days "
                f"({ret.backup_days} d) + [backup] interval_hours "
                f"({self.backup.interval_hours:g} h) is {_days(bound.longest())} days, but "
                "a deletion must be complete, backups included, within 30 days of the "
                "request (the privacy policy's promise): lower them to fit 30 days")
        return self

    @model_validator(mode="after")
    def _retention_periods(self) -> "Settings":
        ret = self.retention
        grace = self.billing.durations()[0]
        warned_after = timedelta(days=ret.inactive_lapsed_days - ret.inactivity_notice_days)
        if warned_after <= grace:
            raise ConfigError(
                f"[retention] inactive_lapsed_days ({ret.inactive_lapsed_days}) less "
                f"inactivity_notice_days ({ret.inactivity_notice_days}) must be longer than "
                f"[billing] grace ({self.billing.grace}): a lapsed account would be warned of "
                "its deletion while still in its grace period")
        ledger_floor = timedelta(days=ret.backup_days + LEDGER_MARGIN_DAYS,
                                 hours=self.backup.interval_hours)
        if timedelta(days=ret.deletion_ledger_days) < ledger_floor:
            raise ConfigError(
                f"[retention] deletion_ledger_days ({ret.deletion_ledger_days}) must be at "
                f"least backup_days ({ret.backup_days}) + [backup] interval_hours "
                f"({self.backup.interval_hours:g} h) + {LEDGER_MARGIN_DAYS} days "
                f"({_days(ledger_floor)} days): a ledger entry dropped before the last "
                "backup holding the account would let a restore bring the customer back")
        return self

    def deletion_bound(self) -> DeletionBound:
        ret = self.retention
        return DeletionBound(grace=timedelta(days=ret.deletion_grace_days),
                             retention_interval=timedelta(seconds=ret.interval_seconds),
                             backup_keep=timedelta(days=ret.backup_days),
                             backup_interval=timedelta(hours=self.backup.interval_hours))

    @model_validator(mode="after")
    def _verification_needs_mail(self) -> "Settings":
        if self.smtp is None and self.accounts.require_email_verification:
            raise ValueError(
                "[accounts] require_email_verification is on (the default) but there is no "
                "[smtp], so no confirmation link could be sent and no one could log in: "
                "configure [smtp], or set require_email_verification = false (signup then "
                "tells anyone whether an address has an account)")
        return self

    @field_validator("coins", mode="before")
    @classmethod
    def _coins(cls, v: object) -> object:
        # ConfigError is not a ValueError: it leaves validation as it is, one line.
        if not isinstance(v, dict):
            return v
        return {code: _coin_settings(code, raw) for code, raw in v.items()}

    def confirmations(self, coin: str) -> int:
        cfg = self.coins[coin]
        if cfg.confirmations:
            return cfg.confirmations
        family = families.get(cfg.kind)
        return family.default_confirmations.get(coin, family.fallback_confirmations)


NETWORK_NAME = re.compile(r"^[A-Z][A-Z0-9]{0,15}$")
MAX_COIN_CODE = 10  # String(10): payments.coin, invoices.coin, credit and refund rows


def _network_family(name: str, raw: object) -> Family:
    where = f"networks.{name}"
    if not NETWORK_NAME.match(name):
        raise ConfigError(f"{where}: a network's name is upper-case letters and digits "
                          "(BASE, ARB1): it ends its coins' codes (USDC-BASE)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    kind = raw.get("kind")
    if kind is None:
        raise ConfigError(f"{where}.kind: is required")
    try:
        family = families.get(str(kind))
    except families.UnknownFamily:
        raise ConfigError(f"{where}.kind: {kind!r} is not a known chain family "
                          f"(known: {', '.join(families.kinds())})") from None
    if family.network_coins is None:
        raise ConfigError(f"{where}.kind: the {kind} family has no [networks.*] tables; "
                          "configure its coins as [coins.*] tables")
    return family


def network_coins(name: str, raw: object, taken: Iterable[str]
                  ) -> dict[str, CoinSettings]:
    """The coins a `[networks.NAME]` table stands for (USDC-BASE, ...), validated; one
    ConfigError naming the key otherwise. `taken`: the codes of coins configured so far."""
    family = _network_family(name, raw)
    assert family.network_coins is not None and isinstance(raw, dict)
    try:
        tables = family.network_coins(name, raw)
    except ValueError as exc:
        raise ConfigError(f"networks.{name}.{exc}") from None
    coins = {}
    for code, (where, table) in tables.items():
        if len(code) > MAX_COIN_CODE:
            raise ConfigError(f"{where}: the coin code {code} has {len(code)} characters, at "
                              f"most {MAX_COIN_CODE} fit the database's coin columns: choose "
                              "a shorter network name (ARB1 rather than ARBITRUM)")
        if code in taken:
            raise ConfigError(f"{where}: the coin {code} is configured twice (also as "
                              f"[coins.{code}] or by another network)")
        coins[code] = _coin_settings(code, table, where)
    return coins


def expand_networks(data: dict[str, Any]) -> None:
    """Replace `networks` in the raw configuration by the coins its tables stand for."""
    networks = data.pop("networks", {})
    if not isinstance(networks, dict):
        raise ConfigError("networks: must be a table of network tables")
    coins = data.setdefault("coins", {})
    if not isinstance(coins, dict):
        return  # validation names it
    if networks and "families" in data:  # extra families register before networks expand
        FamiliesConfig.model_validate(data["families"])
    for name, raw in networks.items():
        coins.update(network_coins(name, raw, coins))


def family_problems(settings: "Settings") -> list[str]:
    """Each family's checks across its configured coins (see `Family.check`)."""
    by_kind: dict[str, dict[str, CoinSettings]] = {}
    for code, coin in settings.coins.items():
        by_kind.setdefault(coin.kind, {})[code] = coin
    problems = []
    for kind, coins in sorted(by_kind.items()):
        check = families.get(kind).check
        if check is not None:
            problems.extend(check(coins))
    return problems


def _days(span: timedelta) -> str:
    return f"{span / timedelta(days=1):.2f}".rstrip("0").rstrip(".")


def _env_value(raw: str, name: str) -> Any:
    # Lists and tables come as JSON; scalars stay strings and pydantic converts them, so a
    # secret that happens to look like a number is never mangled.
    if raw.lstrip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            raise ConfigError(f"{name}: is not valid JSON") from None
    return raw


def _setting_path(name: str) -> list[str] | None:
    """The keys a `GATEWAY_<SECTION>__<KEY>` variable sets, or None when it sets none."""
    if not name.startswith(ENV_PREFIX):
        return None
    path = name[len(ENV_PREFIX) :].split("__")
    # A whole section may come as one JSON table (GATEWAY_PLANS='{...}'); other
    # GATEWAY_* variables without a section (GATEWAY_CONFIG, a test's own...) are not ours.
    if len(path) == 1 and path[0].lower() not in (*Settings.model_fields, "networks"):
        return None
    return path


def configured(path: str | Path | None, environ: Mapping[str, str]) -> bool:
    """Whether there is a configuration to read: a file named (or GATEWAY_CONFIG), or a
    setting in the environment (as in a container)."""
    return bool(path or environ.get("GATEWAY_CONFIG")) or any(
        _setting_path(name) is not None for name in environ)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        path = _setting_path(name)
        if path is None:
            continue
        node = data
        keys: list[str] = []
        for depth, part in enumerate(path):
            key = _match_key(node, part, named=_named(keys, depth))
            keys.append(key)
            if depth == len(path) - 1:
                node[key] = _env_value(raw, name)
                # The environment wins over the file in either spelling of the key.
                twin = key.removesuffix("_file") if key.endswith("_file") else f"{key}_file"
                node.pop(twin, None)
            else:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{'.'.join(keys)}: is not a table")


def _named(keys: list[str], depth: int) -> bool:
    """The key at `depth` below `keys` names a coin, plan, network or network's token."""
    if depth == 1:
        return keys[0] in ("coins", "plans", "networks")
    return depth == 3 and keys[0] == "networks" and keys[2] == "tokens"


def _match_key(node: dict[str, Any], part: str, named: bool) -> str:
    """Env names are upper case. Keys are lower case, except the names of coins, plans,
    networks and a network's tokens, which keep the case they have in the file (or the
    env's, for a new one)."""
    for existing in node:
        if existing.lower() == part.lower():
            return existing
    return part if named else part.lower()


def _resolve_files(node: dict[str, Any], where: str = "") -> None:
    for key in list(node):
        value = node[key]
        if isinstance(value, dict):
            _resolve_files(value, f"{where}{key}.")
        elif key.endswith("_file") and isinstance(value, str):
            target = key[: -len("_file")]
            try:
                text = Path(value).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{where}{key}: cannot read {value}: {exc.strerror}") from None
            node[target] = json.loads(text) if text.startswith("[") else text
            del node[key]


def _format_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known key"
    msg = msg.removeprefix("Value error, ")
    return f"{loc}: {msg}"


def load(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    path = path or environ.get("GATEWAY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    _apply_env(data, environ)
    _resolve_files(data)
    try:
        expand_networks(data)
    except ValidationError as exc:
        raise ConfigError(f"families.{_format_error(exc)}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        # A check across sections (a model validator) has no key of its own: its text
        # names the keys.
        raise ConfigError(_format_error(exc).removeprefix(": ")) from None
    for name, plan in settings.plans.items():
        try:
            plan.fiat_prices()
        except InvalidInput as exc:
            raise ConfigError(f"plans.{name}.price: {exc.detail}") from None
    for problem in family_problems(settings):
        raise ConfigError(problem)
    return settings
