"""The message catalogs (issue 32, docs/i18n.md) stay in step with the code: the template
catalog (gateway/locale/messages.pot) holds exactly the messages the code and the
templates mark, every language's catalog holds exactly those, the compiled catalogs the
package ships are those of the sources, and no translation loses a placeholder. A new
message without `make i18n` fails here."""

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from gateway.i18n import CATALOG_DIR, LOCALES

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = [name for name in LOCALES if name != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def msgid(message: object) -> str:
    """A catalog entry's key: the singular (a plural's first form)."""
    return message[0] if isinstance(message, tuple | list) else str(message)


def extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {msgid(found[2]) for found in extract_from_dir(
        str(ROOT / "gateway"), method_map, options_map)}


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def po_path(language: str) -> Path:
    return CATALOG_DIR / language / "LC_MESSAGES" / "messages.po"


def ids(catalog: Catalog) -> set[str]:
    return {msgid(m.id) for m in catalog if m.id}


def test_the_template_catalog_holds_what_the_code_marks() -> None:
    in_code = extracted()
    in_template = ids(read(CATALOG_DIR / "messages.pot"))
    assert len(in_code) > 150  # the extraction itself works (templates and code)
    assert {"Log in", "Waiting for your payment.", "Language"} <= in_code
    missing, stale = in_code - in_template, in_template - in_code
    assert not missing and not stale, (
        f"run `make i18n`: not in messages.pot {sorted(missing)}, "
        f"no longer in the code {sorted(stale)}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_every_message(language: str) -> None:
    assert ids(read(po_path(language))) == ids(read(CATALOG_DIR / "messages.pot")), \
        "run `make i18n` (pybabel update)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_shipped_compiled_catalog_is_its_source(language: str) -> None:
    compiled = BytesIO()
    write_mo(compiled, read(po_path(language)))  # as `pybabel compile` writes it
    shipped = po_path(language).with_suffix(".mo").read_bytes()
    assert shipped == compiled.getvalue(), "run `make i18n` (pybabel compile)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_translation_keeps_every_placeholder(language: str) -> None:
    catalog = read(po_path(language))
    assert catalog.locale is not None and str(catalog.locale) == language
    for m in catalog:
        if not m.id or not m.string:
            continue
        wanted = set(PLACEHOLDER.findall(" ".join(m.id) if isinstance(m.id, tuple) else m.id))
        forms = m.string if isinstance(m.string, tuple) else (m.string,)
        for form in forms:
            if form:
                assert set(PLACEHOLDER.findall(form)) <= wanted | {"n", "num"}, (m.id, form)
                assert set(PLACEHOLDER.findall(form)) >= wanted - {"n", "num"}, (m.id, form)
