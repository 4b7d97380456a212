import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.domain.throttle import ThrottlePolicy, after_failure, retry_after
from gateway.http.client_ip import client_ip
from gateway.http.ratelimit import SlidingWindow
from gateway.services.errors import TooManyRequests

T0 = datetime(2026, 1, 1, tzinfo=UTC)
P = ThrottlePolicy(free_failures=3, base_delay=timedelta(seconds=1),
                   max_delay=timedelta(seconds=10), max_failures_per_window=20)


def test_free_failures_then_doubling_delays_capped() -> None:
    state = None
    delays = []
    for i in range(9):
        now = T0 + timedelta(seconds=i)
        state = after_failure(state, now, P)
        wait = retry_after(state, now)
        delays.append(wait.total_seconds() if wait else 0)
    assert delays == [0, 0, 0, 1, 2, 4, 8, 10, 10]


def test_hourly_maximum_locks_until_the_window_ends_then_resets() -> None:
    state = None
    for i in range(20):
        state = after_failure(state, T0 + timedelta(minutes=i), P)
    assert state is not None and state.locked_until == T0 + timedelta(hours=1)
    fresh = after_failure(state, T0 + timedelta(hours=1), P)
    assert fresh.failures == 1 and retry_after(fresh, T0 + timedelta(hours=1)) is None


def test_asvs_cap_is_enforced_by_configuration() -> None:
    from gateway.config import SecurityConfig

    assert SecurityConfig.model_fields["login_failures_per_hour"].metadata[-1].le == 100


def test_client_ip_trusts_only_configured_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7, 10.0.0.2"}

    def req(peer: str) -> object:
        r = make_mocked_request("GET", "/", headers=forwarded)
        r._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
        return r

    assert client_ip(req("10.0.0.1"), proxies) == "198.51.100.7"  # type: ignore[arg-type]
    assert client_ip(req("192.0.2.1"), proxies) == "192.0.2.1"  # type: ignore[arg-type]
    assert client_ip(req("10.0.0.1"), []) == "10.0.0.1"  # type: ignore[arg-type]


def test_sliding_window() -> None:
    now = [0.0]
    window = SlidingWindow(2, 60, lambda: now[0])
    window.hit("a", "login")
    window.hit("a", "login")
    window.hit("b", "login")
    with pytest.raises(TooManyRequests) as info:
        window.hit("a", "login")
    assert info.value.retry_after_seconds == 60
    now[0] = 60.0
    window.hit("a", "login")


def test_ipv6_clients_are_limited_by_their_64() -> None:
    window = SlidingWindow(2, 60, lambda: 0.0)
    window.hit("2001:db8:1:2::1", "login")
    window.hit("2001:db8:1:2:ffff:0:0:9", "login")  # same /64, another address
    with pytest.raises(TooManyRequests):
        window.hit("2001:db8:1:2::abcd", "login")
    window.hit("2001:db8:1:3::1", "login")  # the next /64 is another client
    window.hit("192.0.2.1", "login")
    window.hit("::ffff:192.0.2.1", "login")  # the same IPv4 client, written as IPv6
    with pytest.raises(TooManyRequests):
        window.hit("192.0.2.1", "login")


def test_forwarded_scheme_and_host_only_from_trusted_proxies() -> None:
    from gateway.http.forwarded import forwarded_changes

    proxies = [ipaddress.ip_network("10.0.0.0/8")]

    def changes(peer: str, **headers: str) -> dict[str, str]:
        r = make_mocked_request("GET", "/", headers={"Host": "10.0.0.5:8080", **headers})
        r._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
        return forwarded_changes(r, proxies)

    assert changes("10.0.0.1", **{"X-Forwarded-Proto": "https",
                                  "X-Forwarded-Host": "pay.example"}) == {
        "scheme": "https", "host": "pay.example"}
    # The nearest proxy's value (the last) counts; a client's own guess further left not.
    assert changes("10.0.0.1", **{"X-Forwarded-Proto": "http, https"}) == {"scheme": "https"}
    assert changes("10.0.0.1", **{"X-Forwarded-Proto": "gopher"}) == {}
    assert changes("10.0.0.1", **{"X-Forwarded-Host": "evil.example/path"}) == {}
    assert changes("10.0.0.1", **{"X-Forwarded-Host": "[::1]:8443"}) == {"host": "[::1]:8443"}
    assert changes("192.0.2.1", **{"X-Forwarded-Proto": "https",
                                   "X-Forwarded-Host": "pay.example"}) == {}


def test_without_trusted_proxies_no_forwarded_middleware_runs() -> None:
    """A middleware that could only pass every request on is not installed."""
    from gateway.http.forwarded import forwarded_middlewares

    assert forwarded_middlewares(()) == ()
    assert len(forwarded_middlewares([ipaddress.ip_network("10.0.0.0/8")])) == 1
