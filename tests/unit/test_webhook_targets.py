"""The webhook target policy: which addresses a delivery may connect to."""

import ipaddress
from collections.abc import Awaitable, Callable

import pytest

from gateway.domain.errors import InvalidInput
from gateway.services.webhook_endpoints import check_target
from webhooks.targets import TargetPolicy, embedded_ipv4

STRICT = TargetPolicy()
LOOPBACK_ALLOWED = TargetPolicy.of(["127.0.0.0/8"])


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::",  # noqa: S104 - refused, not bound
    "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%1",  # link-local, metadata
    "fd00:ec2::254", "fc00::1",  # unique local (fd00:ec2::254: AWS metadata over IPv6)
    "100.64.0.1", "100.127.255.254",  # CGNAT
    "224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1",  # multicast
    "240.0.0.1", "255.255.255.255",  # reserved, broadcast
    "192.0.0.8", "192.0.2.1", "198.18.0.1", "2001:db8::1",  # special purpose
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",  # IPv4-mapped
    "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1",  # NAT64
    "64:ff9b:1::1", "64:ff9b:1:7f00:0:100::",  # local-use NAT64: refused outright
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:c0a8:101::1",  # 6to4
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:7f00:1:8000:63bf:f7f7:f7f6",  # Teredo, server 127.0.0.1, client public
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "not an address", "",
])
def test_refused(address: str) -> None:
    assert not STRICT.allows(address), address
    assert STRICT.refusal(address) is not None


@pytest.mark.parametrize("address", [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # mapped public
    "64:ff9b::8.8.8.8",  # NAT64 to a public address
    "2002:808:808::1",  # 6to4 of a public address
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: server 65.54.227.120, client 8.8.8.8
])
def test_public_allowed(address: str) -> None:
    assert STRICT.allows(address), STRICT.refusal(address)


def test_embedded_ipv4_is_unwrapped() -> None:
    ip = ipaddress.ip_address
    assert embedded_ipv4(ip("::ffff:169.254.169.254")) == (ip("169.254.169.254"),)
    assert embedded_ipv4(ip("64:ff9b::7f00:1")) == (ip("127.0.0.1"),)
    assert embedded_ipv4(ip("2002:a9fe:a9fe::")) == (ip("169.254.169.254"),)
    assert embedded_ipv4(ip("2001:0:4136:e378:8000:63bf:80ff:fffe")) == (
        ip("65.54.227.120"), ip("127.0.0.1"))
    assert embedded_ipv4(ip("2606:4700::1")) == ()
    assert embedded_ipv4(ip("8.8.8.8")) == ()


def test_the_reason_names_the_embedded_address() -> None:
    why = STRICT.refusal("64:ff9b::a9fe:a9fe")
    assert why is not None and "169.254.169.254" in why and "non-public" in why


def test_allow_list_opens_exactly_its_ranges() -> None:
    for address in ("127.0.0.1", "127.0.0.2", "::ffff:127.0.0.1", "64:ff9b::127.0.0.1",
                    "2002:7f00:1::1"):
        assert LOOPBACK_ALLOWED.allows(address), address
    for address in ("::1", "10.0.0.1", "169.254.169.254", "::ffff:169.254.169.254",
                    "100.64.0.1"):
        assert not LOOPBACK_ALLOWED.allows(address), address
    assert LOOPBACK_ALLOWED.allows("8.8.8.8")  # public stays allowed
    v6 = TargetPolicy.of(["fd00::/8"])
    assert v6.allows("fd12::1") and not v6.allows("fc00::1")


def test_internal_only_policy_refuses_public_addresses() -> None:
    internal = TargetPolicy.of(["10.0.0.0/8"], allow_public=False)
    assert internal.allows("10.9.8.7") and internal.allows("::ffff:10.9.8.7")
    assert not internal.allows("8.8.8.8")
    assert not internal.allows("127.0.0.1")
    why = internal.refusal("8.8.8.8")
    assert why is not None and "allow_private_targets" in why


def answers(*addresses: str) -> Callable[[str], Awaitable[list[str]]]:
    async def resolve(host: str) -> list[str]:
        return list(addresses)
    return resolve


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:a9fe:a9fe::1",
                                     "::ffff:169.254.169.254", "100.64.0.1", "224.0.0.1"])
async def test_endpoint_creation_uses_the_same_rule(address: str) -> None:
    # A name that answers a NAT64/6to4 wrapping of loopback or metadata is refused at
    # creation too (the previous check judged the outer IPv6 address "global").
    with pytest.raises(InvalidInput) as refused:
        await check_target("https://hooks.example.org/h", STRICT, answers(address))
    assert "non-public" in str(refused.value.detail)
    await check_target("https://hooks.example.org/h", STRICT, answers("8.8.8.8"))


async def test_endpoint_creation_refuses_a_name_with_any_refused_address() -> None:
    with pytest.raises(InvalidInput):
        await check_target("https://hooks.example.org/h", STRICT,
                           answers("8.8.8.8", "127.0.0.1"))
    with pytest.raises(InvalidInput):
        await check_target("https://hooks.example.org/h", STRICT, answers())


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "0177.0.0.1"])
async def test_endpoint_creation_refuses_legacy_ipv4_forms(host: str) -> None:
    # The worker's client refuses them, so such an endpoint could never be delivered to.
    with pytest.raises(InvalidInput) as refused:
        await check_target(f"http://{host}/h", LOOPBACK_ALLOWED, answers("127.0.0.1"))
    assert "four decimal numbers" in refused.value.detail


async def test_plain_http_only_to_listed_private_targets() -> None:
    """Issue 16, item 9: webhooks travel over TLS except to allow-listed private targets,
    at creation and at send time (the worker's plain-http connector uses for_scheme)."""
    with pytest.raises(InvalidInput) as refused:
        await check_target("http://hooks.example.org/h", LOOPBACK_ALLOWED, answers("8.8.8.8"))
    assert "https" in refused.value.detail
    await check_target("https://hooks.example.org/h", LOOPBACK_ALLOWED, answers("8.8.8.8"))
    await check_target("http://hooks.invalid/h", LOOPBACK_ALLOWED, answers("127.0.0.5"))
    with pytest.raises(InvalidInput):  # one public answer is enough to need TLS
        await check_target("http://hooks.invalid/h", LOOPBACK_ALLOWED,
                           answers("127.0.0.5", "8.8.8.8"))
    plain = LOOPBACK_ALLOWED.for_scheme("http")
    assert plain.allows("127.0.0.5") and not plain.allows("8.8.8.8")
    assert LOOPBACK_ALLOWED.for_scheme("https").allows("8.8.8.8")
    assert not STRICT.for_scheme("HTTP").allows("8.8.8.8")
