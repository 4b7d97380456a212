"""The registry of chain families: `kind` in a coin's configuration picks one.

The only module of `gateway` that names a family package. Families are loaded lazily
(by module path), so reading the configuration imports no adapter. Extra families (a
fake one in tests, a third-party one) come from `[families] extra`, a list of module
paths each exposing `FAMILY`, or from `register()`."""

import importlib
from collections.abc import Iterable

from chains.base import Family

BUILTIN: dict[str, str] = {
    "utxo": "chains.utxo.family",
    "evm": "chains.evm.family",
    "monero": "chains.monero.family",
}

_registered: dict[str, Family] = {}


class UnknownFamily(LookupError):
    pass


def register(family: Family) -> Family:
    """Add (or replace) a family; returns it."""
    _registered[family.kind] = family
    return family


def unregister(kind: str) -> None:
    _registered.pop(kind, None)


def load_extra(modules: Iterable[str]) -> None:
    """Import each module path and register its `FAMILY`. ImportError and a missing or
    wrong `FAMILY` raise ValueError naming the module."""
    for path in modules:
        try:
            module = importlib.import_module(path)
        except ImportError as exc:
            raise ValueError(f"cannot import family module {path!r}: {exc}") from None
        family = getattr(module, "FAMILY", None)
        if not isinstance(family, Family):
            raise ValueError(f"module {path!r} has no FAMILY (a chains.base.Family)")
        register(family)


def kinds() -> tuple[str, ...]:
    return tuple(sorted(set(BUILTIN) | set(_registered)))


def get(kind: str) -> Family:
    if kind in _registered:
        return _registered[kind]
    path = BUILTIN.get(kind)
    if path is None:
        raise UnknownFamily(kind)
    family = importlib.import_module(path).FAMILY
    assert isinstance(family, Family)
    return family
