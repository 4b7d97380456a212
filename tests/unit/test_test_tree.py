"""The test tree waits for conditions, not for time: no test sleeps a fixed second or
more (issue 26). A wait polls what it waits for, with a deadline that names it; a
schedule (retries, throttles, expiry) takes a test-sized setting or an injected clock.

What counts as a fixed sleep, for `time.sleep` and `asyncio.sleep` however imported:
- an argument that is a number known from the source alone: a literal, arithmetic of
  literals, or a module-level name bound once to one (`DELAY = 2`); at least 1 s;
- a `for` loop over `range(<constant>)` that sleeps a constant every turn and has no
  way out but running to the end (no break, return or raise): the turns add up, and
  `for _ in range(4): await asyncio.sleep(0.5)` waits 2 s as surely as one sleep.
Sleeps in `while` loops, and `for` loops that can stop early, are polls: they end when
their condition holds. So is a loop run inside a `try` that catches what stops it (a
receiver trickling its answer until the client hangs up). Sleeps of computed or random
lengths (a load test's pacing, a scripted slow receiver) are not fixed waits and are
left to review."""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
LIMIT = 1.0  # seconds

Number = int | float


class SleepFinder:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.modules: set[str] = set()  # local names of the time and asyncio modules
        self.functions: set[str] = set()  # local names of their sleep functions
        self.constants: dict[str, Number] = {}
        self._collect()

    def _collect(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in ("time", "asyncio"):
                        self.modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module in ("time", "asyncio"):
                for alias in node.names:
                    if alias.name == "sleep":
                        self.functions.add(alias.asname or alias.name)
        assigned: dict[str, int] = {}
        for stmt in self.tree.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned.get(target.id, 0) + 1
                    number = self.number(value) if value is not None else None
                    if number is not None:
                        self.constants[target.id] = number
        # A name bound more than once at module level is not a constant.
        for name, count in assigned.items():
            if count > 1:
                self.constants.pop(name, None)

    def number(self, node: ast.expr) -> Number | None:
        """The value of `node` when the source alone fixes it."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.number(node.operand)
            if inner is None:
                return None
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            left, right = self.number(node.left), self.number(node.right)
            if left is None or right is None:
                return None
            try:
                match node.op:
                    case ast.Add():
                        return left + right
                    case ast.Sub():
                        return left - right
                    case ast.Mult():
                        return left * right
                    case ast.Div():
                        return left / right
            except ZeroDivisionError:
                return None
        return None

    def is_sleep(self, node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Attribute):
            return func.attr == "sleep" and isinstance(func.value, ast.Name) \
                and func.value.id in self.modules
        return isinstance(func, ast.Name) and func.id in self.functions

    def seconds(self, call: ast.Call) -> Number | None:
        args = list(call.args) or [k.value for k in call.keywords
                                   if k.arg in ("delay", "seconds", "secs")]
        return self.number(args[0]) if args else None

    def fixed_sleeps(self) -> Iterator[tuple[int, str]]:
        stopped_by_exception: set[ast.AST] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Try) and node.handlers:
                stopped_by_exception.update(node.body)
        for node in ast.walk(self.tree):
            if self.is_sleep(node):
                assert isinstance(node, ast.Call)
                seconds = self.seconds(node)
                if seconds is not None and seconds >= LIMIT:
                    yield node.lineno, f"sleeps {seconds:g} s"
            elif isinstance(node, ast.For | ast.AsyncFor) and node not in stopped_by_exception:
                total = self._loop_total(node)
                if total is not None and total >= LIMIT:
                    yield node.lineno, f"a loop that sleeps {total:g} s in all"

    def _loop_total(self, loop: ast.For | ast.AsyncFor) -> Number | None:
        it = loop.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and it.func.id == "range" and len(it.args) == 1 and not it.keywords):
            return None
        turns = self.number(it.args[0])
        if turns is None:
            return None
        per_turn: Number = 0
        for node in self._own_body(loop):
            if isinstance(node, ast.Break | ast.Return | ast.Raise):
                return None  # it may stop early: a poll
            if self.is_sleep(node):
                assert isinstance(node, ast.Call)
                seconds = self.seconds(node)
                if seconds is None:
                    return None
                per_turn += seconds
        return turns * per_turn

    @staticmethod
    def _own_body(loop: ast.For | ast.AsyncFor) -> Iterator[ast.AST]:
        """The loop's statements and expressions, not those of functions defined in it
        (their sleeps are not the loop's)."""
        stack: list[ast.AST] = list(loop.body)
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                          | ast.ClassDef):
                continue
            stack.extend(ast.iter_child_nodes(node))


def fixed_sleeps(source: str) -> list[tuple[int, str]]:
    return sorted(SleepFinder(ast.parse(source)).fixed_sleeps())


def test_no_test_sleeps_a_fixed_second_or_more() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for line, what in fixed_sleeps(path.read_text()):
            found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, (
        "fixed sleeps of a second or more (poll the condition with a deadline that names "
        "it, or give the schedule a test-sized setting or an injected clock):\n"
        + "\n".join(found))


def test_the_tree_is_searched() -> None:
    # The check above passes trivially if it reads nothing.
    assert len(list(TESTS.rglob("*.py"))) > 100
    assert (TESTS / "e2e" / "test_mail_queue.py").exists()


def test_fixed_sleeps_are_found() -> None:
    assert fixed_sleeps("import asyncio\nasync def f():\n    await asyncio.sleep(1)\n") \
        == [(3, "sleeps 1 s")]
    assert fixed_sleeps("import time\ntime.sleep(2.5)\n") == [(2, "sleeps 2.5 s")]
    assert fixed_sleeps("import time as t\nt.sleep(3)\n") == [(2, "sleeps 3 s")]
    assert fixed_sleeps("from asyncio import sleep\nasync def f():\n    await sleep(57)\n") \
        == [(3, "sleeps 57 s")]
    assert fixed_sleeps("import asyncio\nasync def f():\n    await asyncio.sleep(delay=4)\n") \
        == [(3, "sleeps 4 s")]
    assert fixed_sleeps("import asyncio\nWAIT = 2\nasync def f():\n"
                        "    await asyncio.sleep(WAIT + 0.5)\n") == [(4, "sleeps 2.5 s")]
    assert fixed_sleeps("import asyncio\nasync def f():\n    for _ in range(4):\n"
                        "        await asyncio.sleep(0.5)\n        await g()\n") \
        == [(3, "a loop that sleeps 2 s in all")]


def test_polls_and_short_or_computed_sleeps_pass() -> None:
    for source in (
        "import asyncio\nasync def f():\n    await asyncio.sleep(0.5)\n",
        "import asyncio\nasync def f(x):\n    await asyncio.sleep(x)\n",
        "import asyncio, random\nasync def f():\n    await asyncio.sleep(random.uniform(0, 3))\n",
        "import asyncio\nasync def f():\n    while not ok():\n        await asyncio.sleep(0.2)\n",
        # A poll written as a bounded for loop: it stops when its condition holds.
        "import asyncio\nasync def f():\n    for _ in range(50):\n        if ok():\n"
        "            break\n        await asyncio.sleep(0.2)\n",
        # A loop that an exception ends: a receiver trickles until the client hangs up.
        "import asyncio\nasync def f(w):\n    try:\n        for _ in range(1000):\n"
        "            await w(b'x')\n            await asyncio.sleep(0.1)\n"
        "    except ConnectionError:\n        pass\n",
        # Bound twice: not a constant.
        "import asyncio\nW = 1\nW = 0\nasync def f():\n    await asyncio.sleep(W)\n",
        # Someone else's sleep method.
        "class Clock:\n    def sleep(self, s): ...\nClock().sleep(5)\n",
        "import asyncio\nasync def f():\n    await asyncio.sleep(0)\n",
    ):
        assert fixed_sleeps(source) == [], source
