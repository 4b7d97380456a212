import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# bitcoinlib writes its data directory on first import; keep it out of $HOME.
os.environ.setdefault("BCL_DATA_DIR", tempfile.mkdtemp(prefix="bitcoinlib-"))

from tests.support.databases import drop_templates, fresh_database
from tests.support.nodes import ANVIL_B_CHAIN_ID, Anvil, LitecoinRegtest

DB_KINDS = ["sqlite", "postgresql"]

pytest_plugins = ["tests.support.monero_fixtures"]


NODE_FIXTURES = {"litecoin", "anvil", "anvil_node", "monero", "make_stack"}


# Runs before pytest-xdist's own hook, which reads the xdist_group markers set here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # Every test carries exactly one layer marker, taken from its folder.
        layer = Path(str(item.fspath)).parent.name
        if layer in ("unit", "contract", "integration", "e2e", "reliability"):
            item.add_marker(getattr(pytest.mark, layer))
        # What it needs beyond the process: a real node (directly, through the contract
        # driver it is run with, or through the e2e stack), PostgreSQL (a parameter).
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & NODE_FIXTURES or params.get("driver", "fake") != "fake":
            item.add_marker(pytest.mark.node)
        if "postgresql" in params.values():
            item.add_marker(pytest.mark.postgresql)
        # Its gateway runs on the database GATEWAY_TEST_DATABASE names (`make test` runs
        # these a second time on PostgreSQL).
        module = getattr(item, "module", None)
        explicit = ({"sqlite", "postgresql"} & {str(v) for v in params.values()}
                    or item.get_closest_marker("fixed_database") is not None)
        if not explicit and ("make_stack" in names
                             or getattr(module, "DEFAULT_DB", None) is not None):
            item.add_marker(pytest.mark.stack_db)
        # With `--dist loadgroup`: every test on the session's Monero network on one
        # worker (its start-up mining takes half a minute: once, not once per worker), and
        # a module's tests on one worker when they share a module-scoped fixture. Every
        # other test goes wherever a worker is free.
        if "monero" in names or params.get("driver") == "monero":
            item.add_marker(pytest.mark.xdist_group("monero"))
            # What a Monero wallet sees is the same whatever database the gateway keeps:
            # the Monero tests run once, in the PostgreSQL run (where stack_db ones are on
            # PostgreSQL), and `make test` starts one Monero network, not two.
            item.add_marker(pytest.mark.any_database)
        elif item.get_closest_marker("load") is not None:
            # Load tests measure latency under their own load: one at a time, never two
            # of them against each other.
            item.add_marker(pytest.mark.xdist_group("load"))
        elif shares_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    # Collection order is the order xdist hands work out. The load group (two minutes on
    # one worker) is handed out once the end-to-end tests have been: not first, while every
    # worker's nodes mine their start-up blocks (that CPU would be measured as the
    # gateway's latency), and not last, where the other worker would wait for it.
    load = [i for i in items if i.get_closest_marker("load") is not None]
    if load:
        rest = [i for i in items if i.get_closest_marker("load") is None]
        at = next((n for n, i in enumerate(rest)
                   if Path(str(i.fspath)).parent.name in ("integration", "reliability")),
                  len(rest))
        items[:] = rest[:at] + load + rest[at:]


def shares_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(
        defs[-1].scope in ("class", "module", "package")
        for defs in info.name2fixturedefs.values() if defs)


@pytest.fixture(params=DB_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _database_templates() -> Iterator[None]:
    yield
    drop_templates()


# Nodes live for the whole session (per xdist worker): tests are kept apart by their own
# databases, xpubs and addresses, not by a fresh chain. A test that stops a node starts it
# again before it ends; one that invalidates blocks mines past them.
@pytest.fixture(scope="session")
def litecoin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LitecoinRegtest]:
    """A real Litecoin Core regtest node. Fails (never skips) when litecoind is missing."""
    node = LitecoinRegtest(tmp_path_factory.mktemp("litecoin")).start()
    try:
        node.create_wallet("payer")
        node.mine(200)  # 100 mature coinbase outputs to pay from
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """A real anvil process, automine off. Fails (never skips) when anvil is missing."""
    node = Anvil(tmp_path_factory.mktemp("anvil")).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil_b_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """A second anvil at another chain id (ANVIL_B_CHAIN_ID): a second EVM network beside
    the first, for one gateway that follows both at once."""
    node = Anvil(tmp_path_factory.mktemp("anvil-b"), ANVIL_B_CHAIN_ID).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def anvil_b(anvil_b_node: Anvil) -> Iterator[Anvil]:
    """The second anvil, put back after each module as `anvil` is."""
    with _reverted(anvil_b_node):
        yield anvil_b_node


@contextlib.contextmanager
def _reverted(node: Anvil) -> Iterator[None]:
    snapshot = node.rpc("evm_snapshot")
    yield
    with contextlib.suppress(RuntimeError, OSError):  # restarted or stopped: a new chain
        node.rpc("evm_revert", snapshot)
        node.rpc("evm_setTime", int(time.time()))


@pytest.fixture(scope="module")
def anvil(anvil_node: Anvil) -> Iterator[Anvil]:
    """The session's anvil, its chain put back (`evm_revert`) after each module. Anvil
    gives every block a timestamp one second past its parent's at least, so blocks mined
    faster than one a second run ahead of the clock; on a chain shared by the whole
    session, one module's hundred blocks would put every later module's block times
    minutes in the future (lateness and reconciliation windows are judged on them).
    `evm_revert` also winds anvil's clock back to the snapshot's: the next block would be
    stamped as long before now as the module ran, so the clock is set to now again."""
    with _reverted(anvil_node):
        yield anvil_node
