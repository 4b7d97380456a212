"""The OpenAPI document describes exactly the routes the application serves (the portal's
pages apart), with the enums of the configuration it is made for."""

import json
import os
from pathlib import Path

import pytest

from gateway.config import load
from gateway.http.app import create_app
from gateway.http.keys import Areas, OpsArea
from gateway.http.openapi import OPERATIONS, PAGES, document
from gateway.http.vocabulary import Vocabulary, vocabulary
from tests.support.cli import run_gateway
from tests.support.keys import random_xpub, security_env

pytestmark = pytest.mark.unit

VOCAB = Vocabulary(coins=("ETH", "LTC"), price_currencies=("EUR", "JPY"),
                   account_currencies=("EUR", "USD"), datacenters=("nl-ams",),
                   plans=("vps-small",))


def routes() -> set[tuple[str, str]]:
    async def ready() -> tuple[bool, dict[str, object]]:
        return True, {}

    areas = Areas(accounts=None, billing=None, webhooks=None,  # type: ignore[arg-type]
                  privacy=None, ops=OpsArea(readiness=ready))
    app = create_app(areas)
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if route.method in ("HEAD", "*") or path is None or path.startswith("/static"):
            continue
        found.add((route.method.lower(), path))
    return found


def test_document_and_pages_list_the_same_routes_as_the_router() -> None:
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert not documented & set(PAGES)
    assert documented | set(PAGES) == routes()
    paths = document(vocab=VOCAB)["paths"]
    assert not any(p.startswith(("/account", "/login", "/signup", "/logout", "/pay/"))
                   for p in paths)  # HTML pages and forms are not API operations


