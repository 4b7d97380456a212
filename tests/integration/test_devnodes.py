"""The regtest node the tests and the demo start: it survives a port taken under it, says
why when it does not start, and `free_port()` never hands one port out twice."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.demo import node as devnodes  # the launcher itself: its free_port is patched
from tests.support.nodes import LitecoinRegtest, NodeFailed, NodeMissing

# Starts nodes of its own (not the session's): not part of the fast gate.
pytestmark = pytest.mark.node


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on (and never answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_node_starts_on_new_ports_when_its_rpc_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    # The race in `make test`: the port free_port() chose is bound by someone else before
    # litecoind binds it. The first port asked for is the RPC port.
    real = devnodes.free_port
    handed: list[int] = []

    def first_one_taken() -> int:
        handed.append(taken_port if not handed else real())
        return handed[-1]

    monkeypatch.setattr(devnodes, "free_port", first_one_taken)
    node = LitecoinRegtest(tmp_path / "node")
    assert node.rpc_port == taken_port
    node.start()
    try:
        assert node.rpc_port != taken_port
        assert node.rpc("getblockchaininfo")["chain"] == "regtest"
        # The failed first attempt is on record in the node's own output.
        output = node.output_path.read_text()
        assert f"rpcport {taken_port}" in output
        assert "Unable to start HTTP server" in output
        assert f"Binding RPC on address 127.0.0.1 port {taken_port} failed" in (
            node.debug_log_path.read_text())
    finally:
        node.stop()


def test_node_gives_up_after_a_few_attempts_and_shows_both_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    monkeypatch.setattr(devnodes, "free_port", lambda: taken_port)
    node = LitecoinRegtest(tmp_path / "node")
    with pytest.raises(NodeFailed) as failed:
        node.start()
    message = str(failed.value)
    assert "litecoind exited with 1" in message
    assert f"after {LitecoinRegtest.START_ATTEMPTS} attempts" in message
    assert "Error: Unable to start HTTP server" in message  # its stderr
    assert "Unable to bind any endpoint for RPC server" in message  # regtest/debug.log
    assert node.proc is None


def test_node_that_fails_for_another_reason_says_why_at_once(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    datadir.mkdir()
    (datadir / "litecoin.conf").write_text("this line is not an option\n")
    node = LitecoinRegtest(datadir)
    with pytest.raises(NodeMissing) as failed:  # NodeFailed is a NodeMissing (demo catches that)
        node.start()
    message = str(failed.value)
    assert isinstance(failed.value, NodeFailed)
    assert "litecoind exited with 1" in message
    assert "parse error on line 1: this line is not an option" in message
    assert "attempts" not in message  # not a port problem: no retry
    assert str(node.output_path) in message
    assert node.output_path.read_text().count("--- attempt") == 1


def test_free_port_is_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    low, high = (int(v) for v in
                 Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [devnodes.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not [p for p in ports if low <= p <= high]


def test_free_port_is_never_handed_to_two_processes_at_once() -> None:
    # What `make test` does: two pytest processes asking for ports side by side, and the
    # demo beside them. (A lease ends with its process, so each one stays alive until all
    # have answered.) 100 each: every call reads every live lease, so 300 each took 15 s
    # and showed nothing more.
    procs = [subprocess.Popen([sys.executable, "-c", (
        f"import sys\nfrom {module} import free_port\n"
        "print(' '.join(str(free_port()) for _ in range(100)), flush=True)\n"
        "sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for module in ("tests.support.nodes", "tests.support.nodes", "gateway.demo.node")]
    try:
        outputs = [p.stdout.readline() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            p.communicate(timeout=60)
    assert all(p.returncode == 0 for p in procs)
    ports = [int(p) for out in outputs for p in out.split()]
    assert len(ports) == 300
    assert len(set(ports)) == 300


def test_the_demo_and_the_tests_start_the_same_nodes() -> None:
    # One launcher, in the package with the demo; the tests' names lead to it.
    from gateway.demo import evm, monero
    from tests.support import monero_nodes, nodes

    assert nodes.LitecoinRegtest is devnodes.LitecoinRegtest
    assert nodes.free_port is devnodes.free_port
    assert nodes.Anvil is evm.Anvil
    assert monero_nodes.MoneroRegtest is monero.MoneroRegtest
