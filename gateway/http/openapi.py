"""The OpenAPI 3.1 description, generated from the models that validate requests
(`schemas`) and describe responses (`schemas_out`). A test keeps it and the router equal."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gateway.http import schemas as req
from gateway.http import schemas_out as out

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query | header
    schema: dict[str, Any]
    required: bool = False
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
    form: bool = False
    alt_media: tuple[str, ...] = ()  # other representations of the success response
    also_ok: tuple[int, ...] = ()  # other success statuses with the same response


def _id(name: str) -> Param:
    return Param(name, "path", {"type": "string", "maxLength": 200}, required=True)


CURSOR = Param("cursor", "query", {"type": "string"}, description="id of the last item seen")
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200})
IDEM = Param("Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255},
             description="same key + same body replays the first result")
AUTH = (401,)
FORMAT = Param("format", "query", {"type": "string", "enum": ["json", "csv"]},
               description="csv: a zip of one CSV file per table")
REASON = Param("X-Access-Reason", "header", {"type": "string", "maxLength": 200},
               description="why the data is read; kept in the access audit log")
TIME = {"type": "string", "format": "date-time"}
BODY = (400, 413, 422)

OPERATIONS: tuple[Op, ...] = (
    Op("post", "/v1/accounts", "Sign up with an email and a password", "customer", "none",
       req.SignupBody, 201, out.Account, (*BODY, 409, 429, 503)),
    Op("post", "/v1/email-verifications/confirm", "Confirm an email address", "customer",
       "none", req.TokenBody, 204, None, (*BODY, 401)),
    Op("post", "/v1/sessions", "Log in", "customer", "none", req.SessionBody, 201, out.Session,
       (*BODY, *AUTH, 403, 429, 503)),
    Op("delete", "/v1/sessions/current", "Log out", "customer", "session", None, 204, None,
       AUTH),
    Op("get", "/v1/me", "Your account", "customer", "session", None, 200, out.Account, AUTH),
    Op("patch", "/v1/me", "Correct your profile (202: a new email waits for its link)",
       "customer", "session", req.ProfileBody, 200, out.Account, BODY + AUTH + (429,),
       also_ok=(202,)),
    Op("post", "/v1/email-changes/confirm", "Confirm a new email address (mailed link)",
       "customer", "none", req.TokenBody, 204, None, (*BODY, 401, 409)),
    Op("post", "/v1/email-changes/undo", "Undo an email change (link mailed to the old "
       "address; a 2FA code when 2FA is on)", "customer", "none", req.EmailUndoBody, 204,
       None, (*BODY, 401, 409, 429)),
    Op("post", "/v1/me/password", "Change your password", "customer", "session",
       req.PasswordChangeBody, 204, None, BODY + AUTH + (429, 503)),
    Op("post", "/v1/me/totp", "Start two-factor setup", "customer", "session",
       req.TotpBeginBody, 201, out.TotpEnrolment, BODY + AUTH + (409, 429, 503)),
    Op("post", "/v1/me/totp/confirm", "Turn two-factor on", "customer", "session",
       req.CodeBody, 200, out.RecoveryCodes, BODY + AUTH + (409, 503)),
    Op("delete", "/v1/me/totp", "Turn two-factor off", "customer", "session",
       req.TotpDisableBody, 204, None, BODY + AUTH + (409, 429, 503)),
    Op("get", "/v1/me/invoices", "Your invoices", "customer", "session", None, 200,
       out.InvoicePage, (*AUTH, 400), (CURSOR,)),
    Op("post", "/v1/me/invoices", "Buy a plan (200: your open invoice for it, again)",
       "customer", "session", req.PlanInvoiceBody, 201, out.Invoice,
       BODY + AUTH + (409, 429, 503), (IDEM,), also_ok=(200,)),
    Op("post", "/v1/password-resets", "Ask for a password reset link", "customer", "none",
       req.ResetRequestBody, 202, out.Accepted, (*BODY, 429, 503)),
    Op("post", "/v1/password-resets/confirm", "Set a new password with a reset link",
       "customer", "none", req.ResetConfirmBody, 204, None, BODY + AUTH + (429, 503)),
    Op("post", "/v1/invoices", "Create an invoice", "service", "key:invoices:write",
       req.InvoiceBody, 201, out.Invoice, BODY + AUTH + (403, 409, 503), (IDEM,)),
    Op("get", "/v1/invoices", "List invoices", "service", "key:invoices:read", None, 200,
       out.InvoicePage, (*AUTH, 400, 403, 422),
       (Param("account_id", "query", {"type": "string"}),
        Param("status", "query", {"type": "string",
                                  "enum": ["new", "processing", "settled", "expired",
                                           "invalid"]}), CURSOR, LIMIT)),
    Op("get", "/v1/invoices/{invoice_id}", "Read an invoice", "service", "key:invoices:read",
       None, 200, out.Invoice, (*AUTH, 403, 404), (_id("invoice_id"),)),
    Op("get", "/v1/invoices/{invoice_id}/events", "Follow an invoice (server-sent events)",
       "service", "key-or-session", None, 200, "text/event-stream",
       (*AUTH, 403, 404, 429, 503),
       (_id("invoice_id"),)),
    Op("delete", "/v1/me", "Ask for your account to be deleted", "customer", "session",
       req.DeletionBody, 202, out.DeletionScheduled, BODY + AUTH + (404, 429, 503)),
    Op("delete", "/v1/me/deletion", "Cancel a scheduled deletion", "customer", "session",
       None, 204, None, (*AUTH, 409)),
    Op("get", "/v1/me/export", "Everything held about you", "customer", "session", None, 200,
       "application/json", (*AUTH, 400, 422), (FORMAT,), alt_media=("application/zip",)),
    Op("get", "/v1/me/optional-processing", "Whether you object to optional processing",
       "customer", "session", None, 200, out.OptionalProcessing, (*AUTH, 404)),
    Op("put", "/v1/me/optional-processing",
       "Object to optional processing (notices beyond those the law requires), or withdraw",
       "customer", "session", req.ObjectionBody, 200, out.OptionalProcessing,
       (*BODY, *AUTH, 404)),
    Op("post", "/v1/me/policy-acknowledgement", "Acknowledge the current privacy policy",
       "customer", "session", None, 204, None, (*AUTH, 404)),
    Op("get", "/v1/accounts/{account_id}", "Read an account's personal data (audited)",
       "service", "key:personal_data:read", None, 200, out.Account, (*AUTH, 400, 403, 404),
       (_id("account_id"), REASON)),
    Op("get", "/v1/accounts/{account_id}/export", "Export an account's data (audited)",
       "service", "key:personal_data:read", None, 200, "application/json",
       (*AUTH, 400, 403, 404, 422), (_id("account_id"), FORMAT, REASON),
       alt_media=("application/zip",)),
    Op("get", "/v1/payments", "Payments for finance", "finance", "key:payments:read", None,
       200, out.PaymentPage, (*AUTH, 400, 403, 422),
       (Param("from", "query", TIME, description="seen at or after"),
        Param("to", "query", TIME, description="seen before"),
        Param("coin", "query", {"type": "string"}),
        Param("format", "query", {"type": "string", "enum": ["json", "csv"]},
              description="csv: text/csv with a header row; the next cursor is in "
                          "the X-Next-Cursor header"),
        Param("cursor", "query", {"type": "string"}, description="next_cursor of the last page"),
        Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})),
       alt_media=("text/csv",)),
    Op("get", "/v1/payments/{txid}", "Payments of one transaction", "finance",
       "key:payments:read", None, 200, out.PaymentList, (*AUTH, 400, 403, 404),
       (_id("txid"),)),
    Op("post", "/v1/webhook-endpoints", "Register a webhook endpoint", "webhooks",
       "key:webhooks:manage", req.EndpointBody, 201, out.Endpoint, BODY + AUTH + (403,)),
    Op("get", "/v1/webhook-endpoints", "List webhook endpoints", "webhooks",
       "key:webhooks:manage", None, 200, out.EndpointList, (*AUTH, 403)),
    Op("delete", "/v1/webhook-endpoints/{endpoint_id}", "Delete a webhook endpoint",
       "webhooks", "key:webhooks:manage", None, 204, None, (*AUTH, 403, 404),
       (_id("endpoint_id"),)),
    Op("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "Rotate its secret",
       "webhooks", "key:webhooks:manage", None, 200, out.Rotated, (*AUTH, 403, 404),
       (_id("endpoint_id"),)),
    Op("get", "/v1/events", "List events", "webhooks", "key:events:read", None, 200,
       out.EventPage, (*AUTH, 400, 403, 422),
       (Param("type", "query", {"type": "string"}), CURSOR, LIMIT)),
    Op("get", "/v1/events/{event_id}", "Read an event with its deliveries", "webhooks",
       "key:events:read", None, 200, out.Event, (*AUTH, 403, 404), (_id("event_id"),)),
    Op("post", "/v1/events/{event_id}/redeliver", "Deliver an event again", "webhooks",
       "key:webhooks:manage", None, 202, out.Queued, (*AUTH, 403, 404), (_id("event_id"),)),
    # /readyz and /metrics are served on the operations listener only ([server]
    # metrics_listen), not here.
    Op("get", "/healthz", "Liveness", "operations", "none", None, 200, out.Health),
    Op("get", "/v1/openapi.json", "This document", "operations", "none", None, 200,
       "application/json"),
    Op("get", "/pay/{invoice_id}", "Checkout page", "pages", "none", None, 200, "text/html",
       (404,), (_id("invoice_id"),)),
    Op("get", "/pay/{invoice_id}/events", "Checkout status (server-sent events)", "pages",
       "none", None, 200, "text/event-stream", (404, 429, 503), (_id("invoice_id"),)),
    Op("get", "/signup", "Signup page", "pages", "none", None, 200, "text/html"),
    Op("post", "/signup", "Signup form", "pages", "none", None, 303, "text/html",
       (201, 403, 422, 429, 503), form=True),
    Op("get", "/verify-email", "Email confirmation link", "pages", "none", None, 200,
       "text/html", (400,), (Param("token", "query", {"type": "string"}),)),
    Op("get", "/login", "Login page", "pages", "none", None, 200, "text/html"),
    Op("post", "/login", "Login form", "pages", "none", None, 303, "text/html",
       (401, 403, 429, 503), form=True),
    Op("get", "/forgot", "Forgotten-password page", "pages", "none", None, 200, "text/html"),
    Op("post", "/forgot", "Forgotten-password form (the same answer for any address)",
       "pages", "none", None, 202, "text/html", (403, 429, 503), form=True),
    Op("get", "/reset", "Password-reset link", "pages", "none", None, 200, "text/html",
       (400,), (Param("token", "query", {"type": "string"}),)),
    Op("post", "/reset", "Password-reset form", "pages", "none", None, 303, "text/html",
       (400, 403, 422, 429, 503), form=True),
    Op("get", "/account", "Account page", "pages", "cookie", None, 200, "text/html", (303,)),
    Op("post", "/account/buy", "Buy a plan (form): leads to the checkout page", "pages",
       "cookie", None, 303, "text/html", (403, 422, 429, 503), form=True),
    Op("post", "/account/pay-again", "Pay an expired invoice again (form)", "pages",
       "cookie", None, 303, "text/html", (403, 422, 429, 503), form=True),
    Op("post", "/account/profile", "Profile form", "pages", "cookie", None, 303, "text/html",
       (200, 403, 422, 429), form=True),
    Op("post", "/account/totp", "Two-factor setup form", "pages", "cookie", None, 200,
       "text/html", (303, 403, 409, 422, 429), form=True),
    Op("post", "/account/totp/confirm", "Two-factor confirmation form", "pages", "cookie",
       None, 200, "text/html", (303, 403, 422), form=True),
    Op("post", "/account/totp/disable", "Two-factor off form", "pages", "cookie", None, 303,
       "text/html", (403, 422, 429), form=True),
    Op("get", "/email-change", "Email change confirmation link", "pages", "none", None, 200,
       "text/html", (400,), (Param("token", "query", {"type": "string"}),)),
    Op("post", "/email-change", "Email change confirmation form", "pages", "none", None, 200,
       "text/html", (403,), form=True),
    Op("get", "/email-change/undo", "Email change undo link", "pages", "none", None, 200,
       "text/html", (400,), (Param("token", "query", {"type": "string"}),)),
    Op("post", "/email-change/undo", "Email change undo form", "pages", "none", None, 200,
       "text/html", (403,), form=True),
    Op("post", "/account/policy", "Privacy policy acknowledgement form", "pages", "cookie",
       None, 303, "text/html", (403,), form=True),
    Op("post", "/account/delete", "Account deletion form", "pages", "cookie", None, 303,
       "text/html", (403, 422, 429), form=True),
    Op("post", "/account/deletion/cancel", "Cancel deletion form", "pages", "cookie", None,
       303, "text/html", (403,), form=True),
    Op("post", "/account/optional-processing", "Object to optional processing (form)",
       "pages", "cookie", None, 303, "text/html", (403,), form=True),
    Op("post", "/logout", "Log out (form)", "pages", "cookie", None, 303, "text/html", (403,),
       form=True),
)

STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content",
               303: "See other", 400: "Malformed request", 401: "Not authenticated",
               403: "Forbidden", 404: "Not found", 405: "Method not allowed",
               409: "Conflict", 413: "Body larger than 1 MiB", 422: "Invalid input",
               429: "Too many requests (see Retry-After)", 503: "Unavailable"}


def document(prefix: str = "") -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    problem = {PROBLEM: {"schema": ref(out.Problem)}}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        if op.ok == 303:
            responses["303"] = {"description": STATUS_TEXT[303]}  # redirect, no body
        elif isinstance(op.response, type):
            responses[str(op.ok)] = {"description": STATUS_TEXT[op.ok],
                                     "content": {"application/json": {"schema": ref(op.response)}}}
        elif op.response == "text/event-stream":
            # Each event's data is a JSON status document; the stream itself has no schema.
            responses[str(op.ok)] = {"description": STATUS_TEXT[op.ok],
                                     "content": {op.response: {}}}
        elif isinstance(op.response, str):
            kind = "object" if op.response == "application/json" else "string"
            responses[str(op.ok)] = {"description": STATUS_TEXT[op.ok],
                                     "content": {op.response: {"schema": {"type": kind}}}}
        else:
            responses[str(op.ok)] = {"description": STATUS_TEXT[op.ok]}
        for media in op.alt_media:
            responses[str(op.ok)]["content"][media] = {"schema": {"type": "string"}}
        for code in op.also_ok:
            responses[str(code)] = {**responses[str(op.ok)], "description": STATUS_TEXT[code]}
        extra = {413} if op.body or op.form else set()
        if op.auth == "session" and op.method != "get":
            extra |= {403}  # the cookie's cross-site rule (csrf.cookie_request)
        if op.form:
            extra |= {400}
        for code in sorted(set(op.errors) | {405} | extra):
            if code == 303:
                responses["303"] = {"description": STATUS_TEXT[303]}
                continue
            content = problem
            if op.response == "text/html":
                # Pages answer in HTML; the framework's own refusals are problem documents.
                content = {"text/html": {"schema": {"type": "string"}},
                           "text/plain": {"schema": {"type": "string"}}, **problem}
            responses[str(code)] = {"description": STATUS_TEXT[code], "content": content}
        operation: dict[str, Any] = {
            "summary": op.summary, "tags": [op.tag],
            "operationId": f"{op.method}_{op.path}".replace("/", "_").replace("{", "")
            .replace("}", "").replace("-", "_").replace(".", "_"),
            "responses": responses,
        }
        if op.params:
            operation["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema,
                 **({"description": p.description} if p.description else {})}
                for p in op.params]
        if op.body is not None:
            operation["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": ref(op.body)}}}
        if op.form:
            operation["requestBody"] = {"content": {"application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}
        if op.auth.startswith("key"):
            scope = op.auth.partition(":")[2]
            operation["security"] = [{"apiKey": []}] + (
                [{"session": []}] if op.auth == "key-or-session" else [])
            if scope:
                operation["description"] = f"API key with scope `{scope}`."
        elif op.auth == "session":
            operation["security"] = [{"session": []}, {"sessionCookie": []}]
            if op.method != "get":
                operation["description"] = (
                    "With the session cookie (not a bearer token) this needs "
                    "`Content-Type: application/json` and this site's own `Origin`; "
                    "otherwise 403.")
        elif op.auth == "cookie":
            operation["security"] = [{"sessionCookie": []}]
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Packetra gateway", "version": "1",
                 "description": "Privacy-first cryptocurrency payment and signup gateway. "
                                "Errors are RFC 9457 problem documents."},
        "servers": [{"url": prefix or "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "service API key, gk_..."},
                "session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-session"},
            },
        },
    }
