"""A request's language (issue 32): negotiated once per request by `language_middleware`
(the preference cookie's choice, else Accept-Language, else English; never the client's
address), kept on the request (`VOICE`), and given to every template with the
catalog's gettext (Jinja2's i18n extension, new-style) and the locale's formats.

The preference cookie `__Host-pref` holds the currency, the datacenter and the language,
`currency|datacenter|language`, nothing else (docs/privacy.md). The language menu on
every page is a set of plain links to `lang?l=<language>&next=<this page>`: it sets the
cookie and sends the browser back to a page of this site (never elsewhere)."""

import gettext
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from gateway import i18n
from gateway.i18n import N_
from gateway.services.api_keys import API_KEY_PREFIX

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CATALOGS = web.AppKey("catalogs", i18n.Catalogs)
VOICE = web.RequestKey("voice", i18n.Voice)  # the request's language: catalog and formats
PREF_COOKIE = "__Host-pref"  # currency, datacenter and language; nothing else
PREF_MAX_AGE = 365 * 86400

# Where the language menu may send the browser back to: a path of this application,
# relative to its root (so below any prefix), with its query. No scheme, no host, no
# leading slash, no backslash, no "//" and no "..": never another site.
_NEXT = re.compile(r"(?!.*//)(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._~!$&'()*+,;=@%/?-]{0,499}")
NEXT_DEFAULT = "login"


@dataclass(frozen=True)
class Pref:
    currency: str | None = None
    datacenter: str | None = None
    language: str | None = None


def read_pref(request: web.Request) -> Pref:
    parts = request.cookies.get(PREF_COOKIE, "").split("|")
    parts += [""] * (3 - len(parts))
    return Pref(parts[0] or None, parts[1] or None, i18n.supported(parts[2]))


def set_pref(request: web.Request, resp: web.StreamResponse, currency: str | None = None,
             datacenter: str | None = None, language: str | None = None) -> None:
    """Sets the values given, keeping the others the cookie already has."""
    old = read_pref(request)
    new = replace(old, currency=currency or old.currency,
                  datacenter=datacenter or old.datacenter, language=language or old.language)
    if (new == old and PREF_COOKIE in request.cookies) or new == Pref():
        return
    value = f"{new.currency or ''}|{new.datacenter or ''}|{new.language or ''}"
    resp.set_cookie(PREF_COOKIE, value, max_age=PREF_MAX_AGE, path="/", httponly=True,
                    samesite="Strict", secure=True)


ENGLISH_VOICE = i18n.ENGLISH.voice(None)


def voice(request: web.Request) -> i18n.Voice:
    """The request's catalog and formats (English for a request the middleware never
    saw), for text written in Python."""
    found: i18n.Voice = request.get(VOICE, ENGLISH_VOICE)
    return found


def language(request: web.Request) -> str:
    return voice(request).locale


def tr(request: web.Request, message: str, **values: object) -> str:
    """`message` (marked with N_ where it is defined) in the request's language."""
    return voice(request).gettext(message, **values)


