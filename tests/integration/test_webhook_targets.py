"""Where the delivery worker connects, and what it reads back, with real sockets on
loopback. Names resolve through a resolver injected into the worker (no DNS): the
endpoint's name answers an allowed address at creation and a forbidden one at delivery
(DNS rebinding). The forbidden listener stands in for the node's RPC port or a metadata
service: it counts TCP connections, so "refused" means no connection ever reached it."""

import asyncio
import datetime as dt
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.tables import deliveries
from gateway.adapters.db.unit_of_work import SqlUnitOfWork
from gateway.adapters.db.webhooks import SqlDeliveryStore
from gateway.adapters.fields import FieldCipher
from gateway.domain.errors import InvalidInput
from gateway.domain.events import AccountCreated
from gateway.services.ports import EndpointRecord
from gateway.services.webhook_endpoints import WebhookEndpointService
from tests.support.nodes import free_port
from webhooks import signing
from webhooks.retry import RetryPolicy
from webhooks.store import AttemptResult
from webhooks.targets import TargetPolicy
from webhooks.worker import MAX_RESPONSE_BYTES, DeliveryWorker

# Only 127.0.0.2 is open to webhooks; 127.0.0.1 plays the forbidden internal service.
ALLOWED_IP, FORBIDDEN_IP = "127.0.0.2", "127.0.0.1"
POLICY = TargetPolicy.of([f"{ALLOWED_IP}/32"])
NAME = "hooks.customer.test"

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class MapResolver(AbstractResolver):
    """A hosts file the test can change between creation and delivery."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.lookups = 0

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.lookups += 1
        if host not in self.names:
            raise OSError(f"{host} does not resolve")
        return [ResolveResult(hostname=host, host=ip, port=port, family=socket.AF_INET,
                              proto=0, flags=0) for ip in self.names[host]]

    async def close(self) -> None:
        pass


@dataclass
class Listener:
    """A TCP server that only counts connections."""

    connections: int = 0
    server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        async def accepted(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            w.close()
        self.server = await asyncio.start_server(accepted, host, port)


@dataclass
class Env:
    engine: AsyncEngine
    port: int
    forbidden: Listener
    resolver: MapResolver
    hits: list[str] = field(default_factory=list)
    attempts: list[AttemptResult] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    cipher: FieldCipher = field(default_factory=lambda: FieldCipher([("k", os.urandom(32))]))

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.cipher)

    def worker(self, timeout: float = 3, tls_cafile: str | None = None) -> DeliveryWorker:
        return DeliveryWorker(SqlDeliveryStore(self.engine, self.cipher), lambda: self.now,
                              policy=RetryPolicy(schedule=(), jitter=0.0), timeout=timeout,
                              on_attempt=self.attempts.append, targets=POLICY,
                              resolver=self.resolver, tls_cafile=tls_cafile)

    async def endpoint(self, url: str) -> None:
        """Stored as the API would have stored it, without the creation check (as if the
        row predates a configuration change)."""
        async with self.uow() as u:
            await u.endpoints.add(EndpointRecord("whe_1", url, (), "", True, self.now),
                                  signing.new_secret())
            await u.commit()

    async def publish(self) -> None:
        async with self.uow() as u:
            await u.outbox.publish([AccountCreated("acc_1")], self.now)
            await u.commit()

    async def last_errors(self) -> list[str | None]:
        async with self.engine.connect() as conn:
            return [r.last_error for r in (await conn.execute(select(deliveries))).all()]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def environment(database_url: str, handler: Handler | None = None,
                      tls: ssl.SSLContext | None = None) -> AsyncIterator[Env]:
    port = free_port()
    env = Env(make_engine(database_url), port, Listener(), MapResolver())

    async def ok(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=204)

    async def record(request: web.Request) -> web.StreamResponse:
        env.hits.append(request.path)
        return await (handler or ok)(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, ALLOWED_IP, port, ssl_context=tls).start()
    await env.forbidden.start(FORBIDDEN_IP, port)  # same port, as a rebound name would use
    try:
        yield env
    finally:
        assert env.forbidden.server is not None
        env.forbidden.server.close()
        await runner.cleanup()
        await env.engine.dispose()


async def test_a_name_rebound_to_a_forbidden_address_is_not_connected_to(
    database_url: str,
) -> None:
    async with environment(database_url) as env:
        # Creation: the name answers the allowed address, so the endpoint is accepted.
        creation_answer = [ALLOWED_IP]

        async def resolve_at_creation(host: str) -> list[str]:
            return creation_answer

        service = WebhookEndpointService(env.uow, lambda: env.now,
                                         new_secret=signing.new_secret, targets=POLICY,
                                         resolve=resolve_at_creation)
        await service.create(f"http://{NAME}:{env.port}/hooks")
        creation_answer = [FORBIDDEN_IP]
        with pytest.raises(InvalidInput):  # the same rule, had it answered this at creation
            await service.create(f"http://{NAME}:{env.port}/hooks")
        await env.publish()

        # Delivery: the name now answers 127.0.0.1 (short TTL, rebound).
        env.resolver.names[NAME] = [FORBIDDEN_IP]
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
            assert env.forbidden.connections == 0 and env.hits == []
            [attempt] = env.attempts
            assert attempt.error == "target_refused" and attempt.status_code is None
            assert await env.last_errors() == ["target_refused"]

            # A name answering both: only the allowed address is connected to.
            env.resolver.names[NAME] = [FORBIDDEN_IP, ALLOWED_IP, FORBIDDEN_IP]
            await redeliver(env)
            assert await worker.run_once() == 1
            assert env.hits == ["/hooks"] and env.forbidden.connections == 0
            assert env.attempts[-1].status_code == 204 and env.attempts[-1].error is None
        finally:
            await worker.aclose()


async def redeliver(env: Env) -> None:
    async with env.engine.begin() as conn:
        await conn.execute(deliveries.update().values(status="pending",
                                                      next_attempt_at=env.now))


@pytest.mark.parametrize("host", [FORBIDDEN_IP, "127.1", "[::ffff:127.0.0.1]",
                                  "localhost"])
async def test_literal_and_special_hosts_are_checked_at_connect(
    database_url: str, host: str,
) -> None:
    async with environment(database_url) as env:
        env.resolver.names["localhost"] = [FORBIDDEN_IP]
        await env.endpoint(f"http://{host}:{env.port}/hooks")
        await env.publish()
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        assert env.forbidden.connections == 0 and env.hits == []
        [attempt] = env.attempts
        assert attempt.error in ("target_refused", "invalid_url", "dns_error"), attempt.error
        assert str(env.port) not in (attempt.error or "")


async def test_a_redirect_to_a_forbidden_address_is_not_followed(database_url: str) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://{FORBIDDEN_IP}:{request.url.port}/latest/meta-data")

    async with environment(database_url, redirect) as env:
        await env.endpoint(f"http://{ALLOWED_IP}:{env.port}/hooks")
        await env.publish()
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        assert env.hits == ["/hooks"] and env.forbidden.connections == 0
        assert env.attempts[0].status_code == 302 and env.attempts[0].error == "redirect"


async def test_a_huge_response_body_is_not_read_past_the_cap(database_url: str) -> None:
    body_size = 256 * 1024 * 1024
    sent = [0]

    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Length": str(body_size)})
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            while sent[0] < body_size:
                await resp.write(chunk)
                sent[0] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the worker hung up
        return resp

    async with environment(database_url, huge) as env:
        await env.endpoint(f"http://{ALLOWED_IP}:{env.port}/hooks")
        await env.publish()
        worker = env.worker(timeout=10)
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        [attempt] = env.attempts
        assert attempt.error == "response_too_large"
        assert attempt.status_code == 200  # the answer counts; its body is not wanted
        assert attempt.latency_ms < 5000
        await asyncio.sleep(0.2)
        # What left the server is the cap plus what socket buffers held, not 256 MiB.
        assert MAX_RESPONSE_BYTES < sent[0] < 32 * 1024 * 1024, sent[0]


async def test_a_slow_body_does_not_hold_the_worker_past_the_timeout(
    database_url: str,
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=500, headers={"Content-Length": "1000"})
        await resp.prepare(request)
        try:
            for _ in range(1000):
                await resp.write(b"x")
                await asyncio.sleep(0.1)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async with environment(database_url, trickle) as env:
        await env.endpoint(f"http://{ALLOWED_IP}:{env.port}/hooks")
        await env.publish()
        worker = env.worker(timeout=1)
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        [attempt] = env.attempts
        assert attempt.error == "timeout" and attempt.status_code == 500
        assert attempt.latency_ms < 1800


async def test_attempt_errors_are_classes_without_hosts_or_ports(database_url: str) -> None:
    async with environment(database_url) as env:
        closed = free_port()  # nothing listens: connection refused
        await env.endpoint(f"http://{ALLOWED_IP}:{closed}/hooks")
        await env.publish()
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        [error] = await env.last_errors()
        assert error == "connection_refused"
        assert env.attempts[0].error == "connection_refused"


async def test_an_unknown_name_is_a_dns_error(database_url: str) -> None:
    async with environment(database_url) as env:
        await env.endpoint(f"http://nowhere.test:{env.port}/hooks")
        await env.publish()
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        assert await env.last_errors() == ["dns_error"]


async def test_a_tls_failure_is_a_tls_error(database_url: str) -> None:
    async with environment(database_url) as env:
        await env.endpoint(f"https://{ALLOWED_IP}:{env.port}/hooks")  # plain HTTP there
        await env.publish()
        worker = env.worker()
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        assert await env.last_errors() == ["tls_error"]


def receiver_tls(tmp: Path, newest: ssl.TLSVersion) -> tuple[ssl.SSLContext, Path]:
    """A receiver's TLS, self-signed for NAME, speaking no version newer than `newest`;
    and its certificate, for the worker to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "receiver.crt", tmp / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = newest
    return context, cert_path


