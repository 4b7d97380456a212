"""The composition root by area: an override reaches every area's services, the HTTP
layer is handed no adapter, and every resource, listener and background job has a
cleanup context of its own. `build` does no I/O, so none of this touches a database."""

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import (
    Overrides,
    background_jobs,
    build,
    build_app,
    console_areas,
    http_areas,
)
from gateway.config import Settings, load
from gateway.staff import context as staff
from gateway.staff.app import create_staff_app
from tests.support.fake_gateway import fake_env

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def settings(tmp_path: Path) -> Settings:
    return load(None, fake_env(f"sqlite+aiosqlite:///{tmp_path}/areas.db", "areas-node"))


def values(obj: Any) -> list[tuple[str, Any]]:
    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


async def test_overrides_reach_every_service(tmp_path: Path) -> None:
    def uow() -> Any:
        raise AssertionError("not called: build does no I/O")

    gw = build(settings(tmp_path), overrides=Overrides(clock=lambda: NOW, uow=uow))
    try:
        assert gw.clock() == NOW
        for name, service in values(gw.services):
            for attr in ("_uow", "_reader"):
                if hasattr(service, attr):
                    assert getattr(service, attr) is uow, f"{name}.{attr}"
            if hasattr(service, "_clock"):
                assert service._clock() == NOW, name
    finally:
        await gw.aclose()


def assert_no_adapter(areas: Any) -> None:
    for area, value in values(areas):
        for name, item in values(value):
            owner = getattr(item, "__self__", item)  # a bound method: its object
            module = type(owner).__module__
            assert not module.startswith("gateway.adapters"), f"{area}.{name}: {module}"


async def test_http_areas_hold_no_adapter(tmp_path: Path) -> None:
    gw = build(settings(tmp_path))
    try:
        assert_no_adapter(http_areas(gw))
    finally:
        await gw.aclose()


async def test_console_areas_hold_no_adapter_and_each_is_its_own_key(
        tmp_path: Path) -> None:
    gw = build(settings(tmp_path))
    try:
        areas = console_areas(gw, http_areas(gw).edge)
        assert_no_adapter(areas)
        # Taken from the areas build wired: the same objects the API and the CLI use.
        assert areas.members.staff is gw.staff.staff
        assert areas.support.invoices is gw.billing.invoices
        assert areas.admin.api_keys is gw.accounts.api_keys
        app = create_staff_app(areas)
        for key, area in ((staff.MEMBERS, areas.members), (staff.LOOKS, areas.looks),
                          (staff.FINANCE, areas.finance), (staff.SUPPORT, areas.support),
                          (staff.ADMIN, areas.admin), (staff.EDGE, areas.edge)):
            assert app[key] is area
    finally:
        await gw.aclose()


async def test_one_cleanup_context_per_resource_listener_and_job(tmp_path: Path) -> None:
    gw = build(settings(tmp_path))
    try:
        jobs = background_jobs(gw)
        assert {job.name for job in jobs} >= {"delivery worker", "sweeper", "retention",
                                              "billing", "watcher fake:areas-node"}
        app = build_app(gw)
        assert len(app.cleanup_ctx) == len(gw.resources) + 2 + len(jobs)
    finally:
        await gw.aclose()
