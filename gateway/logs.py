"""Logging setup with a last line of defence: whatever a message holds, email addresses,
IP addresses, API keys, webhook secrets, JWTs and the paths and queries of URLs are masked
before any handler sees them."""

import logging
import re
import sys
import traceback
from typing import IO

_PATTERNS = [
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"gk_[A-Za-z0-9_-]{8,}"), "gk_<redacted>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]{8,}"), "whsec_<redacted>"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "<jwt>"),
    (re.compile(r"(https?://)[^:/@\s]+:[^@/\s]+@"), r"\1<credentials>@"),
    # A URL keeps only scheme://host:port: hosted nodes take their API key in the path
    # (https://mainnet.infura.io/v3/KEY) or the query, and so do some webhook targets.
    (re.compile(r"\b((?:https?|wss?)://[^/?#\s'\"<>]+)[/?#][^\s'\",)<>]*"), r"\1"),
    # Client addresses belong in the security log only; aiohttp's own errors name them
    # ("Error handling request from 203.0.113.9").
    (re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), "<ip>"),
    (re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])"
                r"|(?<![\w:])[0-9A-Fa-f:]*::[0-9A-Fa-f:]*[0-9A-Fa-f](?![\w:])"), "<ip>"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe(exc: BaseException) -> str:
    """For the log: the kind of failure and, for a file, which one. Never the message of
    a database error, which may quote the statement's parameters (an email's blind index,
    a field's ciphertext): the redaction below cannot recognise those."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    return type(exc).__name__


def failure(exc: BaseException) -> str:
    """An exception for the log: `describe` of it and of each exception it came from,
    each with its traceback's frames (file, line, function, source line) but without the
    exception's message: where it failed, never with which values."""
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        frames = "".join(traceback.format_tb(cur.__traceback__)).rstrip()
        parts.append(f"{describe(cur)}\n{frames}" if frames else describe(cur))
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return "\nwhich came from: ".join(parts)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so it can be scrubbed like the message.
            formatted = logging.Formatter().formatException(record.exc_info)
            cleaned = f"{cleaned}\n{redact(formatted)}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = cleaned, None
        return True


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request its parser refuses (a NUL or other forbidden character in a
    header, a malformed request line) at ERROR with a traceback, though the client has
    its 400 and nothing went wrong here. Such a record becomes one INFO line naming what
    was wrong, without the traceback and without the offending bytes (a header value may
    hold a token) or the client's address."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and exc.code == 400:
            what = (exc.message or type(exc).__name__).splitlines()[0]
            what = what.partition(":")[0].strip()[:80] or type(exc).__name__
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed request refused with 400: %s", (what,)
            record.exc_info, record.exc_text = None, None
        return True


def configure(level: str = "INFO") -> None:
    """The process's logging: one redacting handler on stderr replaces any other."""
    logging.getLogger().handlers[:] = []
    attach(sys.stderr, level)


def attach(stream: IO[str], level: str = "INFO") -> logging.Handler:
    """Add a redacting handler writing to `stream` beside any handlers already there (a
    gateway run inside a test process keeps the test runner's own); returns it, for
    `logging.getLogger().removeHandler`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())
    # aiohttp's access log records client IPs; ours (gateway.http) does not. Database
    # drivers log statements with their parameters at DEBUG; never let them.
    for name in ("aiohttp.access", "aiosqlite", "asyncpg", "sqlalchemy", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
