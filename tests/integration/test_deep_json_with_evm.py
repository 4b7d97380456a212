"""An EVM coin's libraries must not leave the process open to a crash by a nested body.

web3 imports py_ecc, which raises the recursion limit to 100,000; with that limit
`json.loads` of a body nested 100,000 deep overflows the C stack and the process dies
(SIGSEGV) instead of raising RecursionError. Run in a child process: the failure is a
crash, which must not take the test runner with it."""

import subprocess
import sys

CHILD = """
import sys, json
before = sys.getrecursionlimit()
import chains.evm.adapter  # what `gateway serve` imports with an EVM coin configured
assert sys.getrecursionlimit() == before, sys.getrecursionlimit()
from gateway.http.schemas import MAX_DEPTH, too_deep
deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
assert too_deep(deep, MAX_DEPTH)
try:
    json.loads(deep)  # what a body that slipped past the check would meet
except RecursionError:
    print("refused")
"""


def test_evm_libraries_leave_the_recursion_limit_and_deep_bodies_are_refused() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "refused"
