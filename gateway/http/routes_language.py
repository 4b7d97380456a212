"""The language menu's target: `GET /lang?l=de&next=account` sets the preference cookie's
language and sends the browser back to `next`, a page of this site (anything else: the
login page). Logged in, the account remembers the choice too: its mails are written in
it. A preference only, like the currency: no CSRF token (a forged link can do no more
than change the language), and no form needed, so it works without JavaScript."""

from aiohttp import web

from gateway import i18n
from gateway.http.i18n import safe_next, set_pref
from gateway.http.keys import ACCOUNTS
from gateway.http.routes_portal import _session
from gateway.services.errors import NotFound

routes = web.RouteTableDef()


@routes.get("/lang")
async def choose_language(request: web.Request) -> web.Response:
    chosen = i18n.supported(request.query.get("l"))
    # Relative: the same directory as /lang, which is the application's root.
    resp = web.Response(status=303, headers={
        "Location": "./" + safe_next(request.query.get("next")),
        "Cache-Control": "no-store"})
    if chosen is None:
        return resp
    set_pref(request, resp, language=chosen)
    session = await _session(request)
    if session is not None:
        try:
            await request.app[ACCOUNTS].accounts.choose_language(session.account_id, chosen)
        except NotFound:
            pass  # deleted meanwhile: the cookie alone remembers it
    return resp
