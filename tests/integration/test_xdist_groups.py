"""`--dist loadgroup` must keep a group on one worker: the Monero tests share one
monerod (started once, not once per worker) and the load tests must never run against
each other. A pytest release that pytest-xdist cannot follow (9.2 moved a node's id)
silently spread the groups over the workers; this runs the installed pair on a tiny tree."""

import os
import subprocess
import sys
from pathlib import Path

TEST = '''
import os, pytest
@pytest.mark.xdist_group("{group}")
@pytest.mark.parametrize("i", range(4))
def test_{name}(i):
    path = os.path.join(os.environ["WORKERS_DIR"], "{group}-{name}-" + str(i))
    open(path, "w").write(os.environ["PYTEST_XDIST_WORKER"])
'''


def test_each_group_runs_on_one_worker(tmp_path: Path) -> None:
    tree, seen = tmp_path / "tree", tmp_path / "seen"
    tree.mkdir()
    seen.mkdir()
    (tree / "pytest.ini").write_text("[pytest]\n")
    for module, group in (("a", "monero"), ("b", "monero"), ("c", "load"), ("d", "load")):
        (tree / f"test_{module}.py").write_text(TEST.format(group=group, name=module))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadgroup", str(tree)],
        cwd=tree, capture_output=True, text=True, timeout=120,
        env={**os.environ, "WORKERS_DIR": str(seen)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    workers: dict[str, set[str]] = {}
    for path in seen.iterdir():
        workers.setdefault(path.name.split("-", 1)[0], set()).add(path.read_text())
    assert sorted(workers) == ["load", "monero"]
    assert all(len(w) == 1 for w in workers.values()), workers
