"""The documents stay navigable (issue 29): OPERATIONS.md's table of contents lists every
section and links only to sections that exist; the sections that code, configuration and
other documents point an operator to (`OPERATIONS.md, "Several instances on one host"`)
exist; docs/architecture.md's contents resolve; the README keeps its two commands first
and leaves its history to CHANGELOG.md."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "OPERATIONS.md"


def headings(text: str) -> list[str]:
    """Section titles (levels 2 and 3), outside code blocks."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"^#{2,3} (.+?)\s*$", text, flags=re.M)


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def links(text: str) -> set[str]:
    return set(re.findall(r"\]\(#([\w-]+)\)", text))


def test_operations_contents_lists_every_section_and_only_those() -> None:
    text = OPERATIONS.read_text()
    titles = [t for t in headings(text) if t != "Contents"]
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    anchors = {anchor(t) for t in titles}
    assert len(anchors) == len(titles), "two sections share an anchor"
    listed = links(contents)
    assert not anchors - listed, f"sections missing from the contents: {anchors - listed}"
    assert not listed - anchors, f"contents link to no section: {listed - anchors}"
    assert not links(text) - anchors, links(text) - anchors


def referring_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "WEBHOOKS.md", ROOT / "CHANGELOG.md"]
    files += sorted((ROOT / "gateway").rglob("*.py")) + sorted((ROOT / "docs").rglob("*.md"))
    files += [p for p in sorted((ROOT / "config").rglob("*")) if p.is_file()]
    return files


def test_every_section_pointed_to_exists() -> None:
    titles = [t for t in headings(OPERATIONS.read_text()) if t != "Contents"]
    anchors = {anchor(t) for t in titles}
    found = 0
    for path in referring_files():
        text = path.read_text(errors="ignore")
        named = re.findall(r'OPERATIONS\.md,? \\?"([^"\\]+)\\?"', text)
        named += re.findall(r"OPERATIONS\.md, ([A-Z][a-z]+)[,)]", text)
        for name in named:
            found += 1
            # "Several instances" names the two sections that start so.
            assert any(t == name or t.startswith(name + " ") for t in titles), \
                f"{path.relative_to(ROOT)} points to OPERATIONS.md {name!r}, which has none"
        for target in re.findall(r"OPERATIONS\.md#([\w-]+)", text):
            found += 1
            assert target in anchors, f"{path.relative_to(ROOT)}: OPERATIONS.md#{target}"
    assert found >= 5, "the search for references found too few: is the pattern broken?"


def test_architecture_contents_resolve() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    anchors = {anchor(t) for t in headings(text)}
    for wanted in ("the-layers", "the-life-of-a-payment", "chain-families"):
        assert wanted in anchors, wanted
    assert not links(text) - anchors, links(text) - anchors


def test_the_readme_starts_with_its_two_commands_and_keeps_no_status_log() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)```", readme, flags=re.S)
    assert first is not None
    assert [line.split()[:2] for line in first.group(1).splitlines()] == \
        [["make", "demo"], ["make", "test"]]
    assert "## Status" not in readme and "(CHANGELOG.md)" in readme
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog\n")
