"""The test stack's own processes survive a port taken under them (`make test` runs two
suites side by side), and say why when they do not start."""

import http.server
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import GatewayProcess, Receiver, gateway_env


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[int]:
    """Another program on a port, answering 200 to everything (a /healthz included)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("sqlite", tmp_path) as url:
        yield url


async def test_gateway_moves_to_a_new_port_when_its_port_is_taken(
    db_url: str, litecoin: LitecoinRegtest, tmp_path: Path, impostor: int
) -> None:
    env = gateway_env(db_url, litecoin, impostor)
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    try:
        await gateway.start()
        assert gateway.port != impostor
        assert env["GATEWAY_SERVER__PORT"] == str(gateway.port)
        assert env["GATEWAY_SERVER__PUBLIC_URL"] == f"http://127.0.0.1:{gateway.port}"
        with urllib.request.urlopen(f"{gateway.base}/healthz", timeout=5) as resp:
            assert resp.status == 200
        first, *_ = gateway.log().split(f"--- gateway serve on port {gateway.port} ---")
        assert f"--- gateway serve on port {impostor} ---" in first
        assert "address already in use" in first.lower()
    finally:
        await gateway.stop()


async def test_a_restarted_gateway_keeps_its_port_and_says_so_when_it_is_taken(
    db_url: str, litecoin: LitecoinRegtest, tmp_path: Path
) -> None:
    gateway = GatewayProcess(gateway_env(db_url, litecoin, free_port()),
                             tmp_path / "gateway.log")
    try:
        await gateway.start()
        port = gateway.port
        await gateway.kill()
        with socket.socket() as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            holder.bind(("127.0.0.1", port))
            holder.listen()
            with pytest.raises(RuntimeError, match=f"port {port} is taken"):
                await gateway.start(timeout=20)
        assert gateway.port == port  # clients hold its URL; it did not move
        await gateway.start()
        assert gateway.port == port
    finally:
        await gateway.stop()


async def test_gateway_that_fails_otherwise_shows_the_tail_of_its_log(
    db_url: str, litecoin: LitecoinRegtest, tmp_path: Path
) -> None:
    env = gateway_env(db_url, litecoin, free_port(), GATEWAY_COINS__LTC__XPUB="xpub-nonsense")
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    with pytest.raises(RuntimeError) as failed:
        await gateway.start()
    message = str(failed.value)
    assert "gateway exited 2" in message
    assert "coins.LTC.xpub" in message
    assert str(tmp_path / "gateway.log") in message
    assert gateway.proc is None


async def test_receiver_binds_port_zero_and_reads_it_back() -> None:
    receiver = Receiver()
    assert receiver.port == 0  # no port chosen ahead of the bind: no race at all
    await receiver.start()
    try:
        assert receiver.port != 0
        assert receiver.url == f"http://127.0.0.1:{receiver.port}/hooks"
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=5):
            pass
    finally:
        await receiver.stop()
