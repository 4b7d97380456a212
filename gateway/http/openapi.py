"""The OpenAPI 3.1 description of the JSON API, generated from the models that validate
requests (`schemas`) and describe responses (`schemas_out`), made as precise as the
validation: the enums come from the configuration (`vocabulary`), ids, amounts, cursors and
times carry the patterns the server checks, and each operation lists every error it can
answer. The portal's HTML pages and forms are not part of it (`PAGES`; see the README). A
test keeps the document plus `PAGES` and the router equal."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gateway.domain import events as ev
from gateway.domain.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from gateway.domain.invoice_metadata import KEYS as METADATA_KEYS
from gateway.domain.invoice_metadata import VALUE_CHARS
from gateway.domain.invoices import Status
from gateway.domain.money import FIAT_EXPONENTS
from gateway.http import schemas as req
from gateway.http import schemas_out as out
from gateway.http.ids import id_pattern
from gateway.http.vocabulary import Vocabulary

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query | header
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from this operation's success response to another operation."""

    name: str
    operation_id: str
    parameters: dict[str, str]
    description: str = ""


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    auth: str  # none | key:<scope> | session | key-or-session | cookie
    body: type[BaseModel] | None = None
    ok: int = 200
    response: type[BaseModel] | str | None = None  # model, or a media type for non-JSON
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = field(default_factory=tuple)
    alt_media: tuple[str, ...] = ()  # other representations of the success response
    also_ok: tuple[int, ...] = ()  # other success statuses with the same response
    # ... or with one of these instead (POST /v1/me/invoices: the account, when credit
    # paid the whole period and there is no invoice)
    also_ok_models: tuple[type[BaseModel], ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def operation_id(self) -> str:
        return operation_id(self.method, self.path)


def operation_id(method: str, path: str) -> str:
    return (f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", "")
            .replace("-", "_").replace(".", "_"))


NO_NUL = "^[^\\u0000]*$"  # PostgreSQL cannot store NUL: the server refuses it everywhere
TEXT: dict[str, Any] = {"type": "string", "pattern": NO_NUL}


def _id(name: str, prefix: str | None) -> Param:
    """An id in the path. Any id of the right form may be asked for (404 when unknown)."""
    if prefix is None:  # a transaction hash: hex, 0x-hex or a chain's own form
        schema = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL}
    else:
        schema = {"type": "string", "pattern": id_pattern(prefix)}
    return Param(name, "path", schema, required=True)


def _cursor(prefix: str) -> Param:
    return Param("cursor", "query", {"type": "string", "pattern": id_pattern(prefix)},
                 description="id of the last item seen (next_cursor of the last page)")


def _limit(maximum: int, default: int) -> Param:
    return Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": maximum,
                                    "default": default})


IDEM = Param("Idempotency-Key", "header",
             {"type": "string", "minLength": 1, "maxLength": 255,
              "pattern": "^[\\u0020-\\u007e\\u00a1-\\u00ac\\u00ae-\\u00ff]+$"},
             description="same key + same body replays the first result (printable text)")
FORMAT = Param("format", "query", {"type": "string", "enum": ["json", "csv"],
                                   "default": "json"},
               description="csv: a zip of one CSV file per table")
REASON = Param("X-Access-Reason", "header",
               {"type": "string", "pattern": req.REASON_PATTERN}, required=True,
               description="why the data is read, 10 to 200 characters once runs of "
                           "spaces are collapsed to one (the staff console's rule; without "
                           "it the answer is a 400 and nothing is read); kept in the "
                           "access audit log, which the customer sees in their export "
                           "with the key's name")
TIME_PATTERN = ("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?"
                "(Z|[+-][0-9]{2}:[0-9]{2})$")
