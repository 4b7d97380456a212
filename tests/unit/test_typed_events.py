"""Typed domain events (issue 29): one frozen dataclass per event type, whose webhook body
is byte for byte what the gateway sent before (`event_bodies.golden.txt`, written by the
string-typed events these replaced), whose generated JSON Schema every body satisfies and
the OpenAPI document's `webhooks` use, and whose fields are exactly those WEBHOOKS.md
documents."""

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema_rs
import pytest

from gateway.domain import events as ev
from gateway.domain.accounts import Account
from gateway.domain.billing import BillingState, Extension
from gateway.domain.credit import Conversion, CreditEntry, CreditKind
from gateway.domain.invoices import Invoice, InvoiceTerms, LockedRate, ObservedPayment
from gateway.domain.money import Fiat
from gateway.domain.states import AccountState
from gateway.http.openapi import document, webhook_schemas

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("event_bodies.golden.txt")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def invoice(metadata: dict[str, object] | None = None) -> Invoice:
    return Invoice("inv_1", "acc_1", "LTC", Fiat(999, "EUR"), LockedRate("80.5", "kraken", T0),
                   InvoiceTerms(1_000_000, 8, 2, T0 + timedelta(minutes=15),
                                T0 + timedelta(hours=24)),
                   T0, metadata={"order": "o-1", "quantity": 2} if metadata is None
                   else metadata)


def pay(amount: int, conf: int, minute: float = 1, reverted: bool = False,
        **lock: object) -> ObservedPayment:
    return ObservedPayment("a", 0, amount, conf, T0 + timedelta(minutes=minute), reverted,
                           **lock)  # type: ignore[arg-type]


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def invoice_events() -> list[ev.DomainEvent]:
    i = invoice()
    i.created()
    i.payment_received(pay(600_000, 0))
    i.payment_received(pay(400_000, 3, locked=True, lock_height=120, lock_time=None))
    i.payment_received(pay(400_000, 3, locked=True, lock_height=None,
                           lock_time=T0 + timedelta(hours=2)))
    i.observe([pay(1_200_000, 0)], T0 + timedelta(minutes=2))  # processing, paid over
    i.observe([pay(1_200_000, 0, reverted=True)], T0 + timedelta(minutes=3))
    i.observe([pay(300_000, 0)], T0 + timedelta(minutes=20))  # expired, paid partially
    i.observe([pay(1_000_000, 2, minute=5)], T0 + timedelta(minutes=30))  # settles
    i.observe([pay(1_000_000, 0, minute=5, reverted=True)], T0 + timedelta(minutes=40))
    j = invoice(metadata={})
    j.observe([pay(1_000_000, 0)], T0 + timedelta(minutes=2))
    j.observe([pay(1_000_000, 0)], T0 + timedelta(hours=25))  # invalid
    k = invoice()
    k.withdraw(T0 + timedelta(minutes=1))
    return i.events + j.events + k.events


def account_events() -> list[ev.DomainEvent]:
    a = Account("acc_1", T0, datacenter="nl-ams", currency="EUR")
    a.created()
    a.activate("inv_1", {"order": "o-1"}, T0)
    a.schedule_deletion(T0, timedelta(days=7))
    a.cancel_deletion()
    b = Account("acc_2", T0, datacenter=None)
    b.credit("inv_2", "basic", "LTC", Extension(T0, days(31), 1, T0), {"x": 1}, T0)
    b.credit("inv_3", "basic", "LTC", Extension(days(31), days(59), 1, T0), {}, T0)
    b.expiring("inv_4", {"amount": "9.99", "currency": "EUR"})
    b.advance(days(60), timedelta(days=3))
    b.advance(days(70), timedelta(days=3))
    b.credit("inv_5", "pro", "XMR", Extension(days(70), days(100), 1, days(70)), {}, days(70))
    b.credit(None, "pro", "XMR", Extension(days(100), days(130), 1, days(70)), {}, days(71),
             via="credit")
    b.credited(CreditEntry("acc_2", CreditKind.LATE, 350, "EUR", "payment:LTC:a:0", days(72),
                           invoice_id="inv_5", conversion=Conversion(
                               "LTC", "a", 0, 4_375_000, 8, "80", "kraken")), 1350)
    b.credited(CreditEntry("acc_2", CreditKind.SPEND_RETURNED, 200, "EUR", "unspend:inv_6",
                           days(72), invoice_id="inv_6"), -50)
    b.credited(CreditEntry("acc_2", CreditKind.VOUCHER, 1000, "EUR", "voucher:vou_1",
                           days(72)), 950)
    b.take_back("inv_5", 1, days(80), days(75))
    b.take_back("inv_3", 2, days(20), days(75))
    b.erase(days(90))
    c = Account("acc_3", T0)
    c.paid_until, c.billing_state = T0, BillingState.ACTIVE
    c.advance(days(1), timedelta(hours=1))
    return a.events + b.events + c.events


