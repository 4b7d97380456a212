"""What aiohttp answers itself, before any middleware runs: a request it cannot parse (a
malformed request line or header) or a handler that failed outside our middleware.

Its own answer is text/plain with the parser's message, which quotes the offending line:
a bearer token or a session cookie sent with one bad byte came straight back (and went to
aiohttp offers no hook for that answer, so its protocol handler's `handle_error` is
replaced, once per process, when the application is built: the same logging, and a fixed
problem+json body instead of the message."""

from http import HTTPStatus
from typing import Any

from aiohttp import web_protocol
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from gateway.http.problems import problem
from gateway.http.security import SERVER

DETAILS = {
    400: "the request is malformed (a request line or header HTTP does not allow)",
    413: "the request line or a header is too long",
    431: "the request headers are too large",
    500: "internal error; it was logged",
    504: "the request took too long",
}


_AIOHTTP_HANDLE_ERROR = web_protocol.RequestHandler.handle_error


def _handle_error(self: web_protocol.RequestHandler, request: BaseRequest,
                  status: int = 500, exc: BaseException | None = None,
                  message: str | None = None) -> StreamResponse:
    # aiohttp's own method still logs (gateway.logs turns a parser's refusal into one
    # INFO line without the bytes) and refuses when an answer was already sent; only its
    # answer is replaced.
    _AIOHTTP_HANDLE_ERROR(self, request, status, exc, message)
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    resp = problem(status, DETAILS.get(status, phrase))
    resp.headers["Server"] = SERVER  # no hook runs for this answer: no version either
    resp.force_close()
    return resp


def install() -> None:
    handler: Any = web_protocol.RequestHandler
    if handler.handle_error is not _handle_error:
        handler.handle_error = _handle_error