def _by_api_key(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").startswith(f"Bearer {API_KEY_PREFIX}")


@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # An API key's client is a program: its answers (problem details included) stay in
    # English, whatever its HTTP library sends as Accept-Language.
    name = i18n.DEFAULT if _by_api_key(request) else i18n.negotiate(
        read_pref(request).language, request.headers.get("Accept-Language"))
    request[VOICE] = request.app[CATALOGS].voice(name)
    resp = await handler(request)
    if (resp.content_type or "").startswith("text/html"):
        resp.headers.setdefault("Content-Language", i18n.tag(name))
    return resp


def here(request: web.Request, prefix: str) -> str:
    """This page for the language menu's `next`: the path below the application's root,
    with its query. A form's answer (a POST) points at the page the form is on."""
    path = request.path.removeprefix(prefix).lstrip("/")
    if request.method != "GET":
        if path == "account/cash":
            return path
        return "account" if path.startswith("account") else path.split("/", 1)[0]
    query = request.query_string
    return f"{path}?{query}" if query else path


def safe_next(value: str | None) -> str:
    """`value` when it is a path of this site below the application's root; otherwise
    the login page."""
    if value and _NEXT.fullmatch(value) and "\\" not in value:
        return value
    return NEXT_DEFAULT


# -- templates ---------------------------------------------------------------------------
def _catalog(ctx: jinja2.runtime.Context) -> i18n.Gettext:
    found = ctx.get("translations")
    return found if found is not None else gettext.NullTranslations()


@jinja2.pass_context
def _gettext(ctx: jinja2.runtime.Context, message: str) -> str:
    return _catalog(ctx).gettext(message)


@jinja2.pass_context
def _ngettext(ctx: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return _catalog(ctx).ngettext(singular, plural, n)


def _locale(ctx: jinja2.runtime.Context) -> str:
    return str(ctx.get("locale") or i18n.DEFAULT)


@jinja2.pass_context
def _money(ctx: jinja2.runtime.Context, value: str, currency: str) -> str:
    return i18n.money(value, currency, _locale(ctx))


@jinja2.pass_context
def _amount(ctx: jinja2.runtime.Context, value: str) -> str:
    return i18n.amount(value, _locale(ctx))


@jinja2.pass_context
def _when(ctx: jinja2.runtime.Context, value: datetime) -> str:
    return i18n.when(value, _locale(ctx))


@jinja2.pass_context
def _day(ctx: jinja2.runtime.Context, value: datetime) -> str:
    return i18n.day(value, _locale(ctx))


def _ltr(value: Any) -> Markup:
    """A value that reads left to right whatever the page's direction (an address, an
    amount, a txid, an id): isolated, so right-to-left text around it stays in order."""
    return Markup('<bdi dir="ltr">{}</bdi>').format(value)  # value escaped


# Stored codes a page shows as words (an invoice's or a refund's status, why credit
# moved, the prepaid time's state): the code stays in the API and in `class` and `id`
# attributes; the page shows its word in the request's language.
WORDS = {
    # Translators: an invoice's status, shown in the customer's list of invoices.
    "new": N_("new"), "processing": N_("processing"), "settled": N_("settled"),
    "expired": N_("expired"), "invalid": N_("invalid"),
    # Translators: a refund's status.
    "requested": N_("requested"), "approved": N_("approved"), "sent": N_("sent"),
    "completed": N_("completed"), "refused": N_("refused"), "cancelled": N_("cancelled"),
    # Translators: why the account's credit moved (a line of its credit history).
    "underpaid": N_("underpaid"), "overpaid": N_("overpaid"),
    "late_payment": N_("late payment"), "spent": N_("spent"), "refund": N_("refund"),
    "refund_returned": N_("refund returned"), "adjustment": N_("adjustment"),
    "spend_returned": N_("credit returned"), "reverted": N_("reverted"), "cash": N_("cash"),
    "voucher": N_("voucher"),
}


@jinja2.pass_context
def _word(ctx: jinja2.runtime.Context, code: object) -> str:
    value = getattr(code, "value", code)
    message = WORDS.get(str(value))
    return _catalog(ctx).gettext(message) if message else str(value)


def install(env: jinja2.Environment) -> None:
    """Jinja2's i18n extension with new-style gettext (placeholders by name, values
    escaped); the catalog comes from each render's context (`context`)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True)
    env.filters.update(money=_money, amount=_amount, when=_when, day=_day, ltr=_ltr,
                       word=_word)


def context(request: web.Request, prefix: str) -> dict[str, Any]:
    """What every page gets for its language: `lang`, `dir`, the catalog, the menu."""
    spoken = voice(request)
    return {"locale": spoken.locale, "lang": i18n.tag(spoken.locale),
            "dir": i18n.direction(spoken.locale), "translations": spoken.catalog,
            "languages": i18n.menu(), "here": here(request, prefix)}