TIME = {"type": "string", "format": "date-time", "pattern": TIME_PATTERN}
# One server-sent event of an invoice's stream: `event: status`, the status as JSON data.
SSE_EVENT = {"type": "object", "required": ["event", "data"],
             "properties": {"event": {"const": "status"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "description": "status, exception, status_text, "
                                                    "confirmations, confirmations_required, "
                                                    "confirmations_text, final"}}}
BODY = (413, 422)
# Every operation: a NUL in the URL, or a malformed request line or header, is a 400.
ALWAYS = (400, 405)

INVOICE_ID = _id("invoice_id", "inv_")
GET_INVOICE = operation_id("get", "/v1/invoices/{invoice_id}")
INVOICE_EVENTS = operation_id("get", "/v1/invoices/{invoice_id}/events")
INVOICE_LINKS = (
    Link("GetInvoice", GET_INVOICE, {"invoice_id": "$response.body#/id"},
         "the invoice just created"),
    Link("FollowInvoice", INVOICE_EVENTS, {"invoice_id": "$response.body#/id"},
         "its status as server-sent events"),
)
ENDPOINT_LINKS = (
    Link("RotateSecret", operation_id("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
         {"endpoint_id": "$response.body#/id"}),
    Link("DeleteEndpoint", operation_id("delete", "/v1/webhook-endpoints/{endpoint_id}"),
         {"endpoint_id": "$response.body#/id"}),
)
EVENT_LINKS = (
    Link("GetEvent", operation_id("get", "/v1/events/{event_id}"),
         {"event_id": "$response.body#/data/0/id"}, "the first event of the page"),
    Link("RedeliverEvent", operation_id("post", "/v1/events/{event_id}/redeliver"),
         {"event_id": "$response.body#/data/0/id"}),
)
KEY = (401, 403)  # no or unknown key; a key without the scope
SESSION_WRITE = (401, 403)  # no session; the session cookie's cross-site rule

OPERATIONS: tuple[Op, ...] = (
    Op("post", "/v1/accounts", "Sign up with an email and a password", "customer", "none",
       req.SignupBody, 201, out.Account, (*BODY, 409, 429, 503),
       links=(Link("ReadAccount", operation_id("get", "/v1/accounts/{account_id}"),
                   {"account_id": "$response.body#/id"}, "with a personal_data:read key"),)),
    Op("post", "/v1/email-verifications/confirm", "Confirm an email address", "customer",
       "none", req.TokenBody, 204, None, (*BODY, 401)),
    Op("post", "/v1/sessions", "Log in", "customer", "none", req.SessionBody, 201, out.Session,
       (*BODY, 401, 429, 503)),
    Op("delete", "/v1/sessions/current", "Log out", "customer", "session", None, 204, None,
       SESSION_WRITE),
    Op("get", "/v1/me", "Your account", "customer", "session", None, 200, out.Account, (401,)),
    Op("patch", "/v1/me", "Correct your profile (202: a new email waits for its link)",
       "customer", "session", req.ProfileBody, 200, out.Account,
       (*BODY, *SESSION_WRITE, 409, 429, 503), also_ok=(202,)),
    Op("post", "/v1/email-changes/confirm", "Confirm a new email address (mailed link)",
       "customer", "none", req.TokenBody, 204, None, (*BODY, 401, 409)),
    Op("post", "/v1/email-changes/undo", "Undo an email change (link mailed to the old "
       "address; a 2FA code when 2FA is on)", "customer", "none", req.EmailUndoBody, 204,
       None, (*BODY, 401, 409, 429)),
    Op("post", "/v1/me/password", "Change your password", "customer", "session",
       req.PasswordChangeBody, 204, None, (*BODY, *SESSION_WRITE, 409, 429, 503)),
    Op("post", "/v1/me/totp", "Start two-factor setup", "customer", "session",
       req.TotpBeginBody, 201, out.TotpEnrolment, (*BODY, *SESSION_WRITE, 409, 429, 503)),
    Op("post", "/v1/me/totp/confirm", "Turn two-factor on", "customer", "session",
       req.CodeBody, 200, out.RecoveryCodes, (*BODY, *SESSION_WRITE, 409, 429, 503)),
    Op("delete", "/v1/me/totp", "Turn two-factor off", "customer", "session",
       req.TotpDisableBody, 204, None, (*BODY, *SESSION_WRITE, 409, 429, 503)),
    Op("get", "/v1/me/invoices", "Your invoices", "customer", "session", None, 200,
       out.InvoicePage, (401, 422), (_cursor("inv_"),),
       links=(Link("FollowFirstInvoice", INVOICE_EVENTS,
                   {"invoice_id": "$response.body#/data/0/id"}),)),
    Op("get", "/v1/me/credit", "Your credit: the balance and its entries, newest first",
       "customer", "session", None, 200, out.CreditPage, (401, 422),
       (Param("before", "query", {"type": "integer", "minimum": 1,
                                  "maximum": 10**18 - 1},  # what the server reads
              description="next_cursor of the last page"), _limit(500, 100))),
    Op("post", "/v1/me/invoices", "Buy a plan: credit first (200: your open invoice for it, "
       "again; or, when your credit pays it all, your account, no invoice)",
       "customer", "session", req.PlanInvoiceBody, 201, out.Invoice,
       (*BODY, *SESSION_WRITE, 409, 429, 503), (IDEM,), also_ok=(200,),
       links=INVOICE_LINKS[1:], also_ok_models=(out.Account,)),
    Op("post", "/v1/password-resets", "Ask for a password reset link", "customer", "none",
       req.ResetRequestBody, 202, out.Accepted, (*BODY, 429, 503)),
    Op("post", "/v1/password-resets/confirm", "Set a new password with a reset link",
       "customer", "none", req.ResetConfirmBody, 204, None, (*BODY, 401, 409, 429, 503)),
    Op("post", "/v1/invoices", "Create an invoice", "service", "key:invoices:write",
       req.InvoiceBody, 201, out.Invoice, (*BODY, *KEY, 409, 503), (IDEM,),
       links=INVOICE_LINKS),
    Op("get", "/v1/invoices", "List invoices", "service", "key:invoices:read", None, 200,
       out.InvoicePage, (*KEY, 422),
       (Param("account_id", "query", {"type": "string", "pattern": id_pattern("acc_")},
              description="only this account's invoices"),
        Param("status", "query", {"type": "string", "enum": [s.value for s in Status]}),
        _cursor("inv_"), _limit(200, 50)),
       links=(Link("GetFirstInvoice", GET_INVOICE,
                   {"invoice_id": "$response.body#/data/0/id"}),)),
    Op("get", "/v1/invoices/{invoice_id}", "Read an invoice", "service", "key:invoices:read",
       None, 200, out.Invoice, (*KEY, 404), (INVOICE_ID,)),
    Op("get", "/v1/invoices/{invoice_id}/events", "Follow an invoice (server-sent events)",
       "service", "key-or-session", None, 200, "text/event-stream",
       (*KEY, 404, 429, 503), (INVOICE_ID,)),
    Op("delete", "/v1/me", "Ask for your account to be deleted", "customer", "session",
       req.DeletionBody, 202, out.DeletionScheduled,
       (*BODY, *SESSION_WRITE, 404, 409, 429, 503)),
    Op("post", "/v1/me/refunds", "Ask for credit back to an address of yours (your password, "
       "and a 2FA code when 2FA is on)", "customer", "session", req.RefundBody, 201,
       out.Refund, (*BODY, *SESSION_WRITE, 404, 409, 429, 503)),
    Op("get", "/v1/me/refunds", "Your refunds, newest first", "customer", "session", None,
       200, out.RefundList, (401,)),
    Op("post", "/v1/me/refunds/{refund_id}/cancel", "Cancel a refund while it is pending",
       "customer", "session", None, 200, out.Refund, (*SESSION_WRITE, 404, 409, 422),
       params=(_id("refund_id", "rfd_"),)),
    Op("post", "/v1/me/vouchers", "Redeem a voucher code: its value goes to your credit (a "
       "plan voucher then buys its periods)", "customer", "session", req.VoucherBody, 200,
       out.VoucherRedeemed, (*BODY, *SESSION_WRITE, 404, 429)),
    Op("post", "/v1/me/cash-tokens", "A one-time token to pay by cash in an envelope (it "
       "replaces an open one; docs/cash.md)", "customer", "session", None, 201,
       out.CashToken, (*SESSION_WRITE, 404, 409)),
    Op("delete", "/v1/me/deletion", "Cancel a scheduled deletion", "customer", "session",
       None, 204, None, (*SESSION_WRITE, 409)),
    Op("get", "/v1/me/export", "Everything held about you", "customer", "session", None, 200,
       "application/json", (401, 422), (FORMAT,), alt_media=("application/zip",)),
    Op("get", "/v1/me/optional-processing", "Whether you object to optional processing",
       "customer", "session", None, 200, out.OptionalProcessing, (401, 404)),
    Op("put", "/v1/me/optional-processing",
       "Object to optional processing (notices beyond those the law requires), or withdraw",
       "customer", "session", req.ObjectionBody, 200, out.OptionalProcessing,
       (*BODY, *SESSION_WRITE, 404)),
    Op("post", "/v1/me/policy-acknowledgement", "Acknowledge the current privacy policy",
       "customer", "session", None, 204, None, (*SESSION_WRITE, 404)),
    Op("get", "/v1/accounts/{account_id}", "Read an account's personal data (audited)",
       "service", "key:personal_data:read", None, 200, out.Account, (*KEY, 404),
       (_id("account_id", "acc_"), REASON)),
    Op("get", "/v1/accounts/{account_id}/export", "Export an account's data (audited)",
       "service", "key:personal_data:read", None, 200, "application/json",
       (*KEY, 404, 422), (_id("account_id", "acc_"), FORMAT, REASON),
       alt_media=("application/zip",)),
    Op("get", "/v1/payments", "Payments for finance", "finance", "key:payments:read", None,
       200, out.PaymentPage, (*KEY, 422),
       (Param("from", "query", TIME, description="seen at or after (RFC 3339)"),
        Param("to", "query", TIME, description="seen before (RFC 3339), after from"),
        Param("coin", "query", {"type": "string"}),  # the enum is set per configuration
        Param("format", "query", {"type": "string", "enum": ["json", "csv"],
                                  "default": "json"},
              description="csv: text/csv with a header row; the next cursor is in "
                          "the X-Next-Cursor header"),
        Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,18}$"},
              description="next_cursor of the last page"),
        _limit(1000, 100)),
       alt_media=("text/csv",)),
    Op("get", "/v1/payments/{txid}", "Payments of one transaction", "finance",
       "key:payments:read", None, 200, out.PaymentList, (*KEY, 404), (_id("txid", None),)),
    Op("post", "/v1/webhook-endpoints", "Register a webhook endpoint", "webhooks",
       "key:webhooks:manage", req.EndpointBody, 201, out.Endpoint, (*BODY, *KEY),
       links=ENDPOINT_LINKS),
    Op("get", "/v1/webhook-endpoints", "List webhook endpoints", "webhooks",
       "key:webhooks:manage", None, 200, out.EndpointList, KEY),
    Op("delete", "/v1/webhook-endpoints/{endpoint_id}", "Delete a webhook endpoint",
       "webhooks", "key:webhooks:manage", None, 204, None, (*KEY, 404),
       (_id("endpoint_id", "whe_"),)),
    Op("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "Rotate its secret",
       "webhooks", "key:webhooks:manage", None, 200, out.Rotated, (*KEY, 404),
       (_id("endpoint_id", "whe_"),)),
    Op("get", "/v1/events", "List events", "webhooks", "key:events:read", None, 200,
       out.EventPage, (*KEY, 422),
       (Param("type", "query", {"type": "string"}),  # the enum is set per configuration
        _cursor("evt_"), _limit(200, 50)), links=EVENT_LINKS),
    Op("get", "/v1/events/{event_id}", "Read an event with its deliveries", "webhooks",
       "key:events:read", None, 200, out.Event, (*KEY, 404), (_id("event_id", "evt_"),)),
    Op("post", "/v1/events/{event_id}/redeliver", "Deliver an event again", "webhooks",
       "key:webhooks:manage", None, 202, out.Queued, (*KEY, 404),
       (_id("event_id", "evt_"),)),
    # /readyz and /metrics are served on the operations listener only ([server]
    # metrics_listen), not here.
    Op("get", "/healthz", "Liveness", "operations", "none", None, 200, out.Health),
    Op("get", "/v1/openapi.json", "This document", "operations", "none", None, 200,
       "application/json"),
)

