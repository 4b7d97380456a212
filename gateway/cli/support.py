"""What every `gateway` command shares: how a command is declared (its help, its example,
its deprecated old names), configuration, a built gateway for the length of one command,
times from the command line, and progress bars."""

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from tqdm import tqdm

from gateway import logs
from gateway.config import ConfigError, Settings, load
from gateway.domain.timestamps import parse_time

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

T = TypeVar("T")

EXIT_CONFIG = 2

Func = Callable[[argparse.Namespace], int]


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written (one example per line); the value of a
    `FlagOrOldValue` is not shown."""

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, FlagOrOldValue):
            return ""
        return super()._format_args(action, default_metavar)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        return super()._format_action_invocation(action).rstrip()


class FlagOrOldValue(argparse.Action):
    """A flag (`--json`: True) that still takes the value an older spelling gave it
    (`--json FILE`: "FILE"); the help shows the flag only."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", const=True, default=False,
                         **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, _option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)


def _epilog(example: str | Sequence[str]) -> str:
    lines = [example] if isinstance(example, str) else list(example)
    title = "example:" if len(lines) == 1 else "examples:"
    return "\n".join([title, *(f"  {line}" for line in lines)])


class Commands:
    """Where a command group declares its commands. Every command has a help line (also
    its description) and an example (its `--help` ends with it); an old name given in
    `old` still works, hidden from the help, and says once on stderr what to type
    instead. Every parser built is listed in `parsers`, in order, for the reference."""

    def __init__(self, sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
                 common: argparse.ArgumentParser, prog: str, dest: str,
                 parsers: list[tuple[str, argparse.ArgumentParser]]) -> None:
        self._sub, self._common, self._prog, self._dest = sub, common, prog, dest
        self.parsers = parsers
        self._visible: list[str] = []

    def _add(self, name: str, help: str, example: str | Sequence[str],
             config: bool) -> argparse.ArgumentParser:
        p = self._sub.add_parser(
            name, parents=[self._common] if config else [], help=help, description=help,
            epilog=_epilog(example), formatter_class=Formatter)
        self._visible.append(name)
        self._sub.metavar = "{" + ",".join(self._visible) + "}"
        self.parsers.append((f"{self._prog} {name}", p))
        return p

    def command(self, name: str, func: Func, *, help: str, example: str | Sequence[str],
                old: Sequence[str] = (), config: bool = True) -> argparse.ArgumentParser:
        """A command that runs `func`; `config`: it takes `-c FILE` after its name."""
        p = self._add(name, help, example, config)
        p.set_defaults(func=func, cli_dest=self._dest, cli_name=name,
                       cli_full=f"{self._prog} {name}")
        for alias in old:  # hidden: not in the help, nor in the list of choices
            self._sub.choices[alias] = p
        return p

    def group(self, name: str, *, help: str, example: str | Sequence[str]) -> "Commands":
        """A group of commands (`gateway NAME VERB ...`)."""
        p = self._add(name, help, example, config=False)
        sub = p.add_subparsers(dest="verb", required=True)
        return Commands(sub, self._common, f"{self._prog} {name}", "verb", self.parsers)


def deprecated(instead: str) -> None:
    """The one line an old spelling prints (it keeps working for one release)."""
    print(f"deprecated: use `{instead}`", file=sys.stderr)


def deprecation(args: argparse.Namespace) -> str | None:
    """The command to type instead when `args` came from an old spelling."""
    used = getattr(args, args.cli_dest, None)
    return None if used == args.cli_name else str(args.cli_full)


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
