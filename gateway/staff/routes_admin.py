"""Admin: webhook endpoints and API keys (secrets shown once), the access audit log, the
staff log, chain status, the outbox, deletions and backups."""

from typing import Any

from aiohttp import web

from gateway.services.api_keys import SCOPES
from gateway.services.ports import StaffSession
from gateway.staff.context import ADMIN, MEMBERS, PREFIX
from gateway.staff.pages import action, ip, page, redirect, render, text

routes = web.RouteTableDef()


async def _admin(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    admin, staff = request.app[ADMIN], request.app[MEMBERS].staff
    pending, failing = await admin.outbox()
    return render(request, "admin.html", {
        "endpoints": await admin.endpoints.list(), "keys": await admin.api_keys.list(),
        "scopes": SCOPES, "audit": await staff.recent_audit(100),
        "log": await staff.recent_log(100), "chains": await admin.chain_status(),
        "pending": pending, "failing": failing, "promises": await admin.promises(),
        **shown}, status)


@routes.get(PREFIX + "/admin")
@page("admin")
async def admin_page(request: web.Request, session: StaffSession) -> web.Response:
    return await _admin(request)


@routes.post(PREFIX + "/admin/endpoints")
@action("admin")
async def endpoint_add(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    created = await request.app[ADMIN].endpoints.create(
        text(form, "url"), [t for t in form.getall("event_type", []) if t],
        text(form, "description"))
    await request.app[MEMBERS].staff.record(session, "endpoint_added", created.record.id,
                                            ip(request))
    return await _admin(request, 201, secret=created.secret,
                        secret_for=f"endpoint {created.record.id}")


@routes.post(PREFIX + "/admin/endpoints/{endpoint_id}/{what:(disable|enable|rotate)}")
@action("admin")
async def endpoint_change(request: web.Request, session: StaffSession,
                          form: Any) -> web.Response:
    endpoints, staff = request.app[ADMIN].endpoints, request.app[MEMBERS].staff
    endpoint_id, what = request.match_info["endpoint_id"], request.match_info["what"]
    if what == "rotate":
        secret, until = await endpoints.rotate(endpoint_id)
        await staff.record(session, "endpoint_rotated", endpoint_id, ip(request))
        return await _admin(request, secret=secret, secret_for=(
            f"endpoint {endpoint_id} (the old secret keeps signing until "
            f"{until:%Y-%m-%d %H:%M} UTC)"))
    await endpoints.set_enabled(endpoint_id, what == "enable")
    await staff.record(session, f"endpoint_{what}d", endpoint_id, ip(request))
    return redirect("/admin")


@routes.post(PREFIX + "/admin/keys")
@action("admin")
async def key_create(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    created = await request.app[ADMIN].api_keys.create(
        text(form, "name"), [s for s in form.getall("scope", []) if s])
    await request.app[MEMBERS].staff.record(session, "api_key_created", created.record.id,
                                            ip(request))
    return await _admin(request, 201, secret=created.secret,
                        secret_for=f"API key {created.record.id}")


@routes.post(PREFIX + "/admin/keys/{key_id}/revoke")
@action("admin")
async def key_revoke(request: web.Request, session: StaffSession, form: Any) -> web.Response:
    await request.app[ADMIN].api_keys.revoke(request.match_info["key_id"])
    await request.app[MEMBERS].staff.record(session, "api_key_revoked",
                                            request.match_info["key_id"], ip(request))
    return redirect("/admin")