# The portal: HTML pages and the form posts behind them (answered with pages or 303
# redirects, for browsers). They are not part of the API document; README lists them.
PAGES: tuple[tuple[str, str], ...] = (
    ("get", "/pay/{invoice_id}"), ("get", "/pay/{invoice_id}/events"),
    ("get", "/signup"), ("post", "/signup"), ("get", "/verify-email"),
    ("post", "/verify-email"),
    ("get", "/login"), ("post", "/login"), ("get", "/forgot"), ("post", "/forgot"),
    ("get", "/reset"), ("post", "/reset"), ("get", "/account"), ("post", "/account/buy"),
    ("post", "/account/renewal"), ("post", "/account/pay-again"),
    ("post", "/account/profile"), ("post", "/account/totp"),
    ("post", "/account/totp/confirm"), ("post", "/account/totp/disable"),
    ("get", "/email-change"), ("post", "/email-change"), ("get", "/email-change/undo"),
    ("post", "/email-change/undo"), ("post", "/account/policy"), ("post", "/account/delete"),
    ("post", "/account/deletion/cancel"), ("post", "/account/optional-processing"),
    ("post", "/logout"), ("post", "/account/refunds"),
    ("post", "/account/refunds/{refund_id}/cancel"), ("post", "/account/vouchers"),
    ("get", "/account/cash"), ("post", "/account/cash"), ("get", "/lang"),
)

STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content",
               400: "Malformed request (a body that is not a JSON object, a NUL character "
                    "anywhere, a malformed header)",
               401: "Not authenticated", 403: "Forbidden", 404: "Not found",
               405: "Method not allowed", 409: "Conflict", 413: "Body larger than 1 MiB",
               422: "Invalid input (`errors` names the fields)",
               429: "Too many requests (see Retry-After)",
               503: "Unavailable (see Retry-After)"}


def _enum(values: tuple[str, ...] | None) -> dict[str, Any]:
    if values is None:  # not configured here (the generic document): any string
        return {"type": "string"}
    if not values:  # none configured (no plans, say): whatever is sent is refused
        return {"type": "string", "not": {}, "description": "none is configured here"}
    return {"type": "string", "enum": list(values)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


def _text(max_length: int | None = None, min_length: int = 0) -> dict[str, Any]:
    schema = dict(TEXT)
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


# What `normalize_email` accepts (surrounding blanks are trimmed), less NUL, which the
# server refuses in any text before the email is looked at.
EMAIL = {"type": "string", "maxLength": 254,
         "pattern": "^\\s*[^@\\s\\u0000]{1,64}@[^@\\s\\u0000]+\\.[^@\\s\\u0000]{2,}\\s*$",
         "description": "an email address (one @, a dot in the domain, no spaces)"}
PASSWORD = {"type": "string", "minLength": MIN_PASSWORD_LENGTH,
            "maxLength": MAX_PASSWORD_LENGTH, "pattern": NO_NUL}
SECRET = _text(min_length=1)  # a password or code checked against what is stored


def _amount(exponent: int) -> dict[str, Any]:
    """A positive decimal string with at most `exponent` decimals (`req.AMOUNT_PATTERN`,
    narrowed to the currency)."""
    whole = f"(0|[1-9][0-9]{{0,{14 - exponent}}})"  # below 10^15 minor units
    if exponent == 0:
        return {"type": "string", "pattern": "^[1-9][0-9]{0,14}$"}
    return {"type": "string", "pattern": f"^{whole}(\\.[0-9]{{1,{exponent}}})?$",
            "not": {"pattern": "^0(\\.0*)?$"}}


def _price(currencies: tuple[str, ...]) -> dict[str, Any]:
    """The amount's decimals depend on the currency: one branch per number of decimals."""
    by_exponent: dict[int, list[str]] = {}
    for code in currencies:
        by_exponent.setdefault(FIAT_EXPONENTS[code], []).append(code)
    branches = [{"type": "object", "additionalProperties": False,
                 "required": ["amount", "currency"],
                 "properties": {"amount": {**_amount(exp),
                                           "description": 'decimal string, e.g. "9.99"'},
                                "currency": _enum(tuple(codes))}}
                for exp, codes in sorted(by_exponent.items())]
    if len(branches) == 1:
        return {**branches[0], "title": "PriceBody"}
    return {"title": "PriceBody", "oneOf": branches}


def _metadata() -> dict[str, Any]:
    """What the server accepts in an invoice's `metadata`: only the documented,
    non-personal keys (`gateway.domain.invoice_metadata`), each an identifier or, for
    `quantity`, a small integer."""
    token = {"type": "string", "pattern": f"^{VALUE_CHARS}$"}
    return {"type": "object", "additionalProperties": False,
            "properties": {key: ({"type": "integer", "minimum": 0, "maximum": 1_000_000,
                                  "description": text} if key == "quantity"
                                 else {**token, "description": text})
                           for key, text in METADATA_KEYS.items()},
            "description": "kept with the invoice and sent in its events; only these "
                           "keys, never personal data (docs/privacy.md)"}


def _fields(vocab: Vocabulary) -> dict[str, dict[str, dict[str, Any]]]:
    """Per request model, the schema of each field, as the server checks it."""
    dcs, currencies = _enum(vocab.datacenters), _enum(vocab.account_currencies)
    text200 = _nullable(_text(200))
    code = _nullable(_text())
    return {
        "SignupBody": {"email": EMAIL, "password": PASSWORD, "display_name": text200,
                       "company": text200, "datacenter": _nullable(dcs),
                       "currency": _nullable(currencies)},
        "SessionBody": {"email": _text(), "password": _text(), "totp_code": code},
        "TokenBody": {"token": _text()},
        "EmailUndoBody": {"token": _text(), "totp_code": code},
        "ResetRequestBody": {"email": _text()},
        "ResetConfirmBody": {"token": _text(), "new_password": PASSWORD, "totp_code": code},
        "CodeBody": {"code": _text()},
        "TotpBeginBody": {"current_password": SECRET},
        "TotpDisableBody": {"current_password": SECRET, "code": _text()},
        "DeletionBody": {"password": SECRET, "totp_code": code},
        "PasswordChangeBody": {"current_password": SECRET, "new_password": PASSWORD},
        "ProfileBody": {"email": EMAIL, "display_name": text200, "company": text200,
                        "datacenter": _nullable(dcs), "currency": _nullable(currencies),
                        "current_password": code, "totp_code": code},
        "InvoiceBody": {"account_id": {"type": "string", "pattern": id_pattern("acc_")},
                        "price": _price(vocab.price_currencies),
                        "coin": _enum(vocab.coins),
                        "metadata": _nullable(_metadata())},
        "PlanInvoiceBody": {"plan": _enum(vocab.plans), "coin": _enum(vocab.coins)},
        "RefundBody": {"amount": {**_text(), "description": 'in the account\'s currency, '
                                                            'a decimal string: "12.50"'},
                       "currency": _nullable(currencies), "coin": _enum(vocab.coins),
                       "address": _text(200, 1), "current_password": SECRET,
                       "totp_code": code},
        "EndpointBody": {"url": {"type": "string", "format": "uri", "maxLength": 2048,
                                 "pattern": "^https?://[^\\u0000]+$",
                                 "description": "where events are posted; its host must "
                                                "be allowed by [webhooks] (see WEBHOOKS.md)"},
                         "event_types": {"type": "array", "items": _enum(vocab.event_types),
                                         "default": [],
                                         "description": "none: every type"},
                         "description": {**_text(500), "default": ""}},
    }


def _description(vocab: Vocabulary) -> str:
    said = ("Privacy-first cryptocurrency payment and signup gateway. Errors are RFC 9457 "
            "problem documents. The enums (coins, currencies, plans, datacenters, event "
            "types) are those of this gateway's configuration")
    said_webhooks = " `webhooks` describes what the gateway posts to registered endpoints."
    if vocab.coins is None:  # `gateway openapi` without a configuration
        return (said + "; this generic document leaves open those a configuration decides."
                + said_webhooks)
    return said + "." + said_webhooks


class _Components:
    """The document's `components.schemas`, filled as operations refer to models."""

    def __init__(self, fields: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.fields = fields
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            self.schemas[name] = sub
        for name, precise in self.fields.get(model.__name__, {}).items():
            described = schema["properties"][name]
            schema["properties"][name] = {
                **precise, "title": described.get("title", name),
                **({"description": described["description"]}
                   if "description" in described else {})}
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _success(op: Op, components: _Components) -> dict[str, Any]:
    """The success response's description and content."""
    text = STATUS_TEXT[op.ok]
    if isinstance(op.response, type):
        return {"description": text,
                "content": {"application/json": {"schema": components.ref(op.response)}}}
    if op.response == "text/event-stream":
        # Each event's data is the invoice's status document.
        return {"description": text + ": one event per status change; each event's data "
                "is a JSON document",
                "content": {op.response: {"schema": {"anyOf": [{"type": "string"},
                                                               SSE_EVENT]}}}}
    if isinstance(op.response, str):
        kind = "object" if op.response == "application/json" else "string"
        return {"description": text, "content": {op.response: {"schema": {"type": kind}}}}
    return {"description": text}


def _responses(op: Op, components: _Components, problem: dict[str, Any]) -> dict[str, Any]:
    ok = _success(op, components)
    for media in op.alt_media:
        ok["content"][media] = {"schema": {"type": "string"}}
    if op.links:
        ok["links"] = {
            link.name: {"operationId": link.operation_id, "parameters": link.parameters,
                        **({"description": link.description} if link.description else {})}
            for link in op.links}
    responses: dict[str, Any] = {str(op.ok): ok}
    for code in op.also_ok:
        responses[str(code)] = {**ok, "description": STATUS_TEXT[code]}
        if op.also_ok_models and isinstance(op.response, type):
            schemas = [components.ref(m) for m in (op.response, *op.also_ok_models)]
            responses[str(code)] = {**responses[str(code)], "content": {
                "application/json": {"schema": {"anyOf": schemas}}}}
    for code in sorted(set(op.errors) | set(ALWAYS)):
        responses[str(code)] = {"description": STATUS_TEXT[code], "content": problem}
    return responses


def _security(op: Op) -> dict[str, Any]:
    """`security` and, where it needs saying, a `description` of what it takes."""
    if op.auth.startswith("key"):
        scope = op.auth.partition(":")[2]
        both = op.auth == "key-or-session"
        found: dict[str, Any] = {"security": [{"apiKey": []}] + (
            [{"session": []}, {"sessionCookie": []}] if both else [])}
        if scope:
            found["description"] = f"API key with scope `{scope}`."
        elif both:
            found["description"] = ("An API key with scope `invoices:read`, or the "
                                    "session of the invoice's own customer.")
        return found
    if op.auth != "session":
        return {}
    found = {"security": [{"session": []}, {"sessionCookie": []}]}
    if op.method != "get":
        found["description"] = (
            "With the session cookie (not a bearer token) this needs "
            "`Content-Type: application/json` and this site's own `Origin`; otherwise 403.")
    return found


def _parameter(p: Param, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": p.name, "in": p.where, "required": p.required, "schema": schema,
            **({"description": p.description} if p.description else {})}


def _operation(op: Op, components: _Components, problem: dict[str, Any],
               enums: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": op.summary, "tags": [op.tag], "operationId": op.operation_id,
        "responses": _responses(op, components, problem),
    }
    if op.params:
        operation["parameters"] = [_parameter(p, enums.get((op.path, p.name), p.schema))
                                   for p in op.params]
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(op.body)}}}
    operation.update(_security(op))
    return operation


