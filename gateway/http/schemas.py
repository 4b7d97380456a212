"""Request bodies. Unknown fields are refused so a typo never passes silently."""

import json
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from gateway.domain.invoice_metadata import metadata_problem
from gateway.http.problems import ClientDisconnected
from gateway.services.privacy import REASON_MAX, REASON_MIN, collapse_reason

# An access reason (`X-Access-Reason`) follows the one rule of gateway/services/privacy.py
# (REASON_MIN to REASON_MAX characters, its spaces collapsed as `str.split()` collapses
# them). The space class is spelled out (exactly what `str.split()` splits on)
# because `\s` differs between Python and JSON Schema's ECMA dialect (\x1c-\x1f and \x85
# against \ufeff); a run of spaces counts once, as one collapsed space, which the lookahead
# makes it do (a run before a non-space is taken whole), so the server and the OpenAPI
# document refuse exactly the same headers.
_SPACES = (r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
           r"\u205f\u3000")
_SPACE, _TEXT = f"[{_SPACES}]", f"[^{_SPACES}]"
REASON_PATTERN = (f"^{_SPACE}*{_TEXT}(?:{_TEXT}|{_SPACE}+(?={_TEXT}))"
                  f"{{{REASON_MIN - 1},{REASON_MAX - 1}}}{_SPACE}*$")


def access_reason(raw: str) -> str | None:
    """The reason as it is kept (spaces collapsed), or None when the header breaks the
    rule of REASON_PATTERN."""
    if re.fullmatch(REASON_PATTERN, raw) is None:
        return None
    return collapse_reason(raw)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignupBody(Body):
    email: StrictStr
    password: StrictStr
    display_name: StrictStr | None = None
    company: StrictStr | None = None
    datacenter: StrictStr | None = None
    currency: StrictStr | None = None


class SessionBody(Body):
    email: StrictStr
    password: StrictStr
    totp_code: StrictStr | None = None


class TokenBody(Body):
    token: StrictStr


class EmailUndoBody(Body):
    token: StrictStr
    totp_code: StrictStr | None = None  # required when two-factor authentication is on


class ResetRequestBody(Body):
    email: StrictStr


class ResetConfirmBody(Body):
    token: StrictStr
    new_password: StrictStr
    totp_code: StrictStr | None = None


class CodeBody(Body):
    code: StrictStr


class TotpBeginBody(Body):
    current_password: StrictStr


class TotpDisableBody(Body):
    current_password: StrictStr
    code: StrictStr = Field(description="a code of the authenticator, or a recovery code")


class DeletionBody(Body):
    password: StrictStr
    totp_code: StrictStr | None = None


class ObjectionBody(Body):
    objected: StrictBool  # 0, 1 or "true" are refused, as the document says


class PasswordChangeBody(Body):
    current_password: StrictStr
    new_password: StrictStr


class RefundBody(Body):
    """Credit back to an address of yours (docs/refunds.md): the amount in the account's
    currency (a decimal string, "12.50"), the coin and the address to pay; your password,
    and a code when two-factor is on."""

    amount: StrictStr
    currency: StrictStr | None = None
    coin: StrictStr
    address: StrictStr
    current_password: StrictStr
    totp_code: StrictStr | None = None


class VoucherBody(Body):
    """A voucher code as printed (docs/vouchers.md): 20 characters in 4 groups of 5; case,
    spaces and dashes do not matter."""

    code: StrictStr = Field(max_length=100)


class ProfileBody(Body):
    """Every field optional; only those present change. null clears an optional field.
    A new email needs `current_password` (and `totp_code` when two-factor is on) and is
    applied only when the link mailed to it is opened (202); the rest applies at once."""

    email: StrictStr | None = None
    display_name: StrictStr | None = None
    company: StrictStr | None = None
    datacenter: StrictStr | None = None
    currency: StrictStr | None = None
    current_password: StrictStr | None = Field(
        None, description="required when the email changes")
    totp_code: StrictStr | None = Field(
        None, description="required when the email changes and two-factor is on")

    @field_validator("email")
    @classmethod
    def _email_not_null(cls, v: str | None) -> str | None:
        if v is None:
            raise ValueError("cannot be removed; an account needs an email")
        return v


class PriceBody(Body):
    amount: StrictStr = Field(description='decimal string, e.g. "9.99"')
    currency: StrictStr


class InvoiceBody(Body):
    account_id: StrictStr
    price: PriceBody
    coin: StrictStr
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _small(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and len(json.dumps(v)) > 4096:
            raise ValueError("must serialize to at most 4 KiB")
        problem = metadata_problem(v) if v is not None else None
        if problem is not None:
            raise ValueError(problem)
        return v


class PlanInvoiceBody(Body):
    plan: StrictStr
    coin: StrictStr


class EndpointBody(Body):
    url: StrictStr
    event_types: list[StrictStr] = []
    description: StrictStr = ""


MAX_DEPTH = 32  # no request body of ours nests deeper; metadata included


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except ConnectionResetError:
        raise ClientDisconnected from None
    if not raw:
        raise web.HTTPBadRequest(text="request body is empty; a JSON object is required")
    if too_deep(raw, MAX_DEPTH):
        raise web.HTTPBadRequest(
            text=f"request body nests too deeply (at most {MAX_DEPTH} levels)")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise web.HTTPBadRequest(
            text=f"request body nests too deeply (at most {MAX_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="request body must be a JSON object")
    problem = _check(data)
    if problem is not None:
        raise web.HTTPBadRequest(text=problem)
    return data


# A JSON string (skipped whole: brackets inside it do not nest) or a bracket.
_NESTING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether the document nests deeper than `limit`, found before parsing it: the parser
    recurses once per level in C and is only as safe as the interpreter's recursion
    limit, which a library may have raised (py_ecc does) past what the stack holds."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # every body of ours: no scan
    depth = 0
    for match in _NESTING.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _check(data: Any) -> str | None:
    """Walks the document without recursion (a deep one must not exhaust the stack here
    or anywhere after): too deep, or a NUL in any text, is refused at the door. PostgreSQL
    cannot store NUL in text."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "NUL characters are not allowed in text"
            continue
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"request body nests too deeply (at most {MAX_DEPTH} levels)"
            items = (list(value.keys()) + list(value.values())
                     if isinstance(value, dict) else value)
            stack.extend((item, depth + 1) for item in items)
    return None
