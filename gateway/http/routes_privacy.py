"""Export, deletion, policy acknowledgement, and audited service reads of an account."""

from datetime import UTC, datetime

from aiohttp import web

from gateway.domain.errors import InvalidInput
from gateway.domain.timestamps import rfc3339
from gateway.http.auth import api_key, customer
from gateway.http.keys import PRIVACY, client_address
from gateway.http.problems import problem
from gateway.http.schemas import (
    DeletionBody,
    ObjectionBody,
    access_reason,
    read_json,
)
from gateway.http.views import account_doc
from gateway.services.errors import Conflict
from gateway.services.ports import ApiKeyRecord
from gateway.services.privacy import EXPORT_COLUMNS, REASON_MAX, REASON_MIN, Reader, Tables
from gateway.tabular import tables_json, tables_zip

routes = web.RouteTableDef()

PERSONAL_SCOPE = "personal_data:read"
REASON_HEADER = "X-Access-Reason"


def _reader(request: web.Request, key: ApiKeyRecord) -> Reader | None:
    """Who reads (the key by its name and id, never its secret) and why; None without a
    reason. Checked before anything is read, so a refused request leaves no audit entry."""
    reason = access_reason(request.headers.get(REASON_HEADER, ""))
    if reason is None:
        return None
    return Reader(f"key:{key.name[:60]} ({key.id})", reason)


def missing_reason(request: web.Request) -> web.Response:
    given = " ".join(request.headers.get(REASON_HEADER, "").split())
    message = ("is required" if not given else
               f"must be {REASON_MIN} to {REASON_MAX} characters (spaces collapsed); "
               f"{len(given)} given")
    return problem(400, f"the {REASON_HEADER} header is required: say why this account's "
                        f"personal data is read, in {REASON_MIN} to {REASON_MAX} characters "
                        "(as the staff console asks); the customer sees it, with this "
                        "key's name, in the access audit of their export",
                   errors=[{"field": REASON_HEADER, "message": message}])


def export_format(request: web.Request) -> str:
    """Checked before anything is read, so a refused request leaves no audit entry."""
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", "must be json or csv")
    return fmt


def export_response(fmt: str, tables: Tables, account_id: str) -> web.Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    if fmt == "json":
        body, kind, ext = tables_json(tables), "application/json", "json"
    else:
        body, kind, ext = tables_zip(tables, EXPORT_COLUMNS), "application/zip", "zip"
    resp = web.Response(body=body, content_type=kind)
    resp.headers["Content-Disposition"] = (
        f'attachment; filename="packetra-{account_id}-{stamp}.{ext}"')
    resp.headers["Cache-Control"] = "no-store"
    return resp


@routes.get("/v1/me/export")
async def export_mine(request: web.Request) -> web.Response:
    account_id = await customer(request)
    fmt = export_format(request)
    tables = await request.app[PRIVACY].privacy.export(account_id)
    return export_response(fmt, tables, account_id)


@routes.delete("/v1/me")
async def delete_me(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = DeletionBody.model_validate(await read_json(request))
    due = await request.app[PRIVACY].privacy.request_deletion(
        account_id, body.password, body.totp_code,
        client_address(request))
    return web.json_response({
        "deletion_due_at": rfc3339(due),
        "detail": "every session has ended; log in before this time and cancel to keep "
                  "the account",
    }, status=202)


@routes.delete("/v1/me/deletion")
async def cancel_deletion(request: web.Request) -> web.Response:
    account_id = await customer(request)
    if not await request.app[PRIVACY].privacy.cancel_deletion(
            account_id, client_address(request)):
        raise Conflict("no deletion is scheduled for this account")
    return web.Response(status=204)


def _objection(since: datetime | None) -> web.Response:
    return web.json_response({"objected": since is not None,
                              "since": rfc3339(since) if since is not None else None})


@routes.get("/v1/me/optional-processing")
async def get_objection(request: web.Request) -> web.Response:
    account_id = await customer(request)
    page = await request.app[PRIVACY].privacy.account_page(account_id)
    return _objection(page["objected_since"])


@routes.put("/v1/me/optional-processing")
async def put_objection(request: web.Request) -> web.Response:
    account_id = await customer(request)
    body = ObjectionBody.model_validate(await read_json(request))
    return _objection(await request.app[PRIVACY].privacy.object_to_optional(
        account_id, body.objected))


@routes.post("/v1/me/policy-acknowledgement")
async def acknowledge_policy(request: web.Request) -> web.Response:
    account_id = await customer(request)
    await request.app[PRIVACY].privacy.acknowledge_policy(account_id)
    return web.Response(status=204)


@routes.get("/v1/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    key = await api_key(request, PERSONAL_SCOPE)
    reader = _reader(request, key)
    if reader is None:
        return missing_reason(request)
    view = await request.app[PRIVACY].privacy.read_account(
        request.match_info["account_id"], reader)
    return web.json_response(await account_doc(request, view))


@routes.get("/v1/accounts/{account_id}/export")
async def export_account(request: web.Request) -> web.Response:
    key = await api_key(request, PERSONAL_SCOPE)
    reader = _reader(request, key)
    if reader is None:
        return missing_reason(request)
    fmt = export_format(request)
    account_id = request.match_info["account_id"]
    tables = await request.app[PRIVACY].privacy.export(account_id, reader)
    return export_response(fmt, tables, account_id)
