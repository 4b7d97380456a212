"""How failed logins slow an attacker down: a few free failures, then doubling delays, and
never more than the hourly maximum (ASVS: at most 100 failed attempts per hour)."""

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=1)
    max_failures_per_window: int = 100


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def after_failure(state: ThrottleState | None, now: datetime, p: ThrottlePolicy
                  ) -> ThrottleState:
    if state is None or now - state.window_started_at >= p.window:
        state = ThrottleState(0, now, None)
    failures = state.failures + 1
    locked = None
    if failures >= p.max_failures_per_window:
        locked = state.window_started_at + p.window
    elif failures > p.free_failures:
        delay = p.base_delay * 2 ** (failures - p.free_failures - 1)
        locked = now + min(delay, p.max_delay)
    return ThrottleState(failures, state.window_started_at, locked)


def retry_after(state: ThrottleState | None, now: datetime) -> timedelta | None:
    """How long the caller must wait, or None when an attempt may go ahead."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return state.locked_until - now


def client_network(address: str | None) -> str:
    """Whom a per-client count is for: an IPv4 address, or an IPv6 address's /64 (one
    customer line or one server usually holds a whole /64, and picks any address in it)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
