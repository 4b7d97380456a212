"""Languages (issue 32, docs/i18n.md): which language a request gets, where the language
menu may send a browser back to, and the locale's formats for money, coin amounts and
times (shown only: the plain forms stay what is copied)."""

from datetime import UTC, datetime

import pytest

from gateway import i18n
from gateway.http.checkout import lock_text, settlement_text
from gateway.http.i18n import safe_next
from tests.support.i18n import tiny_catalogs


@pytest.mark.parametrize(("cookie", "accept", "expected"), [
    (None, None, "en"),  # nothing said: English
    (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
    (None, "fa-IR", "fa"),
    (None, "pt-BR, fr;q=0.5", "fr"),  # the first language we speak, in order
    (None, "en;q=0.2, ru;q=0.9", "ru"),  # by q-value, not by position
    (None, "zh-CN", "zh_Hans"), (None, "zh", "zh_Hans"), (None, "zh-Hans-SG", "zh_Hans"),
    (None, "zh-TW, es;q=0.1", "es"),  # traditional script: not served as simplified
    (None, "pt-BR, it", "en"),  # none we speak: English
    (None, "de;q=0, fr;q=0.1", "fr"),  # q=0: "not this one"
    (None, "*", "en"), (None, "x" * 500, "en"), (None, ";;,,q=", "en"),
    ("fr", "de-DE", "fr"),  # the visitor's own choice beats the browser's
    ("zh-Hans", "de", "zh_Hans"),
    ("tlh", "de-DE", "de"),  # a cookie naming a language we do not speak: ignored
    ("", "es", "es"),
])
def test_a_request_gets_its_choice_then_its_browsers_then_english(
        cookie: str | None, accept: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, accept) == expected


def test_the_client_address_plays_no_part() -> None:
    # The whole input of the choice: the cookie's language and Accept-Language. There is
    # no parameter an address (or a country guessed from it) could come in through.
    import inspect

    assert list(inspect.signature(i18n.negotiate).parameters) == ["chosen", "accept"]


def test_every_language_has_its_direction_and_tag() -> None:
    assert [i18n.direction(name) for name in i18n.LOCALES] == [
        "ltr", "ltr", "ltr", "ltr", "ltr", "ltr", "rtl"]
    assert i18n.tag("zh_Hans") == "zh-Hans"
    names = {name: label for name, _tag, label in i18n.menu()}
    assert names["de"] == "Deutsch" and names["fa"] == "فارسی" and names["ru"] == "Русский"


@pytest.mark.parametrize("target", [
    "account", "login?done=logout", "pay/inv_0123456789abcdefghjkmnpqrs",
    "email-change?token=eyJhbGciOi.eyJzdWIi-_x.sig", "account/cash"])
def test_the_language_menu_returns_to_a_page_of_this_site(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize("target", [
    None, "", "//evil.example/", "/\\evil.example", "\\\\evil.example", "https://evil.example",
    "http:evil.example", "javascript:alert(1)", "/account", "../account", "account/../..",
    "pay//x", " account", "account\nLocation: x", "acc\\ount", "%2F%2Fevil.example" + "/" * 0,
    "a" * 600])
def test_the_language_menu_never_sends_a_browser_elsewhere(target: str | None) -> None:
    result = safe_next(target)
    # Either the value was refused (the login page) or it stays a relative path below
    # the application's root: never a scheme, a host, or a way up.
    assert result == "login" or (not result.startswith(("/", "\\")) and ":" not in result
                                 and "//" not in result and ".." not in result)
    if target is not None and ("//" in target or ":" in target or target.startswith("/")):
        assert result == "login"


def test_money_is_written_as_the_locale_writes_it() -> None:
    assert i18n.money("1234.50", "EUR", "en") == "€1,234.50"
    assert i18n.money("1234.50", "EUR", "de") == "1.234,50\xa0€"
    assert i18n.money("1234.50", "EUR", "fr") == "1\u202f234,50\xa0€"
    assert i18n.money("8.00", "USD", "ru") == "8,00\xa0$"
    assert i18n.money("1234", "JPY", "en") == "¥1,234"  # no minor digits in yen


def test_coin_amounts_keep_every_digit() -> None:
    # Full precision: an 18-decimal amount is not rounded (a float or Babel's default
    # of three fraction digits would).
    assert i18n.amount("0.000000000000000001", "en") == "0.000000000000000001"
    assert i18n.amount("123456789.123456789012345678", "de") == \
        "123.456.789,123456789012345678"
    assert i18n.amount("0.12345678", "fr") == "0,12345678"
    assert i18n.amount("0.12345678", "fa") == "0.12345678"  # Persian: Latin digits, CLDR
    assert i18n.amount("5", "ru") == "5"


def test_times_are_utc_with_the_offset_shown() -> None:
    at = datetime(2026, 12, 7, 23, 5, tzinfo=UTC)
    assert i18n.when(at, "de") == "07.12.2026, 23:05 UTC+00:00"
    assert i18n.when(at, "en") == "Dec 7, 2026, 11:05\u202fPM UTC+00:00"
    assert i18n.when(at, "zh_Hans") == "2026年12月7日 23:05 UTC+00:00"
    # Whatever zone the value is in, the time shown is UTC.
    from datetime import timedelta, timezone

    assert i18n.when(at.astimezone(timezone(timedelta(hours=5))), "de") == \
        "07.12.2026, 23:05 UTC+00:00"
    assert i18n.day(at, "ru") == "7 дек. 2026\u202fг."


def test_the_checkout_words_come_from_the_catalog_of_the_language() -> None:
    catalogs = tiny_catalogs({"de": {
        "block %(height)s": "Block %(height)s",
        "Received; spendable from %(when)s.": "Erhalten; ausgebbar ab %(when)s.",
    }})
    from chains.base import Lock, NetworkFacts

    voice = catalogs.voice("de")
    assert lock_text(NetworkFacts("Dogecoin"), Lock(height=116), None,
                     datetime(2026, 1, 1, tzinfo=UTC), voice) == "Erhalten; ausgebbar ab Block 116."
    # Not translated yet: the English message, with its values (and plural) filled in.
    assert settlement_text(NetworkFacts("Bitcoin", 600), 1, voice) == (
        "Your payment is seen within seconds; settlement waits for 1 confirmation "
        "(about 10 minutes).")
    assert catalogs.voice("tlh").locale == "en"  # unknown: English


def test_catalogs_are_read_when_asked_not_at_import(tmp_path: object) -> None:
    # Importing the module reads nothing; `load` reads each language's compiled catalog
    # (and says which one is missing).
    assert i18n.ENGLISH("de").gettext("Log in") == "Log in"
    with pytest.raises(FileNotFoundError, match="de"):
        i18n.Catalogs.load(directory=tmp_path)  # type: ignore[arg-type]
    loaded = i18n.Catalogs.load()
    assert loaded("fa") is not loaded("de")


def test_a_services_error_is_shown_in_the_customers_words() -> None:
    from gateway.domain.accounts import check_password
    from gateway.domain.errors import InvalidInput
    from gateway.http.problems import error_text
    from gateway.services.errors import NotFound, Unauthorized

    voice = tiny_catalogs({"de": {
        "must be at least %(n)s characters": "muss mindestens %(n)s Zeichen lang sein",
        "this link is not valid": "dieser Link ist ungültig",
        "%(what)s not found": "%(what)s nicht gefunden"}}).voice("de")
    with pytest.raises(InvalidInput) as short:
        check_password("short")
    # The field's name stays as the API names it; the message is translated with its value.
    assert error_text(short.value, voice) == "password: muss mindestens 10 Zeichen lang sein"
    assert str(short.value) == "password: must be at least 10 characters"  # as before
    assert error_text(Unauthorized("this link is not valid"), voice) == "dieser Link ist ungültig"
    assert error_text(NotFound("invoice"), voice) == "invoice nicht gefunden"
    # A message no catalog has (built with values) stays as written.
    assert error_text(Unauthorized("until 2026-12-07T00:00:00Z"), voice) == \
        "until 2026-12-07T00:00:00Z"
