"""The OpenAPI document describes exactly the routes the application serves."""

import json
import subprocess
import sys

from gateway.http.app import create_app
from gateway.http.keys import HttpServices
from gateway.http.openapi import OPERATIONS, document


def routes() -> set[tuple[str, str]]:
    async def ready() -> tuple[bool, dict[str, object]]:
        return True, {}

    services = HttpServices(*([None] * 9), readiness=ready)  # type: ignore[arg-type]
    app = create_app(services)
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if route.method in ("HEAD", "*") or path is None or path.startswith("/static"):
            continue
        found.add((route.method.lower(), path))
    return found


def test_document_and_router_list_the_same_routes() -> None:
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert documented == routes()


def test_document_is_valid_openapi_31() -> None:
    from openapi_spec_validator import validate

    doc = document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    body = doc["paths"]["/v1/invoices"]["post"]["requestBody"]["content"]["application/json"]
    schema = doc["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False  # unknown fields are refused
    assert set(schema["required"]) == {"account_id", "price", "coin"}


def test_cli_prints_the_same_document() -> None:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "openapi"],
                            capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout) == document()
