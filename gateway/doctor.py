"""`gateway doctor`: asks every part the gateway depends on whether it works, and says
what is wrong in an operator's words. Read-only: it sends no mail, no webhook and writes
nothing to the database."""

import asyncio
import os
import ssl
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from chains.base import (
    ChainError,
    Diagnosable,
    Follower,
    NodeProblem,
    describe_failure,
    wrong_network,
)
from gateway.domain.timestamps import rfc3339
from gateway.promise_checks import Check

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

TIMEOUT = 10.0


@dataclass(frozen=True)
class Finding:
    part: str  # "database", "LTC node", "SMTP", "webhook whe_..."
    ok: bool
    says: str

    def line(self) -> str:
        return f"{'ok     ' if self.ok else 'PROBLEM'}  {self.part}: {self.says}"


async def examine(gw: "Gateway") -> list[Finding]:
    found = [await _database(gw)]
    private = _database_files(gw.settings.database.url)
    if private is not None:
        found.append(private)
    catching = await _catching_up(gw) if found[0].ok else {}
    for follower in gw.chains.followers():
        part = f"{'/'.join(follower.coins)} node"
        if follower.feed in catching:
            state, since = catching[follower.feed]
            found.append(Finding(part, False, f"catching up since {rfc3339(since)} (as its "
                                 f"watcher recorded): {state}; payments to what is being "
                                 "restored show once it is done"))
        found.extend(await _node(follower))
    found.append(await _smtp(gw))
    found.extend(await _promises(gw, found[0].ok))
    if found[0].ok:
        found.extend(await _endpoints(gw))
    else:
        found.append(Finding("webhook endpoints", False,
                             "not checked: they are listed in the database"))
    return found


async def _promises(gw: "Gateway", database_ok: bool) -> list[Finding]:
    """Deletions and backups: overdue erasures, a ledger that cannot be written, backups
    missing or not pruned (gateway/promise_checks.py)."""
    from gateway.bootstrap import backup_times
    from gateway.promise_checks import backup_checks, erasure_check, flush_check, ledger_check

    now = gw.clock()
    checks = [ledger_check(gw.settings.backup.ledger_path(),
                             gw.settings.backup.key is not None)]
    if database_ok:
        try:
            checks.append(await asyncio.wait_for(erasure_check(
                gw.services.retention, now, gw.settings.retention.interval_seconds),
                TIMEOUT))
        except Exception as exc:
            checks.append(Check("account erasures", False,
                                f"not checked ({type(exc).__name__})"))
        try:
            checks.append(await asyncio.wait_for(
                flush_check(gw.services.retention, now), TIMEOUT))
        except Exception as exc:
            checks.append(Check("erased data flushed", False,
                                f"not checked ({type(exc).__name__})"))
    checks.extend(backup_checks(gw.settings, now, backup_times))
    return [Finding(c.part, c.ok, c.says) for c in checks]


async def _guard(part: str, probe: Callable[[], Awaitable[Finding]]) -> Finding:
    try:
        return await asyncio.wait_for(probe(), TIMEOUT)
    except TimeoutError:
        return Finding(part, False, f"no answer within {TIMEOUT:.0f} s")


async def _database(gw: "Gateway") -> Finding:
    from gateway.bootstrap import SchemaNotReady

    async def probe() -> Finding:
        try:
            await gw.check_schema()
        except SchemaNotReady as exc:
            return Finding("database", False, str(exc))
        except OSError as exc:
            return Finding("database", False, f"cannot connect: {exc.strerror or exc}")
        except Exception as exc:  # the driver's own errors (refused login, no such db)
            return Finding("database", False, f"cannot connect ({type(exc).__name__}: "
                           f"{_first_line(exc)})")
        return Finding("database", True, f"answers ({gw.engine.dialect.name}), schema is "
                       "up to date")

    return await _guard("database", probe)


