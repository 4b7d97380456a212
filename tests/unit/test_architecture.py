"""The layering of the design (ARCHITECTURE.md, "Layout"; drawn in docs/architecture.md),
enforced: a test fails when an import crosses it."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, source: str | None = None) -> set[str]:
    """Every module `path` imports (its text, or `source` as if it were its text),
    relative imports resolved (`from . import x` in gateway/services/a.py is
    gateway.services and gateway.services.x)."""
    tree = ast.parse(path.read_text() if source is None else source)
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module
                base = node.module
            else:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            if node.level:
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_relative_imports_are_resolved() -> None:
    # A module that does not exist, read from text: nothing is written into gateway/.
    fake = ROOT / "gateway" / "services" / "_probe_for_test.py"
    found = imports(fake, "from . import ports\nfrom ..adapters.db import tables\n")
    assert {"gateway.services.ports", "gateway.adapters.db", "gateway.adapters.db.tables"} \
        <= found
    package = imports(ROOT / "gateway" / "services" / "__init__.py", "from . import ports\n")
    assert "gateway.services.ports" in package


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_domain_is_pure_standard_library() -> None:
    stdlib = sys.stdlib_module_names
    banned = {"asyncio", "socket", "time", "random", "secrets", "os", "subprocess", "urllib"}
    for path in modules("gateway/domain"):
        for name in imports(path):
            top = name.split(".")[0]
            assert top in stdlib or name.startswith("gateway.domain"), f"{path}: {name}"
            assert top not in banned, f"{path} imports {name}: the domain does no I/O"


def test_leaves_never_import_gateway() -> None:
    for folder in ("chains", "webhooks"):
        for path in modules(folder):
            assert not any(n.split(".")[0] == "gateway" for n in imports(path)), path


def chain_families() -> set[str]:
    """The family packages under chains/ (utxo, evm, monero): every folder with an
    `__init__.py`. A family added later is covered without editing this test."""
    return {p.parent.name for p in (ROOT / "chains").glob("*/__init__.py")}


def families_named(path: Path, source: str | None = None) -> set[str]:
    """The chain families `path` imports or names as a module path (for importlib)."""
    text = path.read_text() if source is None else source
    names = imports(path, text)
    for node in ast.walk(ast.parse(text)):
        # `from chains import evm` names the family only in its imported names.
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "chains":
            names.update(f"chains.{a.name}" for a in node.names)
    found = {n.split(".")[1] for n in names if n.startswith("chains.")}
    found |= {f for f in chain_families() if f'"chains.{f}' in text or f"'chains.{f}" in text}
    return found & chain_families()


def test_family_imports_are_found() -> None:
    # Modules that do not exist, read from text: nothing is written into chains/.
    utxo = ROOT / "chains" / "utxo" / "_probe_for_test.py"
    for source in ("from chains.evm.adapter import EvmChain\n", "import chains.monero\n",
                   "from chains import evm\n", "from ..monero import rpc\n",
                   "from .. import evm\n",
                   "import importlib\nimportlib.import_module('chains.evm.family')\n"):
        assert families_named(utxo, source) & {"evm", "monero"}, source
    assert families_named(utxo, "from chains.base import BlockRef\n"
                                "from chains.utxo.rawblock import scan_block\n"
                                "from . import notify\n") == {"utxo"}


def test_no_chain_family_imports_another() -> None:
    """A family is a plug-in: it may use chains/ top-level modules (the interface, the
    shared helpers), never another family, so one can be removed or changed alone. The
    top-level modules name no family either, or a family could reach another through
    them."""
    families = chain_families()
    assert {"utxo", "evm", "monero"} <= families
    for family in sorted(families):
        for path in modules(f"chains/{family}"):
            assert families_named(path) <= {family}, path
    for path in sorted((ROOT / "chains").glob("*.py")):
        assert not families_named(path), path


def test_services_do_not_depend_on_adapters_or_http() -> None:
    for path in modules("gateway/services"):
        for name in imports(path):
            assert not name.startswith(("gateway.adapters", "gateway.http", "gateway.bootstrap",
                                        "sqlalchemy", "aiohttp")), f"{path}: {name}"


def test_only_bootstrap_builds_concrete_adapters() -> None:
    # The composition root, the command modules that open the database for `gateway db
    # upgrade` and `gateway keys rotate-data`, the demo (which migrates its own database)
    # and Alembic's env.
    allowed = {Path("cli/db.py"), Path("cli/keys.py"),
               Path("demo/__init__.py"), Path("migrations/env.py")}
    for path in modules("gateway"):
        rel = path.relative_to(ROOT / "gateway")
        # Migrations use the column types; they build nothing. No other exemption: the
        # other command modules reach adapters through bootstrap like everyone else.
        if rel.parts[0] in ("adapters", "migrations") and rel not in allowed:
            continue
        if rel in allowed or rel.parts[0] == "bootstrap":  # the composition root
            continue
        for name in imports(path):
            assert not name.startswith("gateway.adapters"), f"{rel} imports {name}"


def assert_no_adapter_imports(folder: str) -> None:
    for path in modules(folder):
        rel = path.relative_to(ROOT)
        for name in imports(path):
            assert not name.startswith(("gateway.adapters", "gateway.bootstrap")), \
                f"{rel} imports {name}"


def test_http_never_imports_adapters() -> None:
    """Handlers get services (and what else they need) through their area's key;
    nothing under gateway/http/ reaches an adapter, even for a type or a constant."""
    assert_no_adapter_imports("gateway/http")


def test_staff_console_never_imports_adapters() -> None:
    """The staff console's pages, likewise (gateway/staff/context.py: one key per area);
    not even through the composition root."""
    assert modules("gateway/staff")
    assert_no_adapter_imports("gateway/staff")


FAMILY_PACKAGES = ("chains.utxo", "chains.evm", "chains.monero", "chains.jsonrpc",
                   "chains.networks", "chains.hd", "chains.rawblock")


def test_gateway_names_no_family_outside_the_registry() -> None:
    """Families are plug-ins: only gateway/families.py names one (as a module path);
    everything else in gateway/ knows chains.base alone, the family-neutral compact
    watched set (chains.watchset) that the database's watchlist fills, and the
    family-neutral refund contract (chains.refunds: Refundable, TxKeyCheckable)."""
    for path in modules("gateway"):
        rel = path.relative_to(ROOT / "gateway")
        text = path.read_text()
        for name in imports(path):
            if name.startswith("chains"):
                assert name in ("chains", "chains.base", "chains.watchset",
                                "chains.refunds"), \
                    f"{rel} imports {name}"
        if rel != Path("families.py"):
            for family in FAMILY_PACKAGES:
                assert f'"{family}' not in text and f"'{family}" not in text, (
                    f"{rel} names {family}")


def test_config_imports_no_chain_adapter() -> None:
    found = {n for n in imports(ROOT / "gateway" / "config.py") if n.startswith("chains")}
    assert found <= {"chains.base"}


def test_only_auth_lets_the_session_cookie_authenticate_json_routes() -> None:
    # auth.session_token applies the cross-site rule (JSON, same Origin) to every
    # cookie-authenticated state change; the portal reads the cookie for its forms, which
    # session_form checks against their CSRF token. No other module may read it.
    for path in modules("gateway"):
        if "cookies.get(SESSION_COOKIE" in path.read_text():
            assert path.name in ("auth.py", "routes_portal.py"), path
