"""CSRF tokens for the server-rendered forms.

Logged in, a token is bound to the session; before login (signup, login) it is signed
and short-lived, and the request's Origin, when sent, must be our own. No extra cookie:
the privacy policy allows only the session and preference cookies."""

import base64
import hashlib
import hmac
import time

from aiohttp import web

MAX_AGE_SECONDS = 2 * 3600


class Csrf:
    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"csrf", hashlib.sha256).digest()

    def _mac(self, issued: int, binding: str) -> str:
        digest = hmac.new(self._key, f"{issued}:{binding}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def token(self, binding: str = "anonymous") -> str:
        issued = int(time.time())
        return f"{issued}.{self._mac(issued, binding)}"

    def check(self, request: web.Request, token: str | None, binding: str = "anonymous") -> None:
        origin = request.headers.get("Origin")
        if origin not in (None, "null") and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="cross-site form submission refused")
        if not token or "." not in token:
            raise web.HTTPForbidden(text="the form's CSRF token is missing; reload the page")
        issued_text, mac = token.split(".", 1)
        if not issued_text.isdigit():
            raise web.HTTPForbidden(text="the form's CSRF token is malformed")
        issued = int(issued_text)
        if time.time() - issued > MAX_AGE_SECONDS:
            raise web.HTTPForbidden(text="the form has expired; reload the page")
        if not hmac.compare_digest(mac, self._mac(issued, binding)):
            raise web.HTTPForbidden(text="the form's CSRF token does not match; reload the page")
