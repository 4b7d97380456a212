"""`gateway serve`: the HTTP API, the chain watchers and the webhook workers."""

import argparse
import asyncio
import errno
import sys
from typing import TYPE_CHECKING

from gateway import logs
from gateway.cli.support import Commands, settings_or_exit

if TYPE_CHECKING:
    import socket
    import ssl

    from gateway.bootstrap import Gateway
    from gateway.config import ServerConfig, Settings


def _say(line: str) -> None:
    print(f"gateway: {line}", file=sys.stderr)


def _ready(gw: "Gateway", settings: "Settings") -> bool:
    """The schema is current and nothing `startup_problems` finds is fatal."""
    from gateway.bootstrap import SchemaNotReady, startup_problems

    async def check() -> None:
        try:
            await gw.check_schema()
        finally:
            await gw.engine.dispose()

    try:
        asyncio.run(check())
    except SchemaNotReady as exc:
        _say(str(exc))
        return False
    except OSError as exc:
        _say(f"database unavailable: {exc.strerror or exc}")
        return False
    fatal, warnings = asyncio.run(startup_problems(settings))
    for line in warnings:
        _say(f"warning: {line}")
    for line in fatal:
        _say(line)
    return not fatal


def _tls(server: "ServerConfig") -> "ssl.SSLContext | None":
    import ssl

    if not (server.tls_cert and server.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(server.tls_cert, server.tls_key)
    return context


def _socket(server: "ServerConfig") -> "socket.socket | None":
    """The public socket, or None (said why) when the port is taken."""
    import socket

    from gateway.bootstrap import listen_error

    try:
        return socket.create_server((server.host, server.port))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        _say(str(listen_error("[server] port", f"{server.port} (host {server.host})", exc)))
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.bootstrap import ListenError, build, build_app

    settings = settings_or_exit(args)
    warning = settings.server.plaintext_warning()
    if warning is not None:
        _say(warning)
    gw = build(settings)
    if not _ready(gw, settings):
        return 1
    logs.configure(settings.server.log_level)
    ssl_context = _tls(settings.server)
    # The public socket first: a port that is taken stops the start before any watcher,
    # worker or database connection has started (they would be cut off mid-way).
    sock = _socket(settings.server)
    if sock is None:
        return 1
    try:
        web.run_app(build_app(gw), sock=sock, ssl_context=ssl_context,
                    access_log=None, print=None)
    except ListenError as exc:
        _say(str(exc))
        return 1
    return 0


def register(cli: Commands) -> None:
    cli.command("serve", cmd_serve,
                help="run the HTTP API, chain watchers and webhook workers",
                example="gateway serve -c /etc/gateway/gateway.toml")