def test_document_is_valid_openapi_31() -> None:
    from openapi_spec_validator import validate

    doc = document(vocab=VOCAB)
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    body = doc["paths"]["/v1/invoices"]["post"]["requestBody"]["content"]["application/json"]
    schema = doc["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False  # unknown fields are refused
    assert set(schema["required"]) == {"account_id", "price", "coin"}


def test_enums_come_from_the_vocabulary() -> None:
    doc = document(vocab=VOCAB)
    schemas = doc["components"]["schemas"]
    invoice = schemas["InvoiceBody"]["properties"]
    assert invoice["coin"]["enum"] == ["ETH", "LTC"]
    # JPY has no decimals, EUR two: one branch each.
    branches = {tuple(b["properties"]["currency"]["enum"]): b["properties"]["amount"]["pattern"]
                for b in invoice["price"]["oneOf"]}
    assert branches == {("EUR",): "^(0|[1-9][0-9]{0,12})(\\.[0-9]{1,2})?$",
                        ("JPY",): "^[1-9][0-9]{0,14}$"}
    assert schemas["PlanInvoiceBody"]["properties"]["plan"]["enum"] == ["vps-small"]
    signup = schemas["SignupBody"]["properties"]
    assert signup["datacenter"]["anyOf"][0]["enum"] == ["nl-ams"]
    assert signup["currency"]["anyOf"][0]["enum"] == ["EUR", "USD"]
    assert signup["password"]["minLength"] == 10
    types = schemas["EndpointBody"]["properties"]["event_types"]["items"]["enum"]
    assert "invoice.settled" in types
    events = doc["paths"]["/v1/events"]["get"]["parameters"]
    assert next(p for p in events if p["name"] == "type")["schema"]["enum"] == types


def test_every_operation_lists_its_errors_as_problem_documents() -> None:
    doc = document(vocab=VOCAB)
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for code in ("400", "405"):
                assert code in op["responses"], (method, path, code)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"]
            if "security" in op:
                assert "401" in op["responses"], (method, path)
            if "requestBody" in op:
                assert {"413", "422"} <= set(op["responses"]), (method, path)


def test_links_lead_from_an_id_to_the_operations_behind_it() -> None:
    doc = document(vocab=VOCAB)
    ids = {op["operationId"] for methods in doc["paths"].values() for op in methods.values()}
    created = doc["paths"]["/v1/invoices"]["post"]["responses"]["201"]["links"]
    assert created["GetInvoice"] == {"operationId": "get__v1_invoices_invoice_id",
                                     "parameters": {"invoice_id": "$response.body#/id"},
                                     "description": "the invoice just created"}
    assert created["FollowInvoice"]["operationId"] == "get__v1_invoices_invoice_id_events"
    endpoint = doc["paths"]["/v1/webhook-endpoints"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in endpoint.values()} == {
        "post__v1_webhook_endpoints_endpoint_id_rotate_secret",
        "delete__v1_webhook_endpoints_endpoint_id"}
    events = doc["paths"]["/v1/events"]["get"]["responses"]["200"]["links"]
    assert events["RedeliverEvent"]["parameters"] == {"event_id": "$response.body#/data/0/id"}
    for methods in doc["paths"].values():
        for op in methods.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in ids


def test_cli_prints_the_document_of_the_given_configuration(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/gw.db"
[accounts]
datacenters = ["is-rey"]
currencies = ["CHF"]
[coins.LTC]
kind = "utxo"
network = "litecoin-regtest"
rpc_url = "http://127.0.0.1:1"
xpub = "{random_xpub()}"
[rates]
fixed = {{ LTC-CHF = "70.00" }}
[plans.vps-small]
price = "8.00"
currency = "CHF"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = run_gateway(["openapi", "--config", str(config)], {**env, **security_env()})
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == document(vocab=vocabulary(load(config, security_env())))
    invoice = printed["components"]["schemas"]["InvoiceBody"]["properties"]
    assert invoice["coin"]["enum"] == ["LTC"]
    assert invoice["price"]["properties"]["currency"]["enum"] == ["CHF"]
    signup = printed["components"]["schemas"]["SignupBody"]["properties"]
    assert signup["datacenter"]["anyOf"][0]["enum"] == ["is-rey"]
    plan = printed["components"]["schemas"]["PlanInvoiceBody"]["properties"]["plan"]
    assert plan["enum"] == ["vps-small"]


def test_the_email_pattern_refuses_nul_as_the_server_does() -> None:
    """The server refuses NUL in any text (400): a schema that allows it makes valid
    requests of what is refused (schemathesis found a NUL in an email)."""
    import re

    pattern = re.compile(document(vocab=VOCAB)["components"]["schemas"]["SignupBody"]
                         ["properties"]["email"]["pattern"])
    assert pattern.match(" someone@example.org ")
    for bad in ("some\x00one@example.org", "someone@exa\x00mple.org", "someone@example.o\x00g"):
        assert not pattern.match(bad), repr(bad)


def test_the_access_reason_schema_is_the_staff_consoles_rule() -> None:
    """Review of issue 28: the API took a one-character X-Access-Reason where staff must
    type at least 10. The header's schema and the server now refuse exactly the same
    values, by the console's rule (10 to 200 characters, spaces collapsed): checked with
    the JSON Schema validator schemathesis uses (ECMA regexes) and with the server's own
    check, on chosen edges and on random strings of spaces and letters."""
    import random

    import jsonschema_rs

    from gateway.http.schemas import access_reason
    from gateway.staff.looks import reason_error

    (param,) = [p for p in document(vocab=VOCAB)["paths"]["/v1/accounts/{account_id}"]
                ["get"]["parameters"] if p["name"] == "X-Access-Reason"]
    schema = jsonschema_rs.validator_for(param["schema"])

    def staff_rule(value: str) -> bool:
        return reason_error(" ".join(value.split())) is None

    spaces = " \t\x0b\x1c\x85\xa0\u2003\u3000"
    chosen = ["", " ", "x", "ticket 42", "ticket 421", "ticket  42", " ticket 42 ",
              "t i c k e t", "t  i  c  k  e", "a\u2003b\u3000c\x1cd\x85e", "\ufeff" * 10,
              "x" * 200, "x" * 201, "x " * 100, "x " * 100 + "y", "x" + " " * 300 + "y" * 8,
              " " * 50 + "x" * 200 + "\t" * 50, "x" * 199 + "  y"]
    rng = random.Random(28)
    fuzzed = ["".join(rng.choice(spaces + "ab\ufeff") for _ in range(rng.randint(0, 260)))
              for _ in range(3000)]
    for value in chosen + fuzzed:
        expected = staff_rule(value)
        assert schema.is_valid(value) is expected, repr(value)
        assert (access_reason(value) is not None) is expected, repr(value)
    assert access_reason(" ticket\t\t 42 ") is None  # "ticket 42": 9
    assert access_reason(" ticket\t\t 421 ") == "ticket 421"
