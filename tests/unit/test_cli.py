"""The `gateway` command line (issue 29, item 5): one vocabulary, old spellings kept for
one release with a deprecation line, an example in every `--help`, a reference in the
docs that cannot go stale, and `gateway openapi` without a configuration."""

import json
import os
import re
from pathlib import Path

import pytest

from gateway import cli
from gateway.cli import reference
from gateway.cli.support import deprecation
from gateway.http.openapi import document

ROOT = Path(__file__).resolve().parents[2]

# Old spelling -> (what to type now, the function it runs).
OLD = {
    ("webhook", "add", "--url", "https://h.example/x"): ("gateway webhook create",
                                                         "cmd_webhook_create"),
    ("staff", "add", "sam", "--role", "support"): ("gateway staff create", "cmd_staff_create"),
    ("staff", "remove", "sam"): ("gateway staff delete", "cmd_staff_delete"),
    ("legal", "add", "--account", "acc_x", "--received", "2026-12-01T00:00:00Z",
     "--summary", "s", "--notify", "held"): ("gateway legal create", "cmd_legal_create"),
}


def test_the_reference_in_the_docs_is_what_the_parser_says() -> None:
    """docs/cli.md is generated; regenerate it with `gateway cli-reference --out
    docs/cli.md` (argparse's layout is Python 3.11's, the project's Python)."""
    assert (ROOT / "docs" / "cli.md").read_text() == reference.markdown(), (
        "docs/cli.md is stale: run `gateway cli-reference --out docs/cli.md`")


def test_every_command_has_an_example_in_its_help() -> None:
    _, parsers = cli.build()
    assert len(parsers) > 40
    for name, p in parsers:
        help_text = p.format_help()
        assert "example" in help_text and "\n  gateway " in help_text.partition(
            "example")[2], name


@pytest.mark.parametrize("argv", list(OLD))
def test_old_spellings_run_the_new_command_and_say_so(argv: tuple[str, ...]) -> None:
    instead, func = OLD[argv]
    args = cli.parser().parse_args(argv)
    assert args.func.__name__ == func and deprecation(args) == instead
    # The new spelling says nothing.
    new = cli.parser().parse_args([argv[0], instead.split()[2], *argv[2:]])
    assert new.func is args.func and deprecation(new) is None
    # Hidden: in neither the group's help nor the reference.
    group_help = _help_of(argv[0])
    listed = re.search(r"\{([a-z,-]+)\}", group_help)
    assert listed is not None and argv[1] not in listed.group(1).split(",")
    assert not re.search(rf"^ +{argv[1]} ", group_help, re.M)


def _help_of(group: str) -> str:
    _, parsers = cli.build()
    return dict(parsers)[f"gateway {group}"].format_help()


def test_a_deprecated_spelling_prints_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.cli import staff

    ran: list[str] = []
    monkeypatch.setattr(staff, "with_gateway", lambda args, work: ran.append(args.name))
    assert cli.main(["staff", "remove", "sam"]) == 0
    assert ran == ["sam"]
    assert capsys.readouterr().err == "deprecated: use `gateway staff delete`\n"
    assert cli.main(["staff", "delete", "sam"]) == 0
    assert capsys.readouterr().err == ""


def test_json_is_always_a_flag() -> None:
    """`--json` prints JSON wherever it is taken; a file is `--out`."""
    _, parsers = cli.build()
    for name, p in parsers:
        for action in p._actions:
            if "--json" in action.option_strings:
                assert action.const is True, name
    old = cli.parser().parse_args(["reconcile", "--from", "2026-11-01T00:00:00Z", "--to",
                                   "2026-12-01T00:00:00Z", "--json", "report.json"])
    assert old.json == "report.json"  # the old spelling, still taken (with a deprecation)
    new = cli.parser().parse_args(["reconcile", "--json", "--from", "2026-11-01T00:00:00Z",
                                   "--to", "2026-12-01T00:00:00Z"])
    assert new.json is True and new.out is None
    assert "[--json]" in reference.markdown().partition("## `gateway reconcile`")[2]


def test_openapi_needs_no_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a configuration the document is generic: coins, plans, datacenters and
    account currencies are any string; event types and price currencies are known."""
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    # A GATEWAY_* variable that sets nothing (as `make test` exports) is no configuration.
    monkeypatch.setenv("GATEWAY_TEST_DATABASE", "postgresql")
    assert cli.main(["openapi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == document()
    schemas = printed["components"]["schemas"]
    assert schemas["InvoiceBody"]["properties"]["coin"] == {"type": "string",
                                                            "title": "Coin"}
    assert schemas["PlanInvoiceBody"]["properties"]["plan"]["type"] == "string"
    assert "enum" not in schemas["PlanInvoiceBody"]["properties"]["plan"]
    assert "EUR" in json.dumps(schemas["InvoiceBody"]["properties"]["price"])
    assert "generic" in printed["info"]["description"]
