"""Cross-site request forgery: the rules for the server-rendered forms and for JSON
requests that the session cookie authenticates.

Forms carry a token. Logged in, it is bound to the session; before login (signup, login)
it is signed, short-lived and bound to the client: its network (/24 for IPv4, /64 for
IPv6), User-Agent and Accept-Language, so a token an attacker fetched for themselves is
refused when their page makes a victim's browser post it. No extra cookie: the privacy
policy allows only the session and preference cookies.

Every state-changing request checks where it comes from: an `Origin` other than our own
(and the opaque `null` of sandboxed frames and privacy-redirected forms) is refused, as is
`Sec-Fetch-Site: cross-site` or `same-site`. JSON requests authenticated by the cookie
(not a bearer token) must also say `Content-Type: application/json` and send our `Origin`
(`cookie_request`): no form can send that, and no other origin can without a CORS
preflight, which the gateway never grants."""

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Sequence

from aiohttp import web

from gateway.http.client_ip import Network, client_ip
from gateway.services.errors import Forbidden

MAX_AGE_SECONDS = 2 * 3600
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _own_origins(request: web.Request) -> set[str]:
    # Behind a TLS-terminating proxy the request itself is plain http.
    return {f"{request.scheme}://{request.host}", f"https://{request.host}"}


def foreign_origin(request: web.Request, require: bool = False) -> str | None:
    """Why this request is not from one of our own pages, or None when it is (or, with
    `require` false, when the browser did not say: then a form's token decides)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("cross-site", "same-site"):
        return f"the request came from another site (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    if origin is None:
        return "the request has no Origin header" if require else None
    if origin == "null":
        return "the request's Origin is null (a sandboxed or privacy-redirected page)"
    if origin not in _own_origins(request):
        return "the request's Origin is not this site"
    return None


def cookie_request(request: web.Request) -> None:
    """The rule for a request that the session cookie authenticates; raises `Forbidden`."""
    if request.method not in STATE_CHANGING:
        return
    if request.content_type != "application/json":
        raise Forbidden("a request authenticated by the session cookie must be sent as "
                        "Content-Type: application/json from this site's own pages; "
                        "programs should use Authorization: Bearer <token> instead")
    reason = foreign_origin(request, require=True)
    if reason is not None:
        raise Forbidden(f"cross-site request refused: {reason}. A request authenticated by "
                        "the session cookie must come from this site's own pages (same "
                        "Origin); programs should use Authorization: Bearer <token>")


class Csrf:
    def __init__(self, key: bytes, trusted_proxies: Sequence[Network] = ()) -> None:
        self._key = hmac.new(key, b"csrf", hashlib.sha256).digest()
        self._trusted = tuple(trusted_proxies)

    def _mac(self, issued: int, binding: str) -> str:
        digest = hmac.new(self._key, f"{issued}:{binding}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def _binding(self, request: web.Request, session_id: str | None) -> str:
        if session_id is not None:
            return f"session:{session_id}"
        # Before login: what the client sends with every request and a page on another
        # site cannot choose for it. The network, not the address: IPv6 privacy
        # addresses change within a /64. Over the onion service every client is the
        # local tor daemon; the User-Agent and Accept-Language still tell them apart.
        address = client_ip(request, self._trusted)
        try:
            ip = ipaddress.ip_address(address)
            network = str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}",
                                               strict=False))
        except ValueError:
            network = address
        client = "\x00".join((network, request.headers.get("User-Agent", ""),
                              request.headers.get("Accept-Language", "")))
        return "client:" + hashlib.sha256(client.encode()).hexdigest()

    def token(self, request: web.Request, session_id: str | None = None) -> str:
        issued = int(time.time())
        return f"{issued}.{self._mac(issued, self._binding(request, session_id))}"

    def check(self, request: web.Request, token: str | None,
              session_id: str | None = None) -> None:
        reason = foreign_origin(request)
        if reason is not None:
            raise web.HTTPForbidden(text=f"cross-site form submission refused: {reason}")
        if not token or "." not in token:
            raise web.HTTPForbidden(text="the form's CSRF token is missing; reload the page")
        issued_text, mac = token.split(".", 1)
        if not (issued_text.isascii() and issued_text.isdigit()):
            raise web.HTTPForbidden(text="the form's CSRF token is malformed")
        issued = int(issued_text)
        if time.time() - issued > MAX_AGE_SECONDS:
            raise web.HTTPForbidden(text="the form has expired; reload the page")
        if not hmac.compare_digest(mac, self._mac(issued, self._binding(request, session_id))):
            raise web.HTTPForbidden(text="the form's CSRF token does not match this browser "
                                         "or session; reload the page")
