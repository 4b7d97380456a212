"""`gateway config check`: the effective configuration, every secret replaced by where it
came from, and every problem found (not only the first, as start-up reports it)."""

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

from gateway import config
from gateway.config import ENV_PREFIX, ConfigError, Settings
from gateway.domain.errors import InvalidInput

Key = tuple[str, ...]


@dataclass
class Report:
    settings: Settings | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: dict[Key, str] = field(default_factory=dict)  # lower-cased key -> source
    unreadable: set[str] = field(default_factory=set)  # keys whose *_file failed


def _lower(key: Key) -> Key:
    return tuple(part.lower() for part in key)


def _walk(node: Mapping[str, Any], prefix: Key = ()) -> list[tuple[Key, Any]]:
    out: list[tuple[Key, Any]] = []
    for key, value in node.items():
        if isinstance(value, dict):
            out.extend(_walk(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out


def check(path: str | None, environ: Mapping[str, str] | None = None) -> Report:
    environ = os.environ if environ is None else environ
    report = Report()
    path = path or environ.get("GATEWAY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            report.problems.append(f"config file {path} does not exist")
            return report
        except tomllib.TOMLDecodeError as exc:
            report.problems.append(f"config file {path}: {exc}")
            return report
    where = f"in {path}" if path else "inline"
    for key, _ in _walk(data):
        report.sources[_lower(key)] = where
    try:
        config._apply_env(data, environ)
    except ConfigError as exc:
        report.problems.append(str(exc))
        return report
    for name in environ:
        if name.startswith(ENV_PREFIX) and "__" in name:
            key = _lower(tuple(name[len(ENV_PREFIX):].split("__")))
            report.sources[key] = f"env {name}"
    _read_files(data, report)
    _validate(data, report)
    if report.settings is not None:
        _cross_checks(report.settings, report)
        _inline_secrets(report)
    return report


def _read_files(node: dict[str, Any], report: Report, prefix: Key = ()) -> None:
    """Like config._resolve_files, but every unreadable file is a problem of its own."""
    for key in list(node):
        value = node[key]
        if isinstance(value, dict):
            _read_files(value, report, (*prefix, key))
        elif key.endswith("_file") and isinstance(value, str):
            target = key.removesuffix("_file")
            here = _lower((*prefix, key))
            via = report.sources.get(here, "")
            report.sources[_lower((*prefix, target))] = (
                f"file {value}" + (f" ({via})" if via.startswith("env") else ""))
            del node[key]
            try:
                text = Path(value).read_text().strip()
            except OSError as exc:
                report.problems.append(
                    f"{'.'.join((*prefix, key))}: cannot read {value}: {exc.strerror}")
                report.unreadable.add(".".join((*prefix, target)))
                continue
            node[target] = json.loads(text) if text.startswith("[") else text


def _validate(data: dict[str, Any], report: Report) -> None:
    coins = data.pop("coins", {})
    if "families" in data:  # extra families register themselves before coins validate
        try:
            config.FamiliesConfig.model_validate(data["families"])
        except ValidationError as exc:
            _add(report, _lines(exc, "families"))
    valid_coins: dict[str, Any] = {}
    if isinstance(coins, dict):
        for code, raw in coins.items():
            try:
                valid_coins[code] = config._coin_settings(code, raw)
            except ConfigError as exc:
                _add(report, [str(exc)])
    else:
        report.problems.append("coins: must be a table of coin tables")
    _networks(data.pop("networks", {}), valid_coins, report)
    try:
        settings = Settings.model_validate({**data, "coins": valid_coins})
    except ValidationError as exc:
        _add(report, _lines(exc))
        return
    for name, plan in settings.plans.items():
        try:
            plan.fiat_prices()
        except InvalidInput as exc:
            report.problems.append(f"plans.{name}.price: {exc.detail}")
    if not report.problems:
        report.settings = settings


def _networks(networks: object, coins: dict[str, Any], report: Report) -> None:
    """Each `[networks.NAME]` table's coins, added to `coins`; a problem per bad table.
    Their secrets' sources are the network table's keys."""
    if not isinstance(networks, dict):
        report.problems.append("networks: must be a table of network tables")
        return
    for name, raw in networks.items():
        try:
            found = config.network_coins(name, raw, coins)
        except ConfigError as exc:
            _add(report, [str(exc)])
            continue
        coins.update(found)
        for code in found:
            for key in ("rpc_url", "xpub"):
                source = report.sources.get(_lower(("networks", name, key)))
                if source is not None:
                    report.sources[_lower(("coins", code, key))] = source


def _add(report: Report, lines: list[str]) -> None:
    """Problems, less "is required" for a key whose file could not be read (said once)."""
    report.problems.extend(line for line in lines if not any(
        line == f"{key}: is required" for key in report.unreadable))


def _lines(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known key"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def _cross_checks(s: Settings, report: Report) -> None:
    """Settings each valid alone that do not work together."""
    for check in (_server_checks, _storage_checks, _coin_checks):
        check(s, report)
    report.problems.extend(config.family_problems(s))
    if not s.accounts.require_email_verification:
        report.warnings.append("accounts.require_email_verification = false: signup answers "
                               "409 for an address that has an account, so anyone can learn "
                               "which addresses have one")


def _server_checks(s: Settings, report: Report) -> None:
    srv = s.server
    public = urlsplit(srv.public_url)
    if public.scheme not in ("http", "https") or not public.netloc:
        report.problems.append(f"server.public_url: {srv.public_url!r} is not an http(s) URL")
    if bool(srv.tls_cert) != bool(srv.tls_key):
        report.problems.append("server.tls_cert and server.tls_key: give both or neither")
    for name in ("tls_cert", "tls_key"):
        file = getattr(srv, name)
        if file is not None and not os.access(file, os.R_OK):
            report.problems.append(f"server.{name}: cannot read {file}")
    if (public.scheme == "https" and not srv.tls_cert and not srv.trusted_proxies):
        report.problems.append(
            "server.trusted_proxies: public_url is https but the gateway neither terminates "
            "TLS (tls_cert) nor trusts a proxy that does, so the portal's forms would be "
            "refused; list the reverse proxy's address")


def _storage_checks(s: Settings, report: Report) -> None:
    if s.backup.dir is not None and s.backup.key is None:
        report.problems.append("backup.key: backup.dir is set but there is no key "
                               "(key_file), so no backup would be written")
    if s.backup.dir is not None and not _can_create(Path(s.backup.dir)):
        report.problems.append(f"backup.dir: {s.backup.dir} cannot be written")
    if s.database.url.startswith("sqlite"):
        db_path = s.database.url.split("///", 1)[-1]
        folder = Path(db_path).parent
        if db_path != ":memory:" and not _can_create(folder):
            report.problems.append(
                f"database.url: the folder {folder} of the SQLite database is not writable")


def _coin_checks(s: Settings, report: Report) -> None:
    if not s.coins:
        report.warnings.append("coins: no coin is configured; no invoice can be created")
    for code, coin in s.coins.items():
        asset = coin.asset or code
        pairs = [p for p in s.rates.fixed if p.upper().startswith(f"{asset.upper()}-")]
        if not s.rates.sources and not pairs:
            priced = "" if asset == code else f" (priced as {asset})"
            report.problems.append(
                f"rates: no source and no fixed rate for {asset}: every {code} invoice"
                f"{priced} would be refused")


def _can_create(folder: Path) -> bool:
    """The folder is writable, or the nearest existing folder above it is."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK)


def _inline_secrets(report: Report) -> None:
    for key, source in _secret_keys(report):
        if not source.startswith(("file", "env")):
            report.warnings.append(f"{'.'.join(key)}: the secret is written {source}; "
                                   f"use {key[-1]}_file (a file readable by the gateway only)")


def _secret_keys(report: Report) -> list[tuple[Key, str]]:
    assert report.settings is not None
    out = []
    for key, value in _walk(_dump(report.settings, {})):
        if value == "<secret>":
            out.append((key, report.sources.get(_lower(key), "?")))
    return out


def _dump(model: BaseModel, sources: Mapping[Key, str], prefix: Key = ()) -> dict[str, Any]:
    """The model as plain values; every secret as "<secret>", or as its source when
    `sources` knows it."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        out[key] = _plain(value, sources, (*prefix, key))
    return out


def _database_url(value: Any, sources: Mapping[Key, str], key: Key) -> Any:
    """The database URL may hold the database password: shown as where it comes from."""
    source = sources.get(_lower(key), "")
    if source.startswith(("file", "env")):
        return f"<{source}>"
    password = urlsplit(str(value)).password
    if password:
        return str(value).replace(f":{password}@", ":<password written in the file>@", 1)
    return value


def _plain(value: Any, sources: Mapping[Key, str], key: Key) -> Any:
    if isinstance(value, BaseModel):
        return _dump(value, sources, key)
    if isinstance(value, dict):
        return {k: _plain(v, sources, (*key, str(k))) for k, v in value.items()}
    if isinstance(value, SecretStr) or (
            isinstance(value, list) and value and isinstance(value[0], SecretStr)):
        source = sources.get(_lower(key))
        return f"<{source}>" if source else "<secret>"
    if key == ("database", "url"):
        return _database_url(value, sources, key)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v, sources, key) for v in value]
    if hasattr(value, "is_finite"):  # Decimal
        return str(value)
    return value


def effective_toml(report: Report) -> str:
    """The effective configuration as TOML, secrets shown as their source."""
    assert report.settings is not None
    doc = _dump(report.settings, report.sources)
    lines: list[str] = []

    def table(name: str, node: dict[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in node.items() if isinstance(v, dict)}
        if scalars or not tables:
            lines.append(f"\n[{name}]")
            for k, v in scalars.items():
                lines.append(f"# {k} is not set" if v is None else f"{k} = {json.dumps(v)}")
        for k, v in tables.items():
            table(f"{name}.{_toml_key(k)}", v)

    for section, node in doc.items():
        if node is None:
            lines.append(f"\n# [{section}] is not configured")
        else:
            table(section, node)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