def _database_files(url: str) -> Finding | None:
    """SQLite: the database file and its -wal and -shm files, readable by the owner only
    (the gateway creates a new one 0600; its -wal and -shm take that mode)."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database if url.startswith("sqlite") else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    loose = []
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            loose.append(f"{name} is {mode:04o}")
    if loose:
        return Finding("database files", False,
                       f"{'; '.join(loose)}: other users may read it; chmod 600 {path}*")
    return Finding("database files", True,
                   f"{path} (and its -wal, -shm) readable by its owner only (0600)")


async def _catching_up(gw: "Gateway") -> dict[str, tuple[str, datetime]]:
    """Feeds whose node is catching up, as the instance following it recorded (read
    only)."""
    try:
        return await asyncio.wait_for(gw.ops.readiness.recorded_catch_ups(), TIMEOUT)
    except Exception:  # the database finding says what is wrong with it
        return {}


async def _node(follower: "Follower") -> list[Finding]:
    part = f"{'/'.join(follower.coins)} node"
    if not isinstance(follower, Diagnosable):
        async def tip_only() -> Finding:
            try:
                tip = await follower.tip()
            except NodeProblem as exc:
                return Finding(part, False, describe_failure(exc))
            except Exception as exc:
                return Finding(part, False, f"unreachable ({_first_line(exc)})")
            return Finding(part, True, f"answers at height {tip.height} (this chain family "
                           "offers no network or address check)")
        return [await _guard(part, tip_only)]
    try:
        d = await asyncio.wait_for(follower.diagnose(), TIMEOUT)
    except NodeProblem as exc:
        return [Finding(part, False, describe_failure(exc))]
    except (ChainError, TimeoutError, OSError) as exc:
        return [Finding(part, False, f"unreachable ({_first_line(exc) or 'timed out'}): "
                        "check rpc_url, the node's rpcbind/rpcallowip and credentials")]
    except Exception as exc:  # an answer that is not what such a node says
        return [Finding(part, False, f"answers, but not as a {part} should "
                        f"({type(exc).__name__}): is rpc_url the right service?")]
    out = [Finding(part, True, f"answers at height {d.height}")]
    if d.network_ok:
        out.append(Finding(part, True, f"is on the configured network ({d.network_reported})"))
    else:
        out.append(Finding(part, False, wrong_network(d.network_reported,
                                                      d.network_expected)))
    out.append(Finding(part, d.synced, ("is in sync: " if d.synced else
                                        "is still catching up, payments show late: ")
                       + d.sync_detail))
    if d.address_valid is None:
        pass  # the family's own checks below say what it knows of its addresses
    elif d.address_valid:
        out.append(Finding(part, True, f"accepts the first address of the xpub "
                           f"({d.first_address})"))
    else:
        out.append(Finding(part, False, f"rejects the first address the xpub derives "
                           f"({d.first_address}): wrong xpub or network for this node"))
    out.extend(Finding(part, ok, says) for ok, says in d.checks)
    return out


async def _smtp(gw: "Gateway") -> Finding:
    cfg = gw.settings.smtp
    if cfg is None:
        return Finding("SMTP", True, "not configured: no mail is sent (password resets and "
                       "notices need it)")
    import aiosmtplib

    async def probe() -> Finding:
        client = aiosmtplib.SMTP(hostname=cfg.host, port=cfg.port, use_tls=cfg.tls,
                                 start_tls=cfg.starttls, timeout=TIMEOUT)
        where = f"{cfg.host}:{cfg.port}"
        try:
            await client.connect()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                await client.login(cfg.username, password)
            await client.noop()
        except aiosmtplib.SMTPAuthenticationError:
            return Finding("SMTP", False, f"{where} refused the username and password")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Finding("SMTP", False, f"{where}: {_first_line(exc)}")
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()
        secured = "TLS" if cfg.tls else "STARTTLS" if cfg.starttls else "no encryption"
        return Finding("SMTP", True, f"{where} answers ({secured}"
                       f"{', logged in' if cfg.username else ''})")

    return await _guard("SMTP", probe)


async def _endpoints(gw: "Gateway") -> list[Finding]:
    from webhooks.connect import guarded_connector
    from webhooks.targets import TargetPolicy

    records = await gw.services.endpoints.list()
    if not records:
        return [Finding("webhook endpoints", True, "none registered")]
    policy = TargetPolicy.of(gw.settings.webhooks.allow_private_targets,
                             gw.settings.webhooks.allow_public_targets)
    out: list[Finding] = []
    async with aiohttp.ClientSession(
            connector=guarded_connector(policy), trust_env=False,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        for rec in records:
            part = f"webhook {rec.id} ({rec.url})"
            if not rec.enabled:
                out.append(Finding(part, False, "is disabled after failing deliveries; "
                                   f"`gateway webhook enable {rec.id}` once it works"))
                continue
            out.append(await _endpoint(http, part, rec.url))
    return out


async def _endpoint(http: aiohttp.ClientSession, part: str, url: str) -> Finding:
    from webhooks.connect import TargetRefused

    tls = urlsplit(url).scheme == "https"
    try:
        # HEAD: any answer proves the server is up; nothing is delivered.
        async with http.head(url, allow_redirects=False) as resp:
            status = resp.status
    except aiohttp.ClientConnectorCertificateError as exc:
        return Finding(part, False, f"its TLS certificate is not valid ({_first_line(exc)})")
    except aiohttp.ClientSSLError as exc:
        return Finding(part, False, f"TLS handshake failed ({_first_line(exc)}); "
                       "deliveries need TLS 1.3")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, TargetRefused):
            return Finding(part, False, "its address is refused by [webhooks] "
                           "allow_private_targets / allow_public_targets")
        return Finding(part, False, f"unreachable ({exc.os_error.strerror or exc})")
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
        return Finding(part, False, f"no proper answer ({type(exc).__name__})")
    if status >= 500:
        return Finding(part, False, f"answers HTTP {status}: the receiver has a fault")
    secured = "TLS certificate valid" if tls else "plain HTTP, no TLS"
    return Finding(part, True, f"reachable, answers HTTP {status} to a HEAD ({secured})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