def refund_events() -> list[ev.DomainEvent]:
    from gateway.domain.refunds import Quote, Refund

    r = Refund.request(id="rfd_1", account_id="acc_1", amount=1250, currency="EUR",
                       coin="LTC", address="ltc1qsecret", now=T0, approvals_needed=2)
    r.approve("stf_1", "checked", T0)
    r.approve("stf_2", "ok", T0, Quote(15_527_950, "80.5", "litecoin:ltc1qsecret?amount=0.1552795"))
    r.mark_sent("ab" * 32, T0)
    r.complete(T0)
    s = Refund.request(id="rfd_2", account_id="acc_1", amount=500, currency="EUR",
                       coin="XMR", address="4secret", now=T0)
    s.refuse("stf_1", "not paid by this account", T0)
    t = Refund.request(id="rfd_3", account_id="acc_1", amount=500, currency="EUR",
                       coin="XMR", address="4secret", now=T0)
    t.cancel(T0)
    return r.events + s.events + t.events


def bodies() -> list[str]:
    return [ev.webhook_body(e, NOW)
            for e in invoice_events() + account_events() + refund_events()]


def test_no_refund_event_carries_the_address() -> None:
    assert not any("secret" in ev.webhook_body(e, NOW) for e in refund_events())


def test_bodies_are_byte_for_byte_those_of_the_string_typed_events() -> None:
    assert bodies() == GOLDEN.read_text().splitlines()


def test_the_scenario_covers_every_event_type() -> None:
    assert {json.loads(b)["type"] for b in bodies()} == set(ev.EVENT_TYPES)


def test_one_frozen_class_per_event_type_with_its_wire_type() -> None:
    assert list(ev.EVENT_CLASSES) == list(ev.EventType)
    assert ev.EVENT_TYPES[0] == "account.created"  # the wire strings, in their old order
    for type_, cls in ev.EVENT_CLASSES.items():
        assert cls.TYPE is type_ and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert "account_id" in {f.name for f in dataclasses.fields(cls)}
    event = ev.AccountCreated("acc_1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.account_id = "acc_2"  # type: ignore[misc]


def test_every_body_satisfies_the_schema_generated_for_its_type() -> None:
    for body in bodies():
        doc = json.loads(body)
        schema = ev.event_schema(ev.EVENT_CLASSES[ev.EventType(doc["type"])])
        jsonschema_rs.validate(schema, doc)


def test_the_schema_refuses_a_missing_an_unknown_or_a_mistyped_field() -> None:
    schema = ev.event_schema(ev.AccountDeletionScheduled)
    good = json.loads(ev.webhook_body(ev.AccountDeletionScheduled("acc_1", T0), NOW))
    jsonschema_rs.validate(schema, good)
    for bad_data in ({"account_id": "acc_1"},
                     {**good["data"], "email": "a@example.org"},
                     {**good["data"], "deletion_due_at": 3}):
        with pytest.raises(jsonschema_rs.ValidationError):
            jsonschema_rs.validate(schema, {**good, "data": bad_data})
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(schema, {**good, "type": "account.deleted"})


def test_a_plan_is_named_only_by_a_plan_activation() -> None:
    plain = ev.AccountActivated("acc_1", "inv_1", None, {})
    assert set(plain.data) == {"account_id", "invoice_id", "datacenter", "metadata", "via"}
    assert plain.data["via"] == "invoice"
    schema = ev.object_schema(ev.AccountActivated)
    assert schema["required"] == ["account_id", "invoice_id", "datacenter", "metadata",
                                  "via"]
    assert schema["properties"]["reactivated"] == {"type": "boolean"}
    assert schema["properties"]["datacenter"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]}


def test_states_in_payloads_are_their_enums() -> None:
    props = ev.object_schema(ev.InvoiceSettled)["properties"]
    assert props["status"]["enum"] == ["new", "processing", "settled", "expired", "invalid"]
    assert props["exception"]["anyOf"][0]["enum"][-1] == "reverted_after_settlement"
    revoked = ev.object_schema(ev.AccountTimeRevoked)["properties"]["billing_state"]
    assert revoked["anyOf"][0]["enum"] == ["active", "grace", "suspended"]


def test_the_openapi_webhooks_are_the_generated_schemas() -> None:
    doc = document()
    assert list(doc["webhooks"]) == list(ev.EVENT_TYPES)
    for (name, schema), type_ in zip(webhook_schemas().items(), ev.EVENT_TYPES, strict=True):
        post = doc["webhooks"][type_]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"
        assert doc["components"]["schemas"][name] == schema
        assert schema["properties"]["type"] == {"const": type_}
        assert {p["name"] for p in post["parameters"]} == {
            "webhook-id", "webhook-timestamp", "webhook-signature"}


