from aiohttp import web

from gateway.http.problems import Handler

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _apply(request, resp)
        raise
    _apply(request, resp)
    return resp


def _apply(request: web.Request, resp: web.StreamResponse) -> None:
    html = (resp.content_type or "").startswith("text/html")
    resp.headers.setdefault("Content-Security-Policy", PAGE_CSP if html else API_CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    resp.headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=63072000")
