"""Languages (issue 32): which ones the gateway speaks, how a request's language is chosen,
the compiled gettext catalogs, and the locale's formats for money, amounts and dates.

No aiohttp here: the web layer (`gateway.http.i18n`) negotiates per request, the services
get a `Catalogs` (through their `Translate` port) to write mails in an account's language.
Catalogs are read by `Catalogs.load()`, called when the application is built, never at
import time. How to add a language: docs/i18n.md."""

import gettext
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from functools import cache
from pathlib import Path
from typing import Protocol

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency as babel_currency
from babel.numbers import format_decimal as babel_decimal
from babel.support import Translations

# Re-exported: the domain's marker, for the layers above it.
from gateway.domain.errors import N_ as N_

DEFAULT = "en"
# The catalogs' names (gateway/locale/<name>/LC_MESSAGES/messages.mo), English first: the
# source language, no catalog.
LOCALES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh_Hans", "fa")
CATALOG_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


class Gettext(Protocol):
    """A catalog (gettext.NullTranslations and Babel's Translations are ones)."""

    def gettext(self, message: str, /) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...


def tag(locale: str) -> str:
    """The BCP 47 tag of a catalog name, for `lang` attributes: zh_Hans -> zh-Hans."""
    return locale.replace("_", "-")


@cache
def direction(locale: str) -> str:
    """"rtl" or "ltr", from the locale's data (Persian is right to left)."""
    return "rtl" if Locale.parse(locale).character_order == "right-to-left" else "ltr"


@cache
def display_name(locale: str) -> str:
    """The language's name in itself (Deutsch, فارسی): what a language menu shows."""
    name = Locale.parse(locale).get_display_name(locale) or locale
    return name[:1].upper() + name[1:]


def _parse(value: str) -> Locale | None:
    try:
        return Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def supported(value: str | None) -> str | None:
    """The catalog name `value` (a tag such as de-AT, zh-CN, zh_Hans) is served in; None
    when the gateway does not speak it. Chinese needs the simplified script: zh-TW and
    zh-Hant are not served as zh_Hans (Babel's likely subtags fill the script in)."""
    if not value or len(value) > 35:
        return None
    parsed = _parse(value)
    if parsed is None:
        return None
    for name in LOCALES:
        ours = Locale.parse(name)
        if parsed.language != ours.language:
            continue
        if ours.script is not None and (parsed.script or "Hans") != ours.script:
            continue
        return name
    return None


def accept_language(header: str | None) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (q=0 dropped)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:30]):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name.strip() and name.strip() != "*" and q > 0:
            ranked.append((-q, position, name.strip()))
    return [name for _q, _p, name in sorted(ranked)]


def negotiate(chosen: str | None, accept: str | None) -> str:
    """A request's language: the visitor's own choice (the preference cookie), else the
    first language of Accept-Language the gateway speaks, else English. Nothing else:
    never the client's address."""
    if (choice := supported(chosen)) is not None:
        return choice
    for wanted in accept_language(accept):
        if (name := supported(wanted)) is not None:
            return name
    return DEFAULT


class Catalogs:
    """Every language's compiled catalog, read once (`load`). English is the source text:
    an empty or missing translation shows the English message."""

    def __init__(self, translations: Mapping[str, gettext.NullTranslations] | None = None
                 ) -> None:
        self._by_locale = dict(translations or {})
        self._english = gettext.NullTranslations()

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR, locales: Iterable[str] = LOCALES
             ) -> "Catalogs":
        found: dict[str, gettext.NullTranslations] = {}
        for name in locales:
            if name == DEFAULT:
                continue
            t = Translations.load(str(directory), [name], DOMAIN)
            if not isinstance(t, Translations):
                raise FileNotFoundError(f"no compiled catalog for {name} in {directory}")
            found[name] = t
        return cls(found)

    def __call__(self, locale: str | None) -> gettext.NullTranslations:
        """The catalog of `locale` (any tag; unknown or None: English)."""
        name = supported(locale) or DEFAULT
        return self._by_locale.get(name, self._english)

    def voice(self, locale: str | None) -> "Voice":
        """The catalog and formats of `locale` (unknown or None: English)."""
        name = supported(locale) or DEFAULT
        return Voice(name, self(name))


ENGLISH = Catalogs()  # no catalog read: every message as written


# -- formats ----------------------------------------------------------------------------
def money(amount: str | Decimal, currency: str, locale: str) -> str:
    """A fiat amount (its decimal string, e.g. "1234.50") with the currency's symbol and
    digits in the locale's style: €1,234.50, 1.234,50 €."""
    return babel_currency(Decimal(amount), currency, locale=locale)


def amount(value: str, locale: str) -> str:
    """A coin amount (format_units' exact decimal string) in the locale's style, in full
    precision: no digit is rounded away. Shown only: what is copied or put into a payment
    URI stays the plain form (docs/i18n.md)."""
    number = Decimal(value)
    exponent = number.as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) else 0
    pattern = "#,##0." + "0" * digits if digits > 0 else "#,##0"
    with localcontext() as ctx:
        ctx.prec = 100  # 18 decimals of a large amount exceed the default 28 digits
        return babel_decimal(number, format=pattern, locale=locale)


def when(value: datetime, locale: str) -> str:
    """A date and time (to the minute) in the locale's words, always in UTC with the
    offset shown: "Dec 7, 2026, 11:05 PM UTC+00:00", "07.12.2026, 23:05 UTC+00:00"."""
    utc = value.astimezone(UTC)
    pattern = str(get_datetime_format("medium", locale=locale)).replace("'", "")
    text = pattern.replace("{0}", format_time(utc, "short", tzinfo=UTC, locale=locale)
                           ).replace("{1}", format_date(utc.date(), "medium", locale=locale))
    return f"{text} UTC+00:00"


def day(value: datetime, locale: str) -> str:
    """A date (UTC) in the locale's words."""
    return format_date(value.astimezone(UTC).date(), "medium", locale=locale)


@dataclass(frozen=True)
class Voice:
    """One language's catalog and formats, for text written outside a template (a mail,
    the checkout's status lines). Placeholders are named, `%(name)s`, as in the
    templates: `voice.gettext("Pay before %(time)s.", time=...)`."""

    locale: str
    catalog: Gettext

    def gettext(self, message: str, **values: object) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        return self.catalog.ngettext(singular, plural, n) % {"n": n, **values}

    def when(self, value: datetime) -> str:
        return when(value, self.locale)

    def day(self, value: datetime) -> str:
        return day(value, self.locale)

    def money(self, value: str | Decimal, currency: str) -> str:
        return money(value, currency, self.locale)

    def amount(self, value: str) -> str:
        return amount(value, self.locale)


@cache
def menu() -> tuple[tuple[str, str, str], ...]:
    """(catalog name, tag, name in itself) of every language, for the language menu."""
    return tuple((name, tag(name), display_name(name)) for name in LOCALES)