# -- WEBHOOKS.md ------------------------------------------------------------------------
def _names(text: str) -> set[str]:
    """Backticked field names; `a` {`b`, `c`} names a.b and a.c too."""
    found: set[str] = set()
    stack: list[str] = []
    last = ""
    for match in re.finditer(r"`([a-z_]+)`|[{}]", text):
        if match.group(0) == "{":
            stack.append(last)
        elif match.group(0) == "}":
            stack.pop()
        else:
            last = (stack[-1] + "." if stack else "") + match.group(1)
            found.add(last)
    return found


def documented() -> dict[str, set[str]]:
    """Per event type, the fields WEBHOOKS.md's "Event types" table gives its `data`."""
    text = (ROOT / "WEBHOOKS.md").read_text()
    table = text.split("## Event types", 1)[1].split("\n## ", 1)[0]
    summary = re.search(r"The invoice summary: (.*?)\.\n\n", text, re.S)
    assert summary is not None, "WEBHOOKS.md lost its invoice summary paragraph"
    found: dict[str, set[str]] = {}
    for line in table.splitlines():
        row = re.match(r"\| `([a-z_.]+)` \| .* \| (.*) \|$", line)
        if row is None:
            continue
        data = row.group(2)
        found[row.group(1)] = _names(data) | (
            _names(summary.group(1)) if "summary" in data else set())
    return found


def test_webhooks_md_documents_every_field_of_every_event_and_no_other() -> None:
    docs = documented()
    assert sorted(docs) == sorted(ev.EVENT_TYPES), "one table row per event type"
    for type_, cls in ev.EVENT_CLASSES.items():
        code = ev.field_paths(cls)
        assert docs[type_] == code, (
            f"{type_}: documented, not in {cls.__name__}: {sorted(docs[type_] - code)}; "
            f"in {cls.__name__}, not documented: {sorted(code - docs[type_])}")


def test_the_documentation_reader_sees_nesting() -> None:
    assert _names("`a`, `b` {`c`, `d` {`e`}}, `f`") == {"a", "b", "b.c", "b.d", "b.d.e", "f"}


# -- states -----------------------------------------------------------------------------
def test_an_accounts_state_follows_its_life() -> None:
    account = Account("acc_1", T0)
    assert account.state is AccountState.PENDING_ACTIVATION
    account.activate("inv_1", {}, T0)
    assert account.state is AccountState.ACTIVE
    account.schedule_deletion(T0, timedelta(days=7))
    assert account.state is AccountState.DELETION_SCHEDULED
    account.erase(days(8))
    assert account.state is AccountState.DELETED


def test_a_delivery_status_follows_its_attempts_outcome() -> None:
    from webhooks.retry import Outcome
    from webhooks.store import DeliveryStatus

    later = T0 + timedelta(seconds=5)
    assert DeliveryStatus.after(Outcome.SUCCEEDED, None) is DeliveryStatus.SUCCEEDED
    assert DeliveryStatus.after(Outcome.DISABLE, None) is DeliveryStatus.DISABLED
    assert DeliveryStatus.after(Outcome.RETRY, later) is DeliveryStatus.PENDING
    assert DeliveryStatus.after(Outcome.RETRY, None) is DeliveryStatus.FAILED
    # The strings the deliveries table has always held (no migration).
    assert [s.value for s in DeliveryStatus] == ["pending", "succeeded", "failed", "disabled"]


def test_the_api_models_spell_the_states_as_the_enums_do() -> None:
    """The response models keep `Literal`s (their OpenAPI schema is a plain enum): each
    lists exactly its enum's values."""
    from typing import Literal, get_args, get_origin

    from gateway.domain.payments import PaymentStatus
    from gateway.domain.states import InvoiceException, Status
    from gateway.http import schemas_out as out
    from webhooks.store import DeliveryStatus

    def values(model: type, name: str) -> list[str]:
        annotation = model.model_fields[name].annotation  # type: ignore[attr-defined]
        if get_origin(annotation) is not Literal:  # Literal[...] | None
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        return list(get_args(annotation))

    assert values(out.Invoice, "status") == [s.value for s in Status]
    assert values(out.Invoice, "exception") == [e.value for e in InvoiceException]
    assert values(out.Account, "billing_state") == [b.value for b in BillingState]
    assert values(out.Payment, "status") == [p.value for p in PaymentStatus]
    assert values(out.NextInvoice, "status") == [s.value for s in Status]
    assert values(out.LedgerPayment, "status") == [p.value for p in PaymentStatus]
    assert values(out.Delivery, "status") == [d.value for d in DeliveryStatus]
