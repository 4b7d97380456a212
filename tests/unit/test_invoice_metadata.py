"""Issue 16, item 10: invoice metadata is restricted to a documented schema of
non-personal keys (it travels in clear in webhook bodies)."""

from pathlib import Path

import pytest

from gateway.domain.invoice_metadata import KEYS, metadata_problem


@pytest.mark.parametrize("good", [
    {}, {"plan": "vps-small"}, {"reference": "ORD-2026/0042", "product": "sku_1",
                                "period": "2026-06", "quantity": 3}])
def test_identifiers_under_documented_keys_are_accepted(good: dict[str, object]) -> None:
    assert metadata_problem(good) is None


@pytest.mark.parametrize(("bad", "said"), [
    ({"email": "a@b.example"}, "not accepted"),
    ({"customer_name": "Jane"}, "not accepted"),
    ({"reference": "jane@example.org"}, "identifier"),
    ({"reference": "Jane Roe"}, "identifier"),
    ({"plan": ""}, "identifier"),
    ({"plan": "x" * 101}, "identifier"),
    ({"plan": {"nested": "x"}}, "identifier"),
    ({"quantity": "3"}, "integer"),
    ({"quantity": True}, "integer"),
])
def test_anything_else_is_refused_with_a_reason(bad: dict[str, object], said: str) -> None:
    problem = metadata_problem(bad)
    assert problem is not None and said in problem


def test_every_key_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text()
    for key in KEYS:
        assert f"`{key}`" in doc
