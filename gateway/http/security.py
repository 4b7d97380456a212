from aiohttp import web

# aiohttp would name itself and Python with their versions on every answer: a free
# pointer to the known holes of that exact release.
SERVER = "packetra-gateway"

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


async def security_headers(request: web.Request, resp: web.StreamResponse) -> None:
    """`on_response_prepare` hook: runs for every response, streamed ones included."""
    html = (resp.content_type or "").startswith("text/html")
    resp.headers.setdefault("Content-Security-Policy", PAGE_CSP if html else API_CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers["Server"] = SERVER
    if request.secure:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=63072000")
