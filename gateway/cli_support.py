"""What every `gateway` command shares: configuration, a built gateway for the length of
one command, times from the command line, and progress bars."""

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from tqdm import tqdm

from gateway import logs
from gateway.config import ConfigError, Settings, load
from gateway.domain.timestamps import parse_time

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

T = TypeVar("T")

EXIT_CONFIG = 2


def fail(message: str, code: int = 1) -> SystemExit:
    print(f"gateway: {message}", file=sys.stderr)
    return SystemExit(code)


def settings_or_exit(args: argparse.Namespace) -> Settings:
    try:
        return load(args.config)
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", EXIT_CONFIG) from None


def with_gateway(args: argparse.Namespace, work: "Callable[[Gateway], Awaitable[T]]") -> T:
    """Build the gateway from configuration, check the schema, run `work`, clean up.
    Any refusal becomes one line on stderr and a non-zero exit."""
    from gateway.bootstrap import build
    from gateway.domain.errors import InvalidInput

    settings = settings_or_exit(args)
    logs.configure("WARNING")

    async def run() -> T:
        gw = build(settings)
        try:
            await gw.check_schema()
            return await work(gw)
        finally:
            await gw.aclose()

    try:
        return asyncio.run(run())
    except InvalidInput as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    except Exception as exc:  # refused by the service, or the database is unreachable
        raise fail(str(exc)) from None


def when(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def _private_fd(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file would keep its mode otherwise
    return fd


def private_text_file(path: Path) -> IO[str]:
    """A new or truncated file only its owner can read: exports hold personal or
    financial data."""
    return os.fdopen(_private_fd(path), "w", newline="")


def private_binary_file(path: Path) -> IO[bytes]:
    return os.fdopen(_private_fd(path), "wb")


class Bar:
    """A progress bar on stderr when it is a terminal; silent in pipes and logs."""

    def __init__(self, description: str, unit: str) -> None:
        self._bar = tqdm(total=0, desc=description, unit=unit, file=sys.stderr,
                         disable=not sys.stderr.isatty(), leave=False)

    def add_total(self, n: int) -> None:
        self._bar.total = (self._bar.total or 0) + n
        self._bar.refresh()

    def advance(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
