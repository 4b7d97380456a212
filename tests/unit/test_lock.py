"""Reproducible installs (issue 29): requirements.lock pins every Python package of the
virtualenv with its hashes, `make setup` installs exactly that set, and the Dockerfile
installs requirements-runtime.lock (the same versions, without the development tools).
`make lock` writes both after a change to pyproject.toml (README, "Development")."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
BUILD_LOCK = ROOT / "requirements-build.lock"  # the installers: pip, setuptools, uv
PROJECT = "packetra-gateway"
# The development tools, never in the image.
TOOLS = {"pytest", "mypy", "ruff", "uv", "pip", "setuptools", "selenium", "schemathesis"}

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s+\\)?$")


def pins(path: Path) -> dict[str, Version]:
    """Name (canonical) -> version of every pin in a lock; each pin must carry hashes."""
    found: dict[str, Version] = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        match = PIN.match(line)
        if match is None:
            continue
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{path.name}: {name} pinned twice"
        following = lines[number + 1] if number + 1 < len(lines) else ""
        assert following.strip().startswith("--hash=sha256:"), \
            f"{path.name}: {name} has no hash"
        found[name] = Version(match.group(2))
    assert found, f"{path.name} pins nothing"
    return found


def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {"runtime": data["dependencies"], "dev": data["optional-dependencies"]["dev"]}


def installed() -> dict[str, Version]:
    """What `import` finds: the first distribution of each name on sys.path."""
    found: dict[str, Version] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        found.setdefault(name, Version(dist.version))
    return found


def test_the_installed_packages_are_exactly_the_locked_ones() -> None:
    locked = pins(LOCK)
    have = installed()
    assert PROJECT in have, f"{PROJECT} is not installed: run `make setup`"
    have.pop(PROJECT)
    missing = {n: str(v) for n, v in locked.items() if n not in have}
    extra = {n: str(v) for n, v in have.items() if n not in locked}
    other = {n: f"{have[n]} installed, {v} locked" for n, v in locked.items()
             if n in have and have[n] != v}
    assert not (missing or extra or other), (
        "the virtualenv is not requirements.lock (`make setup` installs it): "
        f"missing {missing}, not locked {extra}, other versions {other}")


def check_satisfies(locked: dict[str, Version], requirements: list[str], lock: str) -> None:
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(
                {"python_version": "3.11", "sys_platform": "linux"}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {text}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), \
            f"{lock} pins {name} {locked[name]}, pyproject.toml asks {text}: run `make lock`"


def test_the_lock_holds_every_dependency_of_pyproject() -> None:
    """A dependency added to or narrowed in pyproject.toml without `make lock` fails
    here, before a fresh clone finds out."""
    wanted = project()
    check_satisfies(pins(LOCK), wanted["runtime"] + wanted["dev"], LOCK.name)
    check_satisfies(pins(RUNTIME_LOCK), wanted["runtime"], RUNTIME_LOCK.name)


def test_the_runtime_lock_is_the_lock_without_the_tools() -> None:
    locked, runtime = pins(LOCK), pins(RUNTIME_LOCK)
    differ = {n: (str(v), str(locked.get(n))) for n, v in runtime.items()
              if locked.get(n) != v}
    assert not differ, f"requirements-runtime.lock differs from requirements.lock: {differ}"
    assert not TOOLS & set(runtime), TOOLS & set(runtime)


def test_the_installers_lock_is_the_lock_s_installers() -> None:
    locked, build = pins(LOCK), pins(BUILD_LOCK)
    assert set(build) == {"pip", "setuptools", "uv"}, set(build)
    differ = {n: (str(v), str(locked.get(n))) for n, v in build.items() if locked.get(n) != v}
    assert not differ, f"requirements-build.lock differs from requirements.lock: {differ}"


def test_setup_and_the_image_install_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"uv pip sync .*--require-hashes requirements\.lock", makefile)
    assert re.search(r"uv pip install .*--no-deps .*-e \.", makefile)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"--require-hashes --no-deps \\\n\s*-r requirements-runtime\.lock",
                     dockerfile)
    assert "COPY requirements-runtime.lock requirements-build.lock ./" in dockerfile
    # The installers too: pip and setuptools from their lock, the build without isolation.
    assert re.search(r"--require-hashes --no-deps \\\n\s*-r requirements-build\.lock",
                     dockerfile)
    assert "--no-deps --no-build-isolation ." in dockerfile
    assert re.search(r"pip install -q --require-hashes --no-deps -r requirements-build\.lock",
                     makefile)
    assert "make lock" in (ROOT / "README.md").read_text()