@pytest.mark.parametrize("newest", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2-receiver", "tls1.3-receiver"])
async def test_deliveries_speak_tls_13_only(database_url: str, tmp_path: Path,
                                            newest: ssl.TLSVersion) -> None:
    """Data in transit with TLS 1.3 (docs/privacy.md, promise 19): a receiver that offers
    at most TLS 1.2, with a certificate the worker trusts, gets nothing (its handler never
    runs); the same receiver with TLS 1.3 gets the event."""
    tls, cert = receiver_tls(tmp_path, newest)
    async with environment(database_url, tls=tls) as env:
        env.resolver.names[NAME] = [ALLOWED_IP]
        await env.endpoint(f"https://{NAME}:{env.port}/hooks")
        await env.publish()
        worker = env.worker(tls_cafile=str(cert))
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.aclose()
        if newest == ssl.TLSVersion.TLSv1_2:
            # The handshake fails: an alert (tls_error), or, from Python's own server, the
            # connection reset when it sees no version it speaks (connection_error).
            [attempt] = env.attempts
            assert attempt.status_code is None, attempt
            assert attempt.error in ("tls_error", "connection_error"), attempt
            assert env.hits == []
        else:
            assert env.attempts[-1].status_code == 204, env.attempts
            assert env.hits == ["/hooks"]
