"""A tiny catalog for tests: a few messages "translated", compiled in memory, so a test
can see which catalog text went through (the real catalogs are filled by translators)."""

from io import BytesIO

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import Translations

from gateway.i18n import Catalogs


def tiny_catalogs(by_locale: dict[str, dict[str, str]]) -> Catalogs:
    """{"de": {"English message": "Deutsche Nachricht"}} as compiled catalogs."""
    found = {}
    for locale, pairs in by_locale.items():
        catalog = Catalog(locale=locale)
        for message, translation in pairs.items():
            catalog.add(message, translation)
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        found[locale] = Translations(buffer)
    return Catalogs(found)