# What every delivery carries besides its body (Standard Webhooks; WEBHOOKS.md).
WEBHOOK_HEADERS = (
    Param("webhook-id", "header", {"type": "string", "pattern": id_pattern("evt_")}, True,
          "the event's id, the same on every attempt: deduplicate on it"),
    Param("webhook-timestamp", "header", {"type": "string", "pattern": "^[0-9]{1,12}$"},
          True, "Unix seconds; reject one more than 5 minutes off"),
    Param("webhook-signature", "header", {"type": "string", "pattern": "^v1,"}, True,
          "v1,<base64 HMAC-SHA256(secret, \"{id}.{timestamp}.{body}\")>; two, "
          "space-separated, while a secret rotates"),
)


def webhook_schemas() -> dict[str, dict[str, Any]]:
    """The body of each event type, generated from its domain event class, by the name
    it has in `components.schemas`."""
    return {f"{cls.__name__}Event": ev.event_schema(cls) for cls in ev.EVENT_CLASSES.values()}


def _webhooks(schemas: dict[str, Any]) -> dict[str, Any]:
    hooks: dict[str, Any] = {}
    for (name, schema), cls in zip(webhook_schemas().items(), ev.EVENT_CLASSES.values(),
                                   strict=True):
        schemas[name] = schema
        hooks[cls.TYPE.value] = {"post": {
            "summary": f"{cls.TYPE.value}: {schema['description']}",
            "tags": ["webhooks"],
            "operationId": "webhook_" + cls.TYPE.value.replace(".", "_"),
            "parameters": [_parameter(p, p.schema) for p in WEBHOOK_HEADERS],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{name}"}}}},
            "responses": {
                "2XX": {"description": "delivered (the body of the answer is ignored)"},
                "410": {"description": "disables the endpoint: nothing more is sent"},
                "default": {"description": "retried (WEBHOOKS.md, Retries)"}},
        }}
    return hooks


SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "service API key, gk_..."},
    "session": {"type": "http", "scheme": "bearer",
                "description": "a customer's session token (POST /v1/sessions)"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-session"},
}


def document(prefix: str = "", vocab: Vocabulary | None = None) -> dict[str, Any]:
    vocab = vocab or Vocabulary()
    components = _Components(_fields(vocab))
    problem = {PROBLEM: {"schema": components.ref(out.Problem)}}
    enums = {("/v1/payments", "coin"): _enum(vocab.coins),
             ("/v1/events", "type"): _enum(vocab.event_types)}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, components, problem, enums)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Packetra gateway", "version": "1",
                 "description": _description(vocab)},
        "servers": [{"url": prefix or "/"}],
        "paths": paths,
        "webhooks": _webhooks(components.schemas),
        "components": {"schemas": components.schemas, "securitySchemes": SECURITY_SCHEMES},
    }
