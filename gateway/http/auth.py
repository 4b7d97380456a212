from aiohttp import web

from gateway.http.csrf import cookie_request
from gateway.http.keys import ACCOUNTS
from gateway.i18n import N_
from gateway.services.api_keys import API_KEY_PREFIX
from gateway.services.errors import Unauthorized
from gateway.services.ports import ApiKeyRecord

# Browsers keep a `__Host-` cookie only when it is Secure, and they keep Secure cookies
# from http://127.0.0.1 and http://localhost as well (secure contexts), so the cookie is
# always Secure: a switch to turn that off only ever produced a cookie browsers drop.
SESSION_COOKIE = "__Host-session"


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def api_key(request: web.Request, scope: str) -> ApiKeyRecord:
    token = bearer(request)
    if token is None or not token.startswith(API_KEY_PREFIX):
        raise Unauthorized(f"an API key is required: Authorization: Bearer {API_KEY_PREFIX}...")
    return await request.app[ACCOUNTS].api_keys.authorize(token, scope)


def session_token(request: web.Request) -> str | None:
    """The customer's session token: a bearer token, or else the session cookie. Every
    route that lets the cookie authenticate reads it here, so the cross-site rule for
    state-changing requests (`csrf.cookie_request`: JSON only, same Origin) cannot be
    forgotten; it raises `Forbidden`."""
    token = bearer(request)
    if token is not None and not token.startswith(API_KEY_PREFIX):
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None:
        cookie_request(request)
    return cookie


async def customer(request: web.Request) -> str:
    token = session_token(request)
    if token is None:
        raise Unauthorized(N_("log in first: a session cookie or bearer token is required"))
    return await request.app[ACCOUNTS].accounts.authenticate(token)
