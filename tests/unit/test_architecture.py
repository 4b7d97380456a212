"""The layering of ARCHITECTURE.md, enforced: a test fails when an import crosses it."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


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


def test_services_do_not_depend_on_adapters_or_http() -> None:
    for path in modules("gateway/services"):
        for name in imports(path):
            assert not name.startswith(("gateway.adapters", "gateway.http", "gateway.bootstrap",
                                        "sqlalchemy", "aiohttp")), f"{path}: {name}"


def test_only_bootstrap_builds_concrete_adapters() -> None:
    allowed = {"bootstrap.py", "cli.py", "demo.py", "env.py"}
    for path in modules("gateway"):
        rel = path.relative_to(ROOT / "gateway")
        # Migrations use the column types; they build nothing.
        # The command-line modules are entry points, like cli.py.
        if (rel.parts[0] in ("adapters", "migrations") or path.name in allowed
                or path.name.startswith("cli_")):
            continue
        for name in imports(path):
            assert not name.startswith("gateway.adapters"), f"{rel} imports {name}"
            assert not name.startswith(("chains.utxo", "chains.jsonrpc")), f"{rel}: {name}"


def test_only_auth_lets_the_session_cookie_authenticate_json_routes() -> None:
    # auth.session_token applies the cross-site rule (JSON, same Origin) to every
    # cookie-authenticated state change; the portal reads the cookie for its forms, which
    # session_form checks against their CSRF token. No other module may read it.
    for path in modules("gateway"):
        if "cookies.get(SESSION_COOKIE" in path.read_text():
            assert path.name in ("auth.py", "routes_portal.py"), path
