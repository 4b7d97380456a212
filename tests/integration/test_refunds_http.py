"""Refunds over HTTP against the real applications (the API and the staff console, as
`gateway serve` wires them), on SQLite and PostgreSQL (docs/refunds.md): the request needs
the password and, with two-factor on, a code; refusals are 422 problems that say what is
wrong; the customer cancels while pending; only finance (and admin) staff see the queue,
and above `[credit] second_approval_above` two different members must approve, each
action in the staff log."""

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from aiohttp.test_utils import TestServer

from gateway.bootstrap import build_app
from gateway.domain.credit import CreditEntry, CreditKind
from gateway.services.accounts import Signup
from gateway.staff.context import COOKIE
from tests.support.fake_gateway import T0, World, fake_world
from tests.support.nodes import free_port
from tests.support.staff import enrolled_staff_token

pytestmark = pytest.mark.integration

EMAIL = "refund.me@example.org"
PASSWORD = "customer password 1"
STAFF_PASSWORD = "a long staff password 1"
ADDRESS = "fake1" + "ab" * 20


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@dataclass
class Served:
    world: World
    api: str
    staff: str
    http: aiohttp.ClientSession
    account_id: str

    async def token(self, code: str | None = None) -> str:
        return (await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD, code)).token

    async def call(self, method: str, path: str, token: str,
                   body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self.http.request(method, self.api + path, json=body, headers={
                "Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()

    async def balance(self) -> int:
        async with self.world.gw.uow() as uow:
            return await uow.credit.balance(self.account_id)

    async def staff_token(self, name: str, role: str) -> str:
        return await enrolled_staff_token(self.world.gw.services.staff, name, role,
                                          STAFF_PASSWORD, T0)

    async def page(self, token: str, path: str, **query: str) -> tuple[int, str]:
        async with self.http.get(self.staff + path, params=query, allow_redirects=False,
                                 headers={"Cookie": f"{COOKIE}={token}"}) as resp:
            return resp.status, await resp.text()

    async def post(self, token: str, path: str, form: dict[str, str],
                   csrf_from: str) -> tuple[int, str]:
        csrf = re.search(r'name="csrf" value="([^"]+)"', csrf_from)
        assert csrf is not None
        async with self.http.post(self.staff + path, data={**form, "csrf": csrf[1]},
                                  allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={token}",
                                           "Origin": self.staff.rsplit("/", 1)[0]}) as resp:
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def served(tmp_path: Path, template_dir: Path, database_url: str
                 ) -> AsyncIterator[Served]:
    staff_port = free_port()
    async with fake_world(tmp_path, template_dir, db_url=database_url,
                          GATEWAY_STAFF__LISTEN=f"127.0.0.1:{staff_port}",
                          GATEWAY_CREDIT__SECOND_APPROVAL_ABOVE="1000") as world:
        gw = world.gw
        view = await gw.services.accounts.sign_up(Signup(
            EMAIL, PASSWORD, datacenter="is-rey", currency="EUR"))
        async with gw.uow() as uow:
            await uow.credit.add(CreditEntry(view.account.id, CreditKind.OVERPAID, 2000,
                                             "EUR", "payment:FAK:tx0:0", T0))
            await uow.commit()
        server = TestServer(build_app(gw), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Served(world, str(server.make_url("")).rstrip("/"),
                             f"http://127.0.0.1:{staff_port}/staff", http, view.account.id)
        finally:
            await server.close()


def ask(amount: str = "12.00", **more: Any) -> dict[str, Any]:
    return {"amount": amount, "coin": "FAK", "address": ADDRESS,
            "current_password": PASSWORD, **more}


async def test_the_api_needs_the_password_and_the_code_and_says_what_is_wrong(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        gw, clock = s.world.gw, s.world.clock
        token = await s.token()
        body = ask()
        del body["current_password"]
        status, doc = await s.call("POST", "/v1/me/refunds", token, body)
        assert status == 422 and doc["errors"][0]["field"] == "current_password"
        status, doc = await s.call("POST", "/v1/me/refunds", token,
                                   ask(current_password="not it"))
        assert (status, doc["errors"][0]) == (422, {"field": "current_password",
                                                     "message": "is wrong"})
        status, doc = await s.call("POST", "/v1/me/refunds", token, ask("20.01"))
        assert status == 422 and "the balance is 2000 minor units" in doc["detail"]
        status, doc = await s.call("POST", "/v1/me/refunds", token, ask(coin="NOPE"))
        assert status == 422 and doc["errors"][0]["field"] == "coin"
        assert "accepted: FAK" in doc["detail"]
        assert await s.balance() == 2000
        # Two-factor on: the code is required too.
        enrolment = await gw.services.two_factor.begin(s.account_id, PASSWORD)
        totp = pyotp.TOTP(enrolment.secret)
        await gw.services.two_factor.confirm(s.account_id, totp.at(clock()))
        clock.advance(seconds=31)
        token = await s.token(totp.at(clock()))
        clock.advance(seconds=31)
        status, doc = await s.call("POST", "/v1/me/refunds", token, ask())
        assert status == 422 and doc["errors"][0]["field"] == "totp_code"
        status, doc = await s.call("POST", "/v1/me/refunds", token,
                                   ask(totp_code=totp.at(clock())))
        assert status == 201, doc
        assert (doc["status"], doc["amount"], doc["currency"], doc["address"]) == (
            "requested", "12.00", "EUR", ADDRESS)
        assert doc["approvals_needed"] == 2  # above 10.00 EUR
        assert await s.balance() == 800
        status, listed = await s.call("GET", "/v1/me/refunds", token)
        assert status == 200 and [r["id"] for r in listed["data"]] == [doc["id"]]
        status, cancelled = await s.call("POST", f"/v1/me/refunds/{doc['id']}/cancel", token)
        assert (status, cancelled["status"]) == (200, "cancelled")
        status, again = await s.call("POST", f"/v1/me/refunds/{doc['id']}/cancel", token)
        assert status == 409 and "cancelled" in again["detail"]
        assert await s.balance() == 2000


async def test_finance_only_and_two_different_members_above_the_threshold(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        status, doc = await s.call("POST", "/v1/me/refunds", await s.token(), ask())
        assert status == 201
        path = f"/finance/refunds/{doc['id']}"
        support = await s.staff_token("sam", "support")
        assert (await s.page(support, "/finance/refunds"))[0] == 403
        alice = await s.staff_token("alice", "finance")
        bob = await s.staff_token("bob", "finance")
        status, queue = await s.page(alice, "/finance/refunds")
        assert status == 200 and doc["id"] in queue and ADDRESS not in queue
        # The page shows the customer's address: a reason first, in their access audit.
        status, ask_page = await s.page(alice, path)
        assert status == 200 and ADDRESS not in ask_page and 'id="look-reason"' in ask_page
        why = "refund request to check"
        _, page = await s.page(alice, path, reason=why)
        assert ADDRESS in page
        status, _ = await s.post(alice, path + "/approve",
                                 {"reason": "paid by them", "look_reason": why}, page)
        assert status == 303
        _, page = await s.page(alice, path, reason=why)
        assert "another finance member" in page and 'id="approve-form"' not in page
        # The rule is the server's, not the page's: the same member again is refused.
        status, text = await s.post(alice, path + "/approve", {"reason": "again"}, page)
        assert status == 409 and "another finance member" in text
        _, page = await s.page(bob, path, reason=why)
        status, _ = await s.post(bob, path + "/approve", {"reason": ""}, page)
        assert status == 422  # a reason is required
        status, _ = await s.post(bob, path + "/approve", {"reason": "agreed"}, page)
        assert status == 303
        _, page = await s.page(bob, path, reason=why)
        assert '<td id="status">approved</td>' in page and 'id="uri"' in page
        status, mine = await s.call("GET", "/v1/me/refunds", await s.token())
        assert mine["data"][0]["status"] == "approved"
        log = [(e.staff, e.action, e.subject)
               for e in await s.world.gw.services.staff.recent_log()]
        assert ("alice", "refund_first_approval", doc["id"]) in log
        assert ("bob", "refund_approved", doc["id"]) in log
        async with s.world.gw.uow() as uow:
            audit = await uow.audit.for_account(s.account_id)
        assert {(e.actor, e.action, e.reason) for e in audit} >= {
            ("staff:alice", "staff_viewed_refund", why),
            ("staff:bob", "staff_viewed_refund", why)}
        assert await s.balance() == 800  # held: the operator's wallet pays it
