"""The staff console's pure parts: its listener setting, names and roles, the chart."""

import re
from datetime import date
from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.domain.errors import InvalidInput
from gateway.services.staff import check_name, check_role
from gateway.staff.chart import payments_chart
from tests.unit.test_config import base_env

pytestmark = pytest.mark.unit


def test_staff_listener_is_loopback_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    def listen(value: str | None) -> tuple[str, int] | None:
        env = base_env(tmp_path)
        if value is not None:
            env["GATEWAY_STAFF__LISTEN"] = value
        return load(None, env).staff.address()

    assert listen(None) == ("127.0.0.1", 9465)
    assert listen("10.0.0.1:9000") == ("10.0.0.1", 9000)
    assert listen("") is None
    with pytest.raises(ConfigError, match=r"staff\.listen"):
        listen("9465")
    with pytest.raises(ConfigError, match=r"staff\.idle_minutes"):
        load(None, base_env(tmp_path) | {"GATEWAY_STAFF__IDLE_MINUTES": "0"})


def test_names_and_roles() -> None:
    assert check_name(" Alice.B ") == "alice.b"
    assert check_role("finance") == "finance"
    for bad in ("", "a b", "-x", "x" * 65, "é"):
        with pytest.raises(InvalidInput, match="name"):
            check_name(bad)
    with pytest.raises(InvalidInput, match="finance, support, admin"):
        check_role("root")


def test_chart_draws_one_bar_per_day_and_coin_scaled_to_the_peak() -> None:
    counts = {date(2026, 1, 1): {"LTC": 2, "BTC": 1}, date(2026, 1, 2): {"LTC": 4}}
    svg = payments_chart(counts, ["BTC", "LTC"], width=400, height=200)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    bars = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" '
                      r'fill="[^"]+"><title>(\w+) ([\d-]+): (\d+)</title>', svg)
    heights = {(coin, day): (float(h), int(n)) for h, coin, day, n in bars}
    assert len(heights) == 4  # BTC on the second day is a zero-height bar
    plot = heights[("LTC", "2026-01-02")][0]
    assert plot > 0
    assert heights[("LTC", "2026-01-01")][0] == pytest.approx(plot / 2)
    assert heights[("BTC", "2026-01-01")][0] == pytest.approx(plot / 4)
    assert heights[("BTC", "2026-01-02")][0] == 0
    assert "<script" not in svg and "href" not in svg
    assert payments_chart({}, ["LTC"]) == ""


def test_chart_escapes_coin_codes() -> None:
    svg = payments_chart({date(2026, 1, 1): {"<b>": 1}}, ["<b>"])
    assert "<b>" not in svg and "&lt;b&gt;" in svg
